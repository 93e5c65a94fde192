"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any, Callable

import pytest

from agentgym.sandboxes import Sandbox, SandboxConfig

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SETUP_HINT = "sudo scripts/setup-system.sh && python -m agentgym.sandboxes.image"


def require(ok: bool, reason: str) -> None:
    """Skip outside CI when ``ok`` is false; in CI everything must be installed."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


@functools.cache
def docker_problem() -> str | None:
    """Why Docker sandboxes cannot run here (None when they can)."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "docker SDK missing: pip install 'agentgym[docker]'"
    from agentgym.sandboxes import SandboxError
    from agentgym.sandboxes.image import DEFAULT_IMAGE, image_exists

    try:
        if not image_exists(DEFAULT_IMAGE):
            return f"image {DEFAULT_IMAGE} missing: python -m agentgym.sandboxes.image"
    except SandboxError as e:
        return f"Docker engine not reachable ({e}); install it: {SETUP_HINT}"
    return None


def require_docker() -> None:
    problem = docker_problem()
    require(problem is None, problem or "")


def require_bwrap() -> None:
    require(shutil.which("bwrap") is not None and os.path.exists("/usr/bin/python3"),
            f"bubblewrap and /usr/bin/python3 needed: {SETUP_HINT}")



Factory = Callable[..., Sandbox]


def small_config(**overrides: Any) -> SandboxConfig:
    """Tight limits so the adversarial tests finish fast."""
    values: dict[str, Any] = {"timeout": 10.0, "memory_mb": 256, "max_processes": 64, "cpu_seconds": 20}
    values.update(overrides)
    return SandboxConfig(**values)


def processes_inside(sb: Sandbox) -> list[str]:
    """Command lines of the sandbox's processes other than its init, its helper and this probe."""
    probe = ("import os\nme=os.getpid()\nfor p in os.listdir('/proc'):\n"
             " if p.isdigit() and int(p) not in (1, me, %d):\n"
             "  try: print(p, open('/proc/%%s/cmdline' %% p,'rb').read().replace(b'\\0',b' ').decode()[:80])\n"
             "  except OSError: pass\n") % (sb.helper_pid or 0)  # type: ignore[attr-defined]
    r = sb.exec(["python3", "-c", probe])
    assert r.exit_code == 0, r
    return [line for line in r.stdout.splitlines() if line.strip()]
