"""Learned rewards reach the trainer: a GRPO run on a reward model's reward, and a PRM's turn scores to tokens."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import agentgym
from agentgym.env import AgentEnv
from agentgym.messages import Message, user
from agentgym.parsing import ParsedAction
from agentgym.policies import PolicyContext, register_policy
from agentgym.rewards import Rubric
from agentgym.rollout import collect
from agentgym.tasks import Task, TaskSet
from agentgym.trainer import train
from agentgym.trainer.advantages import process_advantages
from agentgym.trainer.batch import make_batch
from agentgym.trainer.reward_model import ProcessRewardModel, RewardModelReward
from agentgym.trainer.rm_train import RMConfig, train_reward_model
from agentgym.trainer.tokens import episode_sequence
from agentgym.trajectory import load_jsonl

THREE_TURNS_ID = "agentgym/TestThreeTurns-v0"


class ThreeTurnsEnv(AgentEnv):
    """Three text turns, no tools: each reply is answered with a short note (a multi-turn episode for tiny models)."""

    system_prompt = "Reply."
    default_max_turns = 3

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task(f"three-{i:02d}", f"Count to {i}.") for i in range(20)], name="three")

    def get_tools(self) -> list[Any]:
        return []

    def on_text_turn(self, parsed: ParsedAction) -> list[Message]:
        return [user("Go on.")]

    def build_rubric(self) -> Rubric:
        def replied(env: AgentEnv) -> float:
            """1 when the last reply is not empty."""
            return float(bool((env.messages[-2].get("content") or "").strip()))

        return Rubric().add("replied", replied)


def _pairs(path: Path, n: int = 48) -> Path:
    """Preference pairs: a reply of digits is preferred to one of letters (the digits task's own preference)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        prompt = [{"role": "system", "content": "Reply."}, {"role": "user", "content": f"Say {i}."}]
        digits = "".join(str(d) for d in rng.integers(0, 10, 4))
        letters = "".join(chr(c) for c in rng.integers(97, 123, 4))
        rows.append(
            {
                "chosen": [*prompt, {"role": "assistant", "content": digits}],
                "rejected": [*prompt, {"role": "assistant", "content": letters}],
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def rm_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rm")
    train_reward_model(
        RMConfig(
            model=str(tiny_dir),
            data=str(_pairs(out / "pairs.jsonl")),
            output_dir=str(out / "model"),
            epochs=2,
            lr=1e-3,
            batch_size=8,
            max_length=128,
            threads=1,
            progress=False,
        )
    )
    return out / "model"


def test_grpo_runs_on_a_reward_model_reward(run_config: Any, digits_env_id: str, rm_dir: Path, tmp_path: Path) -> None:
    spec = {"type": "reward_model", "name": "rm", "path": str(rm_dir), "weight": 1.0}
    summary = train(run_config(digits_env_id, steps=2, env_kwargs={"rewards": [spec]}))
    assert summary["step"] == 2
    trajs = load_jsonl(tmp_path / "trajectories.jsonl")
    assert len(trajs) == 2 * 4 * 4 and not any(t.infra_failure for t in trajs)
    rm = [t.steps[-1].reward_components["rm"] for t in trajs]
    digits = [t.steps[-1].reward_components["digits"] for t in trajs]
    assert all(0.0 < r < 1.0 for r in rm) and len(set(rm)) > 4  # sigmoid scores, different per episode
    # the reward model is its own component, added to the verifier's in the training reward, not in success
    for t, r, d in zip(trajs, rm, digits, strict=True):
        assert t.outcome_reward == pytest.approx(d + r) and t.verifier_reward == pytest.approx(d)
    # what the env reported is what the saved model gives the same transcript
    again = RewardModelReward(str(rm_dir)).score([t.messages for t in trajs[:4]])
    assert again == pytest.approx(rm[:4], abs=1e-5)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "train"]
    assert len(steps) == 2
    assert all(r["episodes_trained"] > 0 and r["advantage_abs_mean"] > 0 and r["trained_tokens"] > 0 for r in steps)
    assert all(math.isfinite(r["loss"]) and r["grad_norm"] > 0 for r in steps)


def test_a_prm_turn_score_reaches_that_turns_tokens(tiny_dir: Path, rm_dir: Path) -> None:
    agentgym.register(THREE_TURNS_ID, ThreeTurnsEnv, override=True)
    spec = {"type": "prm", "path": str(rm_dir), "weight": 1.0}
    trajs = collect(
        THREE_TURNS_ID,
        f"hf:{tiny_dir}",
        num_tasks=1,
        group_size=3,
        num_workers=1,
        env_kwargs={"rewards": [spec]},
        policy_kwargs={"temperature": 1.0, "max_tokens": 6, "threads": 1},
        progress=False,
    )
    assert [t.num_turns for t in trajs] == [3, 3, 3] and all(t.segments for t in trajs)
    # the env's per-turn rewards are the PRM's scores of each turn's prefix (recomputed here from one forward pass)
    prm = ProcessRewardModel(str(rm_dir))
    turn_rewards = [t.process_rewards for t in trajs]
    for t, r in zip(trajs, turn_rewards, strict=True):
        assert r == pytest.approx(prm.score_turns(t.messages), abs=1e-5)
        assert [s.reward_components["prm"] for s in t.steps] == r
    assert len({round(x, 6) for r in turn_rewards for x in r}) > 3  # the scores differ between turns and episodes
    # the trainer's per-turn credit: turn t's tokens carry turn t's process advantage
    batch = make_batch(trajs, scale="none", process_weight=1.0, gamma=1.0, filter_zero_variance=False)
    expected = process_advantages(turn_rewards, [t.group_id or t.task_id for t in trajs], 1.0, scale="none")
    for i, (t, ep) in enumerate(zip(trajs, batch.episodes, strict=True)):
        turns = episode_sequence(t.segments).turns[1:]  # (L-1,) the turn of each target token
        for k in (1, 2, 3):
            sampled = (turns == k) & (ep.mask.numpy() > 0)
            assert sampled.any()
            assert np.allclose(ep.advantages.numpy()[sampled], expected[i][k - 1], atol=1e-6)
    # follow one score: raising turn 2's PRM reward of episode 0 raises exactly the advantages of that turn's tokens
    bumped = [list(r) for r in turn_rewards]
    bumped[0][1] += 1.0
    moved = process_advantages(bumped, [t.group_id or t.task_id for t in trajs], 1.0, scale="none")
    assert moved[0][1] > expected[0][1] and moved[0][2] == pytest.approx(expected[0][2])


def test_reward_objects_of_many_envs_share_one_loaded_model(rm_dir: Path) -> None:
    transcript = [{"role": "user", "content": "Say 1."}, {"role": "assistant", "content": "1"}]
    a, b = RewardModelReward(str(rm_dir)), RewardModelReward(str(rm_dir), name="other")
    prm = ProcessRewardModel(str(rm_dir))
    assert a.score([transcript]) == b.score([transcript])
    prm.score_turns(transcript)
    assert a._model is b._model is prm._model  # one copy in memory, however many envs build the reward


class DigitCountRanker:
    """A ranking judge policy: ranks the attempts of a RankJudge prompt by the digits their replies hold."""

    name = "test-digit-ranker"

    def act(self, ctx: PolicyContext) -> str:
        prompt = ctx.messages[-1]["content"]
        blocks = re.findall(r'<transcript label="([A-Z])" id="[0-9a-f]+">(.*?)</transcript id=', prompt, re.DOTALL)
        digits = {label: sum(ch.isdigit() for ch in body.split("assistant:", 1)[-1]) for label, body in blocks}
        order = sorted(digits, key=lambda label: -digits[label])
        ranking = order[0]
        for prev, label in itertools.pairwise(order):
            ranking += (" = " if digits[prev] == digits[label] else " > ") + label
        return f"Counted the digits. <ranking>{ranking}</ranking>"


def test_grpo_applies_a_group_ranking_judge(run_config: Any, digits_env_id: str, tmp_path: Path) -> None:
    register_policy("test-digit-ranker", lambda **kw: DigitCountRanker())
    spec = {"type": "rank_judge", "policy": "test-digit-ranker", "criteria": "More digits is better.", "weight": 0.5}
    summary = train(run_config(digits_env_id, steps=2, group_rewards=[spec]))
    assert summary["step"] == 2
    assert json.loads((tmp_path / "config.json").read_text())["group_rewards"] == [spec]
    trajs = load_jsonl(tmp_path / "trajectories.jsonl")
    groups: dict[str, list[Any]] = {}
    for t in trajs:
        groups.setdefault(t.group_id or t.task_id, []).append(t)
    assert len(groups) == 8 and all(len(g) == 4 for g in groups.values())
    for group in groups.values():
        ranks = [t.steps[-1].reward_components["rank_judge"] for t in group]
        digits = [sum(ch.isdigit() for ch in t.messages[-1]["content"] or "") for t in group]
        for (ri, di), (rj, dj) in itertools.combinations(zip(ranks, digits, strict=True), 2):
            assert (ri > rj) == (di > dj) and (ri == rj) == (di == dj)  # the ranking follows the digit counts
        for t, r in zip(group, ranks, strict=True):
            d = t.steps[-1].reward_components["digits"]
            assert t.outcome_reward == pytest.approx(d + 0.5 * r) and t.verifier_reward == pytest.approx(d)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "train"]
    assert [(r["group_reward_groups"], r["group_reward_errors"]) for r in steps] == [(4, 0), (4, 0)]
    assert set(steps[0]["reward_components"]) == {"digits", "rank_judge"}
