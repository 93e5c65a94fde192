"""The reward stack's core seams: sources, JSON specs, verifier-only success, reward errors, reports.

Judges and reward models have their own tests (tests/test_judges.py, tests/trainer/test_reward_model.py);
these check how any such reward plugs into an environment, with small reward objects written here.
"""

from __future__ import annotations

from typing import Any

import pytest

import agentgym
from agentgym._http import HTTPError
from agentgym.env import AgentEnv, TurnRecord
from agentgym.errors import RewardError
from agentgym.evaluation import EvalReport
from agentgym.policies import OraclePolicy
from agentgym.registry import env_class
from agentgym.rewards import (
    REWARD_TYPES,
    RewardFunc,
    Rubric,
    apply_group_rewards,
    make_group_reward,
    make_reward,
    register_reward_type,
)
from agentgym.rollout import collect
from agentgym.server import CLIENT_KWARGS, _check_values
from agentgym.testing import run_cli

TOOLUSE = "agentgym/ToolUse-v0"
WRONG = '<tool_call>{"name": "submit", "arguments": {"answer": "certainly not the answer"}}</tool_call>'


class GenerousJudge:
    """Scores every episode 1 (a judge that was talked into the maximum)."""

    source = "judge"

    def __init__(self, value: float = 1.0) -> None:
        self.value = value
        self.calls = 0

    def __call__(self, env: AgentEnv) -> float:
        self.calls += 1
        return self.value

    def turn(self, env: AgentEnv, turn: TurnRecord) -> float:
        """Scores every turn with ``value``."""
        return self.value


class BrokenJudge:
    """Cannot reach a verdict."""

    source = "judge"

    def __call__(self, env: AgentEnv) -> float:
        raise RewardError("judge verdict unparseable after 2 tries: no <verdict> tag")

    def turn(self, env: AgentEnv, turn: TurnRecord) -> float:
        """Cannot reach a verdict on a turn either."""
        raise RewardError("judge verdict unparseable on turn")


@pytest.fixture
def generous_type() -> Any:
    register_reward_type("test_generous", GenerousJudge)
    yield
    REWARD_TYPES.pop("test_generous", None)


def test_sources_default_from_kind_and_from_the_reward_object() -> None:
    judge = GenerousJudge()
    rubric = Rubric().add("correct", lambda env: 1.0).add("cost", lambda env, turn: -1.0, kind="process")
    rubric.add("judge", judge, weight=0.5).add("judge_turn", judge.turn, kind="process")
    rubric.add("mine", lambda env: 0.0, source="reward_model")
    assert {d["name"]: d["source"] for d in rubric.describe()} == {
        "correct": "verifier",
        "cost": "process",
        "judge": "judge",
        "judge_turn": "judge",  # a bound method takes its object's source
        "mine": "reward_model",
    }
    assert next(d for d in rubric.describe() if d["name"] == "judge")["doc"].startswith("Scores every episode 1")
    # only verifier components count towards success
    assert rubric.verifier_reward({"correct": 1.0, "judge": 1.0, "mine": 5.0}) == 1.0


def test_specs_build_reward_funcs_and_bad_specs_are_explained(generous_type: Any) -> None:
    f = make_reward({"type": "test_generous", "name": "j", "weight": 0.25, "value": 0.5})
    assert (f.name, f.weight, f.kind, f.source) == ("j", 0.25, "outcome", "judge")
    p = make_reward({"type": "test_generous", "kind": "process"})
    assert p.kind == "process" and p.fn.__name__ == "turn" and p.name == "test_generous"
    same = RewardFunc("x", GenerousJudge())
    assert make_reward(same) is same
    with pytest.raises(ValueError, match="'type' must be one of"):
        make_reward({"type": "os:system", "command": "true"})  # a spec cannot name code to import
    with pytest.raises(ValueError, match="scores the episodes of a GRPO group together"):
        make_reward({"type": "rank_judge", "policy": "oracle"})
    with pytest.raises(ValueError, match="kind must be"):
        make_reward({"type": "test_generous", "kind": "sometimes"})
    with pytest.raises(ValueError, match=r"reward spec 'test_generous' \(test_generous\).*unexpected keyword"):
        make_reward({"type": "test_generous", "temperature": 3})
    with pytest.raises(TypeError, match="a reward spec is a dict"):
        make_reward("judge")  # type: ignore[arg-type]


def test_a_judge_raises_the_reward_but_never_the_success_rate(generous_type: Any) -> None:
    env = agentgym.make(TOOLUSE, rewards=[{"type": "test_generous", "name": "judge", "weight": 1.0}])
    env.reset(seed=0)
    _, reward, term, _, info = env.step(WRONG)
    assert term and info["termination_reason"] == "submitted"
    assert info["reward_components"]["correct"] == 0.0 and info["reward_components"]["judge"] == 1.0
    assert info["outcome_reward"] == 1.0 and reward == 1.0  # the judge is in the training reward ...
    assert info["verifier_reward"] == 0.0  # ... but not in the verifier's
    env.close()
    trajs = collect(
        TOOLUSE,
        OraclePolicy(),
        num_tasks=2,
        env_kwargs={"rewards": [{"type": "test_generous", "name": "judge", "weight": 0.5}]},
        progress=False,
    )
    assert all(t.success and t.verifier_reward == 1.0 and t.outcome_reward == 1.5 for t in trajs)
    metrics = EvalReport(TOOLUSE, "oracle", trajs).metrics()
    assert metrics["success_rate"] == 1.0
    assert metrics["reward_components"]["judge"] == 1.0 and metrics["reward_components"]["correct"] == 1.0


def test_a_reward_that_cannot_score_ends_the_episode_with_reward_error() -> None:
    env = agentgym.make(TOOLUSE, rewards=[RewardFunc("judge", BrokenJudge())])
    env.reset(seed=0)
    _, reward, term, trunc, info = env.step(WRONG)
    assert (term, trunc, info["termination_reason"], info["infra_failure"]) == (False, True, "reward_error", True)
    assert "unparseable" in info["infra_error"] and reward == 0.0 and info["outcome_reward"] == 0.0
    assert "verifier_reward" not in info
    env.close()
    # a process judge that fails mid-episode ends it on that turn, with the same reason
    env = agentgym.make(TOOLUSE, rewards=[RewardFunc("judge_turn", BrokenJudge().turn, kind="process")])
    env.reset(seed=0)
    _, _, term, trunc, info = env.step('<tool_call>{"name": "lookup", "arguments": {"key": "a"}}</tool_call>')
    assert (term, trunc, info["termination_reason"], info["infra_failure"]) == (False, True, "reward_error", True)
    assert info["outcome_reward"] is None and "unparseable on turn" in info["infra_error"]
    env.close()
    # finish() from outside grades, and a broken judge there is a reward_error too
    env = agentgym.make(TOOLUSE, rewards=[RewardFunc("judge", BrokenJudge())])
    env.reset(seed=0)
    env.step('<tool_call>{"name": "lookup", "arguments": {"key": "a"}}</tool_call>')
    assert env.finish("token_budget")["termination_reason"] == "reward_error"
    env.close()


def test_describe_shows_every_component_with_its_source(generous_type: Any) -> None:
    info = env_class(TOOLUSE).describe(
        rewards=[{"type": "test_generous", "name": "judge", "weight": 0.2}], process_rewards={"well_formed": 0.1}
    )
    rows = {r["name"]: (r["kind"], r["source"], r["weight"]) for r in info["rewards"]}
    assert rows["correct"] == ("outcome", "verifier", 1.0)
    assert rows["judge"] == ("outcome", "judge", 0.2)
    assert rows["well_formed"] == ("process", "process", 0.1)


def test_describe_cli_builds_a_judge_spec_without_loading_its_model() -> None:
    spec = '[{"type": "judge", "policy": "hf:/no/such/model", "criteria": "Be right.", "weight": 0.2}]'
    out = run_cli("describe", TOOLUSE, "--env-arg", f"rewards={spec}")
    assert out.returncode == 0, out.stderr
    assert "judge [outcome, judge, weight 0.2]" in out.stdout
    assert "correct [outcome, verifier, weight 1]" in out.stdout


class FirstIsBest:
    """Ranks a group's episodes in the order given: the first gets 1, the last 0."""

    name = "rank"
    weight = 0.5

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def score_group(self, transcripts: list[list[dict[str, Any]]], task_prompt: str) -> list[float]:
        self.seen.append((len(transcripts), task_prompt))
        n = len(transcripts)
        return [1.0 - i / (n - 1) for i in range(n)]


class CannotRank:
    """A group scorer whose verdict could not be parsed."""

    def score_group(self, transcripts: list[list[dict[str, Any]]], task_prompt: str) -> list[float]:
        raise RewardError("ranking unparseable: label B missing")


def test_group_rewards_score_each_group_together_as_their_own_component() -> None:
    trajs = collect(TOOLUSE, OraclePolicy(), num_tasks=2, group_size=3, progress=False)
    ranker = FirstIsBest()
    counts = apply_group_rewards(trajs, [make_group_reward(ranker)])
    assert counts == {"groups": 2, "errors": 0, "episodes": 6}
    assert sorted(n for n, _ in ranker.seen) == [3, 3] and all(p.strip() for _, p in ranker.seen)
    for group in (trajs[:3], trajs[3:]):
        assert [t.steps[-1].reward_components["rank"] for t in group] == [1.0, 0.5, 0.0]
        assert [t.outcome_reward for t in group] == [1.5, 1.25, 1.0]  # verifier 1 + 0.5 x rank
        assert all(t.success and t.verifier_reward == 1.0 for t in group)  # the ranking never counts as success
        assert [t.reward for t in group] == [t.outcome_reward for t in group]
    bad = collect(TOOLUSE, OraclePolicy(), num_tasks=1, group_size=2, progress=False)
    assert apply_group_rewards(bad, [("rank", 1.0, CannotRank())]) == {"groups": 0, "errors": 1, "episodes": 0}
    assert all(t.infra_failure and t.termination_reason == "reward_error" for t in bad)
    assert "label B missing" in bad[0].steps[-1].info["infra_error"]
    with pytest.raises(ValueError, match="'type' must be one of"):
        make_group_reward({"type": "judge"})


def test_remote_clients_cannot_attach_rewards_to_served_envs() -> None:
    spec = {"rewards": [{"type": "judge", "policy": "hf:/their/model", "criteria": "x"}]}
    with pytest.raises(HTTPError) as refused:
        _check_values("constructor arguments", spec, CLIENT_KWARGS, "--allow-kwarg NAME")
    assert refused.value.status == 400 and "not allowed from clients: rewards" in str(refused.value)
    # even where an operator allowed the key, a list of specs is not a flat JSON value
    with pytest.raises(HTTPError) as refused:
        _check_values("constructor arguments", spec, CLIENT_KWARGS | {"rewards"}, "--allow-kwarg NAME")
    assert refused.value.status == 400 and "must be a JSON scalar" in str(refused.value)
