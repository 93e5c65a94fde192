"""ToolChain-v0, the demo's multi-call variant: every task needs the tools, and the oracle solves all of them."""

from __future__ import annotations

import re

import pytest

import agentgym
from agentgym.envs.tooluse import ToolUseEnv
from agentgym.parsing import format_tool_call
from agentgym.rollout import collect

ENV_ID = "agentgym/ToolChain-v0"


@pytest.fixture(scope="module")
def env() -> ToolUseEnv:
    e = agentgym.make(ENV_ID, split="test")
    assert isinstance(e, ToolUseEnv)
    return e


def test_held_out_split_has_at_least_128_tasks(env: ToolUseEnv) -> None:
    test = env.task_set.split("test")
    train = env.task_set.split("train")
    assert len(test) >= 128
    assert len(train) >= 4 * len(test) * 0.9  # the stable 80/20 split
    assert not set(test.ids) & set(train.ids)


def test_short_tool_set(env: ToolUseEnv) -> None:
    assert sorted(t.name for t in env.get_tools()) == ["calculator", "lookup", "submit"]


def test_oracle_solves_every_test_task_with_two_lookups(env: ToolUseEnv) -> None:
    trajs = collect(ENV_ID, "oracle", tasks=env.tasks.ids, env_kwargs={"split": "test"}, seed=0, progress=False)
    assert len(trajs) == len(env.tasks) >= 128
    assert all(t.outcome_reward == 1.0 for t in trajs), [t.task_id for t in trajs if t.outcome_reward != 1.0]
    for t in trajs:
        lookups = [s for s in t.steps if '"lookup"' in str(s.action)]
        assert len(lookups) == 2
        assert all(s.reward_components["well_formed"] == 1.0 for s in t.steps)


def test_prices_are_not_in_the_prompt(env: ToolUseEnv) -> None:
    """The prompt's only numbers are the two counts; the prices live in the store, behind ``lookup``."""
    for task in env.tasks:
        keys = [args["key"] for name, args in task.solution["calls"] if name == "lookup"]
        counts = re.findall(r"\d+", str(task.prompt))
        assert len(keys) == 2 and len(counts) == 2
        assert all(task.setup["store"][k] in task.solution["calls"][2][1]["expression"] for k in keys)
        assert not any(k in str(task.prompt) for k in keys)


def test_submitting_without_tools_fails(env: ToolUseEnv) -> None:
    """Guesses from the prompt alone (the counts, their sum or product) never score."""
    for task_id in env.tasks.ids:
        task = env.tasks[task_id]
        counts = [int(x) for x in re.findall(r"\b\d+\b", str(task.prompt))]
        for guess in (0, sum(counts), counts[0] * counts[1]):
            env.reset(options={"task_id": task_id})
            _, reward, terminated, _, info = env.step(format_tool_call("submit", {"answer": str(guess)}))
            assert terminated and info["termination_reason"] == "submitted"
            assert reward == 0.0, (task_id, guess)


def test_well_formed_counts_turns_whose_calls_parse(env: ToolUseEnv) -> None:
    env.reset(options={"task_id": env.tasks.ids[0]})
    _, _, _, _, ok = env.step(format_tool_call("lookup", {"key": "price-apple"}))
    _, _, _, _, broken = env.step('<tool_call>{"name": "lookup", "arguments": {"key": </tool_call>')
    _, _, _, _, text = env.step("I think the answer is 12.")
    assert ok["reward_components"]["well_formed"] == 1.0
    assert broken["reward_components"]["well_formed"] == 0.0
    assert text["reward_components"]["well_formed"] == 0.0


def test_a_turn_without_a_call_ends_the_episode_unsolved(env: ToolUseEnv) -> None:
    env.reset(options={"task_id": env.tasks.ids[0]})
    _, reward, terminated, _, info = env.step(f"The answer is {env.task.verifier['answer']}.")
    assert terminated and info["termination_reason"] == "no_tool_call" and reward == 0.0


def test_compact_prompt_names_every_tool_with_its_arguments(env: ToolUseEnv) -> None:
    system = env.reset(options={"task_id": env.tasks.ids[0]})[0][0]["content"]
    assert "Tools: calculator(expression), lookup(key), submit(answer)." in system
    assert "<tools>" not in system and len(system) < 400
