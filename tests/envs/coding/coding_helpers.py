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
HIDDEN_ADD = (
    "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_add_negative():\n    assert add(-2, -3) == -5\n"
)


def calc_task(task_id: str = "calc-add") -> Task:
    return make_task(
        task_id,
        "`calc.add(2, 3)` returns -1 instead of 5. Fix `add` in calc/core.py.",
        files={
            "calc/__init__.py": "from calc.core import add, mul\n",
            "calc/core.py": CORE,
            "tests/test_core.py": VISIBLE,
            "README.md": "calc\n",
        },
        fail_to_pass=["tests/test_add.py::test_add", "tests/test_add.py::test_add_negative"],
        pass_to_pass=["tests/test_core.py::test_mul"],
        hidden_tests={"tests/test_add.py": HIDDEN_ADD},
        solution={"calc/core.py": FIXED},
        source="test",
        split="train",
    )


def calc_tasks() -> TaskSet:
    return TaskSet([calc_task()], name="calc")


def call(name: str, **args: Any) -> str:
    return format_tool_call(name, args)


STATS = "def mean(xs):\n    return sum(xs) / (len(xs) + 1)\n"
STATS_FIXED = "def mean(xs):\n    return sum(xs) / len(xs)\n"
HIDDEN_UNITTEST = (
    "import unittest\n\nfrom stats import mean\n\n\nclass TestMean(unittest.TestCase):\n"
    "    def test_mean(self):\n        self.assertEqual(mean([1, 2, 3]), 2)\n\n"
    "    def test_mean_floats(self):\n        self.assertAlmostEqual(mean([0.5, 1.5]), 1.0)\n"
)
HIDDEN_BUILTINS = (
    "from stats import *  # noqa: F403\n\n\ndef test_mean():\n    assert abs(mean([1, 2, 3]) - 2) < 1e-9\n\n\n"
    "def test_mean_pair():\n    assert abs(mean([2, 4]) - 3) < 1e-9\n"
)


def stats_task(kind: str) -> Task:
    """``stats-unittest`` (hidden unittest.TestCase tests) or ``stats-builtins`` (asserts through builtins).

    ``stats-builtins`` reaches them through a star import.
    """
    hidden = HIDDEN_UNITTEST if kind == "unittest" else HIDDEN_BUILTINS
    names = (
        ["TestMean::test_mean", "TestMean::test_mean_floats"] if kind == "unittest" else ["test_mean", "test_mean_pair"]
    )
    return make_task(
        f"stats-{kind}",
        "`stats.mean([1, 2, 3])` returns 1.5 instead of 2. Fix `mean` in stats/core.py.",
        files={
            "stats/__init__.py": "from stats.core import mean\n",
            "stats/core.py": STATS,
            "tests/test_smoke.py": "from stats import mean\n\n\ndef test_empty_sum():\n    assert mean([0, 0]) == 0\n",
        },
        fail_to_pass=[f"tests/test_mean.py::{n}" for n in names],
        pass_to_pass=["tests/test_smoke.py::test_empty_sum"],
        hidden_tests={"tests/test_mean.py": hidden},
        solution={"stats/core.py": STATS_FIXED},
        source="test",
        split="train",
    )


def redteam_tasks() -> TaskSet:
    return TaskSet([calc_task(), stats_task("unittest"), stats_task("builtins")], name="redteam")
