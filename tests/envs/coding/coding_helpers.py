"""A tiny buggy repository in the coding-task format, shared by the coding-env tests."""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any

import pytest

from agentgym.envs.coding import make_task
from agentgym.tasks import Task, TaskSet
from agentgym.parsing import format_tool_call

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SETUP_HINT = "sudo scripts/setup-system.sh && python -m agentgym.sandboxes.image"


def require(ok: bool, reason: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


@functools.cache
def docker_problem() -> str | None:
    try:
        import docker  # noqa: F401
    except ImportError:
        return "docker SDK missing: pip install 'agentgym[docker]'"
    from agentgym.sandboxes import SandboxError
    from agentgym.sandboxes.image import DEFAULT_IMAGE, image_exists

    try:
        if not image_exists(DEFAULT_IMAGE):
            return f"image {DEFAULT_IMAGE} missing: build it with `python -m agentgym.sandboxes.image`"
    except SandboxError as e:
        return f"Docker engine not reachable ({e}); install and start it: {SETUP_HINT}"
    return None


def require_backend(kind: str) -> None:
    if kind == "docker":
        problem = docker_problem()
        require(problem is None, problem or "")
    else:
        require(shutil.which("bwrap") is not None and os.path.exists("/usr/bin/python3"),
                f"bubblewrap and /usr/bin/python3 needed for the local sandbox: {SETUP_HINT}")


BACKENDS = ["local", pytest.param("docker", marks=pytest.mark.docker)]

CORE = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
FIXED = CORE.replace("a - b", "a + b")
VISIBLE = "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
HIDDEN_ADD = ("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
              "def test_add_negative():\n    assert add(-2, -3) == -5\n")


def calc_task(task_id: str = "calc-add") -> Task:
    return make_task(
        task_id,
        "`calc.add(2, 3)` returns -1 instead of 5. Fix `add` in calc/core.py.",
        files={"calc/__init__.py": "from calc.core import add, mul\n", "calc/core.py": CORE,
               "tests/test_core.py": VISIBLE, "README.md": "calc\n"},
        fail_to_pass=["tests/test_add.py::test_add", "tests/test_add.py::test_add_negative"],
        pass_to_pass=["tests/test_core.py::test_mul"],
        hidden_tests={"tests/test_add.py": HIDDEN_ADD},
        solution={"calc/core.py": FIXED},
        source="test", split="train",
    )


def calc_tasks() -> TaskSet:
    return TaskSet([calc_task()], name="calc")


def call(name: str, **args: Any) -> str:
    return format_tool_call(name, args)
