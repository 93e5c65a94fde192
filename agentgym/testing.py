"""Helpers for test suites (agentgym's own and environment packages').

In CI a missing piece of infrastructure is a failure, elsewhere a skip that says how to
install it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

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
    if importlib.util.find_spec("docker") is None:
        return "docker SDK missing: pip install 'agentgym[docker]'"
    from agentgym.sandboxes import SandboxError
    from agentgym.sandboxes.image import DEFAULT_IMAGE, image_exists

    try:
        if not image_exists(DEFAULT_IMAGE):
            return f"image {DEFAULT_IMAGE} missing: python -m agentgym.sandboxes.image"
    except SandboxError as e:
        return f"Docker engine not reachable ({e}); install and start it: {SETUP_HINT}"
    return None


def run_cli(
    *args: str, cwd: str | Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentgym.cli ARGS`` (what the ``agentgym`` script runs) and capture its output.

    The command sees this process's environment without ``AGENTGYM_DEBUG``, plus ``env``. A
    failing command is returned, not raised: the caller reads ``returncode`` and the output.
    """
    full_env = {k: v for k, v in os.environ.items() if k != "AGENTGYM_DEBUG"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "agentgym.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def require_docker() -> None:
    """Skip (fail in CI) unless Docker sandboxes can run: SDK, engine and image."""
    problem = docker_problem()
    require(problem is None, problem or "")


def require_bwrap() -> None:
    """Skip (fail in CI) unless bubblewrap and ``/usr/bin/python3`` are there for LocalSandbox."""
    require(
        shutil.which("bwrap") is not None and os.path.exists("/usr/bin/python3"),
        f"bubblewrap and /usr/bin/python3 are needed for LocalSandbox: {SETUP_HINT}",
    )
