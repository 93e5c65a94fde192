"""DPO: pairs from same-task episodes, the loss against hand-computed values, assistant-only log-probs, training."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agentgym.trainer.dpo import (
    DPOConfig,
    DPOTrainer,
    add_arguments,
    config_from_args,
    dpo_loss,
    preference_pairs,
    run,
    sequence_logps,
    train_dpo,
)
from agentgym.trainer.models import load_model
from agentgym.trainer.tokens import Sequence1D, episode_sequence
from agentgym.trajectory import Step, TokenSegment, Trajectory, save_jsonl

# ----- the loss ------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_dpo_loss_matches_hand_computed_values() -> None:
    beta = 0.5
    pc, pr, rc, rr = [-3.0, -10.0], [-7.0, -4.0], [-4.0, -9.0], [-6.0, -6.0]
    # pair 0: chosen gained 1 nat, rejected lost 1 -> z = 0.5 * (1 - (-1)) = 1.0
    # pair 1: chosen lost 1 nat, rejected gained 2 -> z = 0.5 * (-1 - 2) = -1.5
    z = [beta * ((pc[k] - rc[k]) - (pr[k] - rr[k])) for k in range(2)]
    assert z == [1.0, -1.5]
    want = (-math.log(_sigmoid(1.0)) - math.log(_sigmoid(-1.5))) / 2  # 0.3133 + 1.7014
    policy_c = torch.tensor(pc, requires_grad=True)
    policy_r = torch.tensor(pr, requires_grad=True)
    loss, metrics = dpo_loss(policy_c, policy_r, torch.tensor(rc), torch.tensor(rr), beta)
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(1.007338, abs=1e-6)
    assert metrics["loss"] == pytest.approx(want, rel=1e-6)
    assert metrics["accuracy"] == 0.5
    assert metrics["margin"] == pytest.approx((1.0 - 1.5) / 2)
    assert metrics["chosen_reward"] == pytest.approx(beta * ((-3 + 4) + (-10 + 9)) / 2)  # 0.0
    assert metrics["rejected_reward"] == pytest.approx(beta * ((-7 + 6) + (-4 + 6)) / 2)  # 0.25
    # d/d pi_c of -log sigmoid(z) / P is -beta * sigmoid(-z) / P; the rejected side has the opposite sign
    loss.backward()  # type: ignore[no-untyped-call]
    grad = [-beta * _sigmoid(-zk) / 2 for zk in z]
    torch.testing.assert_close(policy_c.grad, torch.tensor(grad))
    torch.testing.assert_close(policy_r.grad, -torch.tensor(grad))


def test_dpo_loss_is_log_two_while_the_policy_is_the_reference() -> None:
    logps = torch.tensor([-5.0, -2.0, -9.0])
    loss, metrics = dpo_loss(logps, logps - 1.0, logps, logps - 1.0, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2.0))
    assert metrics["accuracy"] == 0.0 and metrics["margin"] == 0.0


def test_the_reference_gets_no_gradient() -> None:
    ref = torch.tensor([-1.0], requires_grad=True)
    loss, _ = dpo_loss(torch.tensor([-2.0], requires_grad=True), torch.tensor([-3.0]), ref, torch.tensor([-1.0]), 1.0)
    loss.backward()  # type: ignore[no-untyped-call]
    assert ref.grad is None


# ----- pairs ---------------------------------------------------------------------------------


def _traj(task: str, reward: float, n: int = 0, infra: bool = False, reason: str | None = None) -> Trajectory:
    messages: list[Any] = [{"role": "user", "content": f"Task {task}."}, {"role": "assistant", "content": f"try {n}"}]
    step = Step(action=f"try {n}", observation=[], reward=reward, reward_components={}, info={})
    return Trajectory(
        env_id="agentgym/Test-v0",
        task_id=task,
        messages=messages,
        steps=[step],
        outcome_reward=reward,
        infra_failure=infra,
        termination_reason=reason or ("infra_error" if infra else "answered"),
        metadata={"n": n},
    )


def _names(pairs: list[tuple[Trajectory, Trajectory]]) -> list[tuple[str, int, int]]:
    return [(c.task_id, c.metadata["n"], r.metadata["n"]) for c, r in pairs]


def test_pairs_are_same_task_higher_reward_first_with_a_margin() -> None:
    trajs = [_traj("a", 1.0, 0), _traj("b", 0.0, 1), _traj("a", 0.0, 2), _traj("b", 0.7, 3), _traj("b", 0.6, 4)]
    pairs = preference_pairs(trajs, min_margin=0.5)
    assert sorted(_names(pairs)) == [("a", 0, 2), ("b", 3, 1), ("b", 4, 1)]
    assert all(c.reward - r.reward >= 0.5 and c.task_id == r.task_id for c, r in pairs)
    # 0.6 vs 0.7 is no preference at margin 0.5, but is at 0.1
    assert ("b", 3, 4) in _names(preference_pairs(trajs, min_margin=0.1))


def test_infrastructure_failures_are_never_paired() -> None:
    trajs = [
        _traj("a", 1.0, 0),
        _traj("a", 0.0, 1, infra=True),  # the sandbox died: a zero that says nothing about the policy
        _traj("a", 0.0, 2, infra=True, reason="engine_error"),
        _traj("b", 1.0, 3, infra=True),
        _traj("b", 0.0, 4),
    ]
    assert preference_pairs(trajs) == []
    trajs.append(_traj("a", 0.0, 5))
    assert _names(preference_pairs(trajs)) == [("a", 0, 5)]


def test_episodes_without_an_assistant_turn_or_with_other_prompts_are_not_paired() -> None:
    silent = _traj("a", 0.0, 1)
    silent.steps, silent.messages = [], silent.messages[:1]
    other_prompt = _traj("a", 0.0, 2)
    other_prompt.messages[0] = {"role": "user", "content": "Task a, reworded."}
    assert preference_pairs([_traj("a", 1.0, 0), silent, other_prompt]) == []


def test_pairs_are_capped_per_task_spread_over_episodes_and_seeded() -> None:
    trajs = [_traj("a", 1.0, n) for n in range(3)] + [_traj("a", 0.0, n) for n in range(3, 6)]
    pairs = preference_pairs(trajs, max_pairs_per_task=3, seed=7)
    assert len(pairs) == 3
    used = [n for _, c, r in _names(pairs) for n in (c, r)]
    assert sorted(used) == [0, 1, 2, 3, 4, 5]  # three disjoint pairs before any episode repeats
    assert _names(preference_pairs(trajs, max_pairs_per_task=3, seed=7)) == _names(pairs)
    draws = {tuple(_names(preference_pairs(trajs, max_pairs_per_task=3, seed=s))) for s in range(8)}
    assert len(draws) > 1
    assert len(preference_pairs(trajs, max_pairs_per_task=100)) == 9  # every success x every failure


def test_a_margin_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match=r"min_margin=0.0: must be > 0"):
        preference_pairs([], min_margin=0.0)


# ----- log-probabilities of assistant tokens -------------------------------------------------


def _sequence(rng: np.random.Generator, lengths: list[int], vocab: int = 512) -> Sequence1D:
    """Alternating prompt/env and sampled segments of random ids."""
    segments = [
        TokenSegment(
            [int(x) for x in rng.integers(3, vocab, n)],
            k % 2 == 1,
            [0.0] * n if k % 2 else None,
            "sampled" if k % 2 else "env",
            (k + 1) // 2,
        )
        for k, n in enumerate(lengths)
    ]
    return episode_sequence(segments)


def _manual(model: Any, seq: Sequence1D) -> tuple[float, float, float]:
    """Assistant-token sum, all-token sum and the off-by-one sum, one token at a time."""
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(seq.ids)[None]).logits[0]  # (L, V)
    logp = torch.log_softmax(logits.double(), -1)
    ids = seq.ids.tolist()
    assistant = sum(float(logp[p, ids[p + 1]]) for p in range(len(ids) - 1) if seq.trainable[p + 1])
    every = sum(float(logp[p, ids[p + 1]]) for p in range(len(ids) - 1))
    shifted = sum(float(logp[p, ids[p + 1]]) for p in range(len(ids) - 1) if seq.trainable[p])
    return assistant, every, shifted


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> Any:
    model, _ = load_model(str(tiny_dir))
    return model.eval()


def test_sequence_logps_sum_exactly_the_assistant_tokens(tiny: Any) -> None:
    rng = np.random.default_rng(0)
    seqs = [_sequence(rng, [9, 4, 6, 5]), _sequence(rng, [20, 3]), _sequence(rng, [5, 7, 2, 3, 4])]
    with torch.no_grad():
        got = sequence_logps(tiny, seqs, micro_batch_size=2)  # padded micro-batches of unequal lengths
        one_by_one = torch.cat([sequence_logps(tiny, [s]) for s in seqs])
    for k, seq in enumerate(seqs):
        assistant, every, shifted = _manual(tiny, seq)
        assert got[k].item() == pytest.approx(assistant, abs=1e-4)
        assert abs(got[k].item() - every) > 1.0  # counting prompt/env tokens would fail
        assert abs(got[k].item() - shifted) > 1e-2  # so would a mask shifted by one position
    torch.testing.assert_close(got, one_by_one, atol=1e-4, rtol=1e-5)


def test_sequence_logps_ignore_what_follows_and_depend_on_what_precedes(tiny: Any) -> None:
    rng = np.random.default_rng(1)
    seq = _sequence(rng, [8, 5, 6, 4])
    longer = _sequence(rng, [8, 5, 6, 4, 9])  # the same shape with an env segment after the last turn
    longer.ids[:23] = seq.ids
    edited = _sequence(rng, [8, 5, 6, 4])
    edited.ids[:] = seq.ids
    edited.ids[15] = (seq.ids[15] + 1) % 512  # a tool-result token before the second assistant turn
    with torch.no_grad():
        base, tail, env = sequence_logps(tiny, [seq, longer, edited]).tolist()
    assert tail == pytest.approx(base, abs=1e-4)
    assert env != pytest.approx(base, abs=1e-4)


# ----- training ------------------------------------------------------------------------------


def _config(env: str, tiny_dir: Path, out: Path, **fields: Any) -> DPOConfig:
    base: dict[str, Any] = {
        "env": env,
        "model": str(tiny_dir),
        "output_dir": str(out),
        "eval_tasks": 0,
        "progress": False,
        "threads": 1,
        "tasks_per_round": 8,
        "group_size": 4,
        "max_turn_tokens": 6,
        "max_total_tokens": 256,
        "min_margin": 0.1,
        "beta": 0.1,
        "lr": 1e-3,
        "epochs": 4,
        "batch_size": 4,
        "micro_batch_size": 2,
    }
    return DPOConfig(**{**base, **fields})


def _margins(trainer: DPOTrainer, pairs: list[tuple[Trajectory, Trajectory]]) -> float:
    """Mean (log pi_c - log ref_c) - (log pi_r - log ref_r) over ``pairs``."""
    chosen, rejected = trainer.sequences(pairs)
    with torch.no_grad():
        pc, pr = sequence_logps(trainer.model, chosen), sequence_logps(trainer.model, rejected)
    rc, rr = trainer.reference_logps(chosen), trainer.reference_logps(rejected)
    return float(((pc - rc) - (pr - rr)).mean())


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_dpo_steps_raise_the_margin_and_never_move_the_reference(
    digits_env_id: str, tiny_dir: Path, tmp_path: Path, lora_rank: int
) -> None:
    trainer = DPOTrainer(_config(digits_env_id, tiny_dir, tmp_path, lora_rank=lora_rank))
    try:
        trajs = trainer.collect(0)
        pairs = preference_pairs(trajs, 0.1)
        assert len(pairs) >= 4, [t.reward for t in trajs]
        frozen = trainer.reference if lora_rank == 0 else trainer.model.get_base_model()
        before = {k: v.clone() for k, v in frozen.state_dict().items() if "lora_" not in k}
        assert _margins(trainer, pairs) == pytest.approx(0.0, abs=1e-4)
        records = trainer.train_pairs(pairs)
        assert len(records) == 4 * math.ceil(len(pairs) / 4)
        assert records[0]["loss"] == pytest.approx(math.log(2.0), abs=1e-4)
        assert records[-1]["loss"] < records[0]["loss"] and records[-1]["accuracy"] > 0.5
        assert _margins(trainer, pairs) > 1.0
        after = {k: v for k, v in frozen.state_dict().items() if "lora_" not in k}
        assert all(torch.equal(before[k], after[k]) for k in before)
        if lora_rank == 0:
            moved = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
            assert moved, "the policy did not change"
    finally:
        trainer.close()


def test_train_dpo_from_a_jsonl_writes_a_checkpoint_that_holds_the_trained_policy(
    digits_env_id: str, tiny_dir: Path, tmp_path: Path
) -> None:
    collector = DPOTrainer(_config(digits_env_id, tiny_dir, tmp_path / "collect"))
    try:
        trajs = collector.collect(0)
        pairs = preference_pairs(trajs, 0.1)
    finally:
        collector.close()
    broken = Trajectory(env_id=trajs[0].env_id, task_id=trajs[0].task_id, messages=trajs[0].messages[:1])
    broken.infra_failure, broken.termination_reason = True, "infra_error"
    save_jsonl([*trajs, broken], tmp_path / "trajs.jsonl")
    config = _config(digits_env_id, tiny_dir, tmp_path / "run", trajectories=str(tmp_path / "trajs.jsonl"))
    result = train_dpo(config)
    assert result["pairs"] == len(pairs) and result["step"] == len(result["train"]) > 0
    assert (tmp_path / "run" / "metrics.jsonl").exists() and (tmp_path / "run" / "config.json").exists()

    # the checkpoint loads as a model, and scores the pairs as the trained policy does, not as the start
    check = DPOTrainer(_config(digits_env_id, tiny_dir, tmp_path / "check", model=result["checkpoint"]))
    try:
        start, _ = load_model(str(tiny_dir))
        check.reference = start.eval().requires_grad_(False)  # the margin relative to the starting model
        assert _margins(check, pairs) > 1.0
    finally:
        check.close()


def test_a_jsonl_without_pairs_says_how_to_fix_it(digits_env_id: str, tiny_dir: Path, tmp_path: Path) -> None:
    save_jsonl([_traj("a", 1.0, 0)], tmp_path / "one.jsonl")
    config = _config(digits_env_id, tiny_dir, tmp_path, trajectories=str(tmp_path / "one.jsonl"))
    with pytest.raises(ValueError, match=r"no preference pairs among 1 trajectories .* lower --min-margin"):
        train_dpo(config)


def test_config_is_checked_and_every_field_is_a_flag() -> None:
    with pytest.raises(ValueError, match=r"rounds=2 needs on-the-fly collection"):
        DPOConfig(trajectories="x.jsonl", rounds=2)
    with pytest.raises(ValueError, match=r"beta=0.0 and min_margin=0.5 must both be > 0"):
        DPOConfig(beta=0.0)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--beta", "0.2", "--reference", "tiny", "--no-progress", "--env-kwargs", '{"a": 1}', "--dtype", "bfloat16"]
    )
    config = config_from_args(args)
    assert (config.beta, config.reference, config.progress, config.env_kwargs, config.dtype) == (
        0.2,
        "tiny",
        False,
        {"a": 1},
        "bfloat16",
    )
    assert config_from_args(parser.parse_args([])) == DPOConfig()


def test_run_trains_from_the_flags_and_reports_success_and_the_checkpoint(
    digits_env_id: str, tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trajs = [_traj("digits-000", 1.0, 0), _traj("digits-000", 0.0, 1)]
    for t in trajs:
        t.env_id = digits_env_id
    save_jsonl(trajs, tmp_path / "pairs.jsonl")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = ["--env", digits_env_id, "--model", str(tiny_dir), "--output-dir", str(tmp_path / "run")]
    flags += ["--trajectories", str(tmp_path / "pairs.jsonl"), "--eval-tasks", "2", "--max-turn-tokens", "4"]
    assert run(parser.parse_args([*flags, "--no-progress", "--threads", "1"])) == 0
    out = capsys.readouterr().out
    assert "held-out success: " in out and "on 2 tasks" in out
    assert "1 pairs, 1 optimizer steps; checkpoint: " in out
    assert (tmp_path / "run" / "checkpoints" / "step_000001" / "model.safetensors").exists()


def test_the_flags_load_without_torch() -> None:
    code = (
        "import argparse, sys\n"
        "from agentgym.trainer.dpo import add_arguments\n"
        "add_arguments(argparse.ArgumentParser())\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
