"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentgym.sandboxes import Sandbox, SandboxConfig
from agentgym.testing import IN_CI, SETUP_HINT, docker_problem, require, require_bwrap, require_docker  # noqa: F401 (re-exported for the tests)

Factory = Callable[..., Sandbox]


def small_config(**overrides: Any) -> SandboxConfig:
    """Tight limits so the adversarial tests finish fast."""
    values: dict[str, Any] = {"timeout": 10.0, "memory_mb": 256, "max_processes": 64, "cpu_seconds": 20, "disk_mb": 64}
    values.update(overrides)
    return SandboxConfig(**values)


def processes_inside(sb: Sandbox) -> list[str]:
    """Command lines of the sandbox's processes other than its init, its helper and this probe."""
    helper_pid = sb.helper_pid or 0  # type: ignore[attr-defined]
    probe = (
        "import os\nme=os.getpid()\nfor p in os.listdir('/proc'):\n"
        f" if p.isdigit() and int(p) not in (1, me, {helper_pid}):\n"
        "  try: print(p, open('/proc/' + p + '/cmdline','rb').read().replace(b'\\0',b' ').decode()[:80])\n"
        "  except OSError: pass\n"
    )
    r = sb.exec(["python3", "-c", probe])
    assert r.exit_code == 0, r
    return [line for line in r.stdout.splitlines() if line.strip()]
