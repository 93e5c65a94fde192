"""Deliberately wrong calls against agentgym's public API: the type checker must flag each marked line.

Not a test module (pytest does not collect it) and never run: tests/test_typecheck.py runs mypy on it
and compares mypy's errors with the ``# E: <code>`` marks, line by line.
"""

from __future__ import annotations

import agentgym
from agentgym import Rubric, Task, Trajectory, parse_action, tool
from agentgym.parsing import HermesParser
from agentgym.trainer import GRPOConfig, train

env = agentgym.make(42)  # E: arg-type
env.step(3.5)  # E: arg-type
env.no_such_method()  # E: attr-defined

Task(id=7, prompt="Add 2 and 3.")  # E: arg-type
Trajectory(env_id="agentgym/ToolUse-v0", task_id="t1", outcome_reward="yes")  # E: arg-type
parse_action(None, HermesParser(), turn=0)  # E: arg-type

GRPOConfig(lr="high")  # E: arg-type
GRPOConfig(learning_rate=3e-4)  # E: call-arg
GRPOConfig(engine="tensorrt")  # E: arg-type
train({"env": "agentgym/ToolUse-v0"})  # E: arg-type


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first summand.
        b: the second summand.
    """
    return a + b


add("2", 3)  # E: arg-type
total: str = add(2, 3)  # E: assignment

Rubric().add("reward", weight="heavy", fn=len)  # E: arg-type
