"""The public API used as the README and the docs use it: the type checker must accept all of it.

Not a test module and never run: tests/test_typecheck.py runs mypy on it and expects no error.
"""

from __future__ import annotations

from typing import Any

import agentgym
from agentgym import AgentEnv, Rubric, Task, TaskSet, Trajectory, parse_action, tool
from agentgym.parsing import HermesParser
from agentgym.trainer import GRPOConfig, train


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first summand.
        b: the second summand.
    """
    return a + b


def solved(env: AgentEnv) -> float:
    """1 when the last assistant message holds the answer."""
    last = next((m.get("content") or "" for m in reversed(env.messages) if m.get("role") == "assistant"), "")
    return 1.0 if "5" in last else 0.0


def play() -> Trajectory:
    env = agentgym.make("agentgym/ToolUse-v0", max_turns=2)
    observation, info = env.reset(seed=0)
    tools: list[dict[str, Any]] = info["tools"]
    _obs, reward, terminated, truncated, _info = env.step('<tool_call>{"name": "add", "arguments": {}}</tool_call>')
    env.close()
    return Trajectory(
        env_id="agentgym/ToolUse-v0",
        task_id=str(info["task_id"]),
        messages=observation,
        outcome_reward=reward if terminated or truncated else None,
        tools=tools,
    )


total: int = add(2, 3)
rubric = Rubric().add("solved", solved, weight=1.0)
tasks = TaskSet([Task("t1", "Add 2 and 3."), Task("t2", "Add 4 and 5.", split="test")], name="sums")
test_ids: list[str] = tasks.split("test").ids
parsed = parse_action("<tool_call>{}</tool_call>", HermesParser(), turn=1)
errors: list[str] = [e.message for e in parsed.errors]
config = GRPOConfig(env="agentgym/ToolUse-v0", model="tiny", steps=2, lr=3e-4, scale="batch")
steps: int = config.steps


def run_training() -> dict[str, Any]:
    return train(config)
