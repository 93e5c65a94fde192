"""A tiny buggy repository in the coding-task format, shared by the coding-env tests."""

from __future__ import annotations

from typing import Any

import pytest

from agentgym.envs.coding import make_task
from agentgym.parsing import format_tool_call
from agentgym.tasks import Task, TaskSet
from agentgym.testing import IN_CI, require, require_bwrap, require_docker  # noqa: F401 (re-exported for the tests)


def require_backend(kind: str) -> None:
    require_docker() if kind == "docker" else require_bwrap()


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
