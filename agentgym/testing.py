"""Helpers for test suites (agentgym's own and environment packages'): in CI a missing
piece of infrastructure is a failure, elsewhere a skip that says how to install it.
"""

from __future__ import annotations

import functools
import os
import shutil

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SETUP_HINT = "sudo scripts/setup-system.sh && python -m agentgym.sandboxes.image"


def require(ok: bool, reason: str) -> None:
    """Skip outside CI when ``ok`` is false; fail in CI, where everything must be installed."""
    if ok:
        return
    import pytest

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
        return f"Docker engine not reachable ({e}); install and start it: {SETUP_HINT}"
    return None


def require_docker() -> None:
    problem = docker_problem()
    require(problem is None, problem or "")


def require_bwrap() -> None:
    require(
        shutil.which("bwrap") is not None and os.path.exists("/usr/bin/python3"),
        f"bubblewrap and /usr/bin/python3 are needed for LocalSandbox: {SETUP_HINT}",
    )
