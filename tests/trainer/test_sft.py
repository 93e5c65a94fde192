"""SFT: the loss against hand-computed values, a real run of the tiny model, rejection rounds, the CLI hooks."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from agentgym.rollout import collect
from agentgym.trainer import GRPOConfig
from agentgym.trainer.checkpoint import latest
from agentgym.trainer.models import load_model
from agentgym.trainer.sequences import trajectory_sequence
from agentgym.trainer.sft import SFTConfig, add_arguments, config_from_args, keep_episodes, sft_loss, train_sft
from agentgym.trainer.tokens import ChatTokens
from agentgym.trajectory import Trajectory, load_jsonl

CALC = "agentgym/Calculator-v0"


def test_sft_loss_is_the_mean_nll_of_the_masked_tokens() -> None:
    # Two vocab entries. Position 0: logits (0, 0), target 1 -> p = 1/2. Position 1 is masked out.
    # Position 2: logits (ln 3, 0), target 0 -> p = 3/4.
    logits = torch.tensor([[[0.0, 0.0], [5.0, -5.0], [math.log(3.0), 0.0]]])  # (1, 3, 2)
    targets = torch.tensor([[1, 1, 0]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    want = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert sft_loss(logits, targets, mask).item() == pytest.approx(want, rel=1e-6)
    # an explicit normaliser (the optimizer step's token count) divides the same sum
    assert sft_loss(logits, targets, mask, n_tokens=4).item() == pytest.approx(want * 2 / 4, rel=1e-6)
    # the masked position's logits do not matter ...
    other = logits.clone()
    other[0, 1] = torch.tensor([-9.0, 9.0])
    assert sft_loss(other, targets, mask).item() == pytest.approx(want, rel=1e-6)
    # ... and a mask that also covered it would count its nll (-log sigmoid(-10) ~ 10): the mask is what decides
    assert sft_loss(logits, targets, torch.ones(1, 3)).item() == pytest.approx(
        (math.log(2.0) + 10.0 + math.log(1 + math.exp(-10.0)) + math.log(4.0 / 3.0)) / 3, rel=1e-5
    )


def test_the_gradient_reaches_only_masked_positions() -> None:
    logits = torch.zeros(2, 3, 4, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    sft_loss(logits, torch.tensor([[1, 2, 3], [0, 1, 2]]), mask).backward()
    assert logits.grad is not None
    touched = logits.grad.abs().sum(-1) > 0  # (2, 3)
    assert touched.tolist() == [[True, False, False], [False, False, True]]


def _data_loss(model_dir: str, trajs: list[Trajectory]) -> float:
    model, tok = load_model(model_dir)
    chat = ChatTokens(tok)
    total = n = 0.0
    with torch.no_grad():
        for t in trajs:
            seq = trajectory_sequence(chat, t)
            ids = torch.from_numpy(seq.ids)[None]
            logits = model(input_ids=ids).logits[:, :-1]
            mask = torch.from_numpy(seq.trainable[1:].astype(np.float32))[None]
            total += float(sft_loss(logits, ids[:, 1:], mask, n_tokens=1.0))
            n += float(mask.sum())
    return total / n


def test_sft_on_oracle_episodes_lowers_the_loss_and_writes_a_checkpoint_grpo_loads(
    tiny_dir: Path, tmp_path: Path
) -> None:
    config = SFTConfig(
        env=CALC,
        model=str(tiny_dir),
        output_dir=str(tmp_path / "run"),
        episodes=8,
        epochs=4,
        batch_size=4,
        lr=3e-3,
        eval_tasks=2,
        max_turn_tokens=16,
        threads=1,
        progress=False,
    )
    result = train_sft(config)
    assert result["step"] == 8 and [r["steps"] for r in result["rounds"]] == [8]
    data = load_jsonl(tmp_path / "run" / "data" / "round_0.jsonl")
    assert len(data) == 8 and all(t.policy == "oracle" and t.success for t in data)
    before, after = _data_loss(str(tiny_dir), data), _data_loss(result["checkpoint"], data)
    assert after < 0.6 * before, (before, after)
    losses = [r["loss"] for r in result["train"]]
    assert losses[-1] < losses[0]
    # held-out evaluations before and after, the GRPO trainer's measurement plus the well-formed rate
    assert [e["step"] for e in result["evals"]] == [0, 8]
    assert all(e["tasks"] == 2 and 0.0 <= e["well_formed"] <= 1.0 for e in result["evals"])
    # the checkpoint is the standard one: the latest, and what GRPO loads as its model
    assert Path(result["checkpoint"]) == latest(tmp_path / "run")
    grpo = GRPOConfig(env=CALC, model=result["checkpoint"], output_dir=str(tmp_path / "grpo"))
    model, _ = load_model(grpo.model)
    trained = torch.load(Path(result["checkpoint"]) / "trainer_state" / "optimizer.pt", weights_only=False)
    assert trained["state"]  # the optimizer really stepped
    base, _ = load_model(str(tiny_dir))
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), base.parameters(), strict=True))


def test_keep_episodes_is_rejection_by_reward() -> None:
    oracle = collect(CALC, "oracle", num_tasks=3, seed=0, progress=False)
    noop = collect(CALC, "noop", num_tasks=3, seed=0, progress=False)
    assert {t.reward for t in oracle} == {1.0} and {t.reward for t in noop} == {0.0}
    kept = keep_episodes(oracle + noop + oracle, min_reward=1.0)
    assert kept == oracle  # the failures out, the repeated identical episodes once
    assert keep_episodes(oracle + noop, min_reward=0.0) == oracle + noop
    oracle[0].infra_failure = True
    assert keep_episodes(oracle, min_reward=0.0) == oracle[1:]


def test_rejection_rounds_train_only_on_rollouts_that_reached_min_reward(
    digits_env_id: str, tiny_dir: Path, tmp_path: Path
) -> None:
    # The digits env scores the fraction of digits in a reply, so the tiny model's own rollouts have rewards
    # on both sides of min_reward: round 0 and round 1 are both the model's rollouts, filtered.
    config = SFTConfig(
        env=digits_env_id,
        model=str(tiny_dir),
        output_dir=str(tmp_path),
        source="rollouts",
        episodes=8,
        rounds=2,
        samples_per_task=4,
        min_reward=0.1,
        epochs=1,
        batch_size=4,
        lr=3e-3,
        max_turn_tokens=6,
        max_total_tokens=256,
        eval_tasks=0,
        threads=1,
        progress=False,
    )
    result = train_sft(config)
    rewards: list[float] = []
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for r in (0, 1):
        played = load_jsonl(tmp_path / "data" / f"round_{r}.played.jsonl")
        kept = load_jsonl(tmp_path / "data" / f"round_{r}.jsonl")
        assert len(played) == 8 and all(t.segments for t in played)  # the model's own token-level rollouts
        assert [t.to_dict() for t in kept] == [t.to_dict() for t in keep_episodes(played, 0.1)]
        assert all(t.reward >= 0.1 for t in kept)
        assert result["rounds"][r]["kept"] == len(kept)
        (record,) = [x for x in records if x["kind"] == "round" and x["round"] == r]
        assert record["played"] == 8 and record["kept"] == len(kept) and record["source"] == "rollouts"
        rewards += [t.reward for t in played]
    assert min(rewards) < 0.1 <= max(rewards), rewards  # the filter had something to drop and something to keep
    # keep_data: round 1 trains on both rounds' kept episodes
    assert result["rounds"][1]["examples"] == result["rounds"][0]["kept"] + result["rounds"][1]["kept"]


def test_the_cli_flags_map_one_to_one_to_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--env", CALC, "--rounds", "3", "--min-reward", "0.5", "--no-keep-data", "--env-kwargs", '{"max_turns": 2}']
    )
    config = config_from_args(args)
    assert (config.rounds, config.min_reward, config.keep_data, config.env_kwargs) == (3, 0.5, False, {"max_turns": 2})
    assert config_from_args(parser.parse_args([])) == SFTConfig()
    with pytest.raises(SystemExit):
        parser.parse_args(["--source", "teacher"])


def test_a_crashed_run_resumes_from_its_last_checkpoint_to_the_same_weights(tiny_dir: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    fields = {"env": CALC, "model": str(tiny_dir), "episodes": 6, "epochs": 2, "batch_size": 2, "lr": 3e-3}
    quiet = {"eval_tasks": 0, "threads": 1, "progress": False, "save_every": 2}
    whole = train_sft(SFTConfig(**fields, **quiet, output_dir=str(tmp_path / "whole")))
    crashed = tmp_path / "crashed"
    train_sft(SFTConfig(**fields, **quiet, output_dir=str(crashed)))
    for step in (4, 6):  # a crash after step 3: the latest checkpoint left is step 2
        shutil.rmtree(crashed / "checkpoints" / f"step_{step:06d}")
    resumed = train_sft(SFTConfig(**fields, **quiet, output_dir=str(crashed), resume="auto"))
    assert resumed["step"] == whole["step"] == 6
    assert [r["step"] for r in resumed["train"]] == [1, 2, 3, 4, 5, 6]  # the log cut back to step 2, then appended
    a = load_file(Path(whole["checkpoint"]) / "model.safetensors")
    b = load_file(Path(resumed["checkpoint"]) / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
