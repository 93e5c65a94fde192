"""Where coding episodes get their sandboxes: a backend name (or factory) behind one small interface."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentgym.sandboxes import Sandbox, SandboxConfig, make_sandbox

if TYPE_CHECKING:
    from agentgym.sandboxes.pool import SandboxPool

SandboxSpec = str | Callable[[str | None], Sandbox]
"""``"local"``, ``"docker"``, or a callable ``files_dir -> started Sandbox``."""


class SandboxProvider:
    """Hands out fresh sandboxes holding a host directory's files; never reuses one.

    Backends by name draw from a warm pool (:class:`~agentgym.sandboxes.DockerPool` or a
    :class:`~agentgym.sandboxes.SandboxPool` of local sandboxes, started on first use), so
    an episode or a grading run does not wait for a sandbox to start. ``options`` go to
    every sandbox a named backend starts (e.g. ``workdir="/app", extra_dirs=("/tests",
    "/logs")``); a factory ignores them.
    """

    def __init__(
        self, spec: SandboxSpec = "local", config: SandboxConfig | None = None, pool_size: int = 2, **options: Any
    ):
        if isinstance(spec, str) and spec not in ("local", "docker"):
            raise ValueError(f"sandbox must be 'local', 'docker' or a callable, got {spec!r}")
        self.spec = spec
        self.config = config or SandboxConfig(timeout=60.0, output_limit=1 << 20)
        self.pool_size = pool_size
        self.options = options
        self._pool: SandboxPool | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def kind(self) -> str:
        """The backend's name, or ``"custom"`` for a factory."""
        return self.spec if isinstance(self.spec, str) else "custom"

    def acquire(self, files_dir: str | None) -> Sandbox:
        """A fresh started sandbox holding the files of ``files_dir`` (none when None)."""
        if self._closed:
            raise RuntimeError("the environment is closed")
        if callable(self.spec) and not isinstance(self.spec, str):
            return self.spec(files_dir)
        with self._lock:
            if self._pool is None:
                self._pool = self._make_pool()
        return self._pool.acquire(files=files_dir)

    def _make_pool(self) -> SandboxPool:
        from agentgym.sandboxes.pool import DockerPool, SandboxPool

        if self.spec == "docker":
            return DockerPool(size=self.pool_size, config=self.config, **self.options)
        return SandboxPool(lambda: make_sandbox("local", config=self.config, **self.options), size=self.pool_size)

    def release(self, sandbox: Sandbox) -> None:
        """Give back a sandbox from :meth:`acquire`; it is closed, never handed out again."""
        if self._pool is not None and not self._closed:
            self._pool.release(sandbox)
        else:
            sandbox.close()

    def close(self) -> None:
        """Close the pool and every sandbox it holds (idempotent)."""
        self._closed = True
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
