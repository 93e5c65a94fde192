"""Where agent actions run: one protocol (:class:`Sandbox`), several backends.

``LocalSandbox`` (bubblewrap namespaces on the host) and ``DockerSandbox`` (a real
Docker engine) implement the same :class:`Sandbox` protocol; ``SandboxPool`` keeps warm
ones ready, and ``ShellSession`` keeps a shell's cwd and environment across commands on any
of them. Browsers run no commands and keep no files, so they have a protocol of their own
in :mod:`agentgym.sandboxes.browser`: :class:`Browser`, implemented by :class:`ChromiumBrowser`
(``BrowserSandbox`` is its former name, kept as an alias). Importing this package imports
neither ``docker`` nor Playwright: backends load them lazily.

A backend that fails itself raises :class:`SandboxError` (the one in :mod:`agentgym.errors`,
re-exported here); the agent's command failing is an :class:`ExecResult`, never an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from agentgym.errors import SandboxError

from .base import ExecResult, Sandbox, SandboxConfig, truncate_bytes
from .local import LocalSandbox
from .shell import ShellSession

if TYPE_CHECKING:
    from .browser import Browser, BrowserActionError, BrowserCrashed, BrowserSandbox, BrowserTimeout, ChromiumBrowser
    from .docker import DockerSandbox
    from .pool import DockerPool, SandboxPool

__all__ = [
    "Browser",
    "BrowserActionError",
    "BrowserCrashed",
    "BrowserSandbox",
    "BrowserTimeout",
    "ChromiumBrowser",
    "DockerPool",
    "DockerSandbox",
    "ExecResult",
    "LocalSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxPool",
    "ShellSession",
    "make_sandbox",
    "truncate_bytes",
]

_LAZY = {
    "DockerSandbox": ".docker",
    "SandboxPool": ".pool",
    "DockerPool": ".pool",
    **dict.fromkeys(
        ["Browser", "BrowserActionError", "BrowserCrashed", "BrowserSandbox", "BrowserTimeout", "ChromiumBrowser"],
        ".browser",
    ),
}


def __getattr__(name: str) -> Any:
    """Load backends with optional dependencies (docker SDK, Playwright) on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_sandbox(kind: Literal["local", "docker"] = "local", **kwargs: Any) -> Sandbox:
    """Create a sandbox by backend name: ``make_sandbox("docker", image=..., files=...)``.

    ``kwargs`` are the backend's own (:class:`LocalSandbox` or :class:`DockerSandbox`);
    both take ``files``, ``config``, ``workdir`` and ``extra_dirs``.
    """
    if kind == "local":
        return LocalSandbox(**kwargs)
    if kind == "docker":
        from .docker import DockerSandbox

        return DockerSandbox(**kwargs)
    raise ValueError(f"unknown sandbox kind {kind!r}: use 'local' or 'docker'")
