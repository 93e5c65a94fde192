"""A learned critic: turn-level GAE against hand-computed values, the value head, its loss, training and resuming."""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agentgym.trainer import GRPOConfig
from agentgym.trainer import checkpoint as ckpt
from agentgym.trainer.advantages import discounted_returns, gae, whiten
from agentgym.trainer.batch import apply_gae, make_batch
from agentgym.trainer.critic import ValueHead, make_value_head, turn_boundaries, turn_ids, turn_rewards, values_at
from agentgym.trainer.loop import Trainer, accumulate_gradients, train, value_loss
from agentgym.trajectory import Step, TokenSegment, Trajectory

R = [0.0, 0.0, 1.0]
V = [0.5, 0.4, 0.8]


# ----- gae: pure numbers -----------------------------------------------------------------------


def test_gae_against_hand_computed_values() -> None:
    # gamma .9, lambda .95 (gamma lambda = .855), V_4 = 0 (terminal):
    # delta_1 = 0 + .9 * .4 - .5 = -.14;  delta_2 = 0 + .9 * .8 - .4 = .32;  delta_3 = 1 + .9 * 0 - .8 = .2
    # A_3 = .2;  A_2 = .32 + .855 * .2 = .491;  A_1 = -.14 + .855 * .491 = .279805
    adv, ret = gae(R, V, gamma=0.9, lam=0.95)
    np.testing.assert_allclose(adv, [0.279805, 0.491, 0.2], rtol=1e-12)
    np.testing.assert_allclose(ret, [0.779805, 0.891, 1.0], rtol=1e-12)  # A + V


def test_lambda_one_is_the_discounted_return_minus_v_and_lambda_zero_the_td_error() -> None:
    # lambda 1: the discounted returns [.81, .9, 1] minus V = [.31, .5, .2]; the targets are the returns themselves
    adv, ret = gae(R, V, gamma=0.9, lam=1.0)
    np.testing.assert_allclose(adv, discounted_returns(R, 0.9) - np.array(V), atol=1e-12)
    np.testing.assert_allclose(adv, [0.31, 0.5, 0.2], atol=1e-12)
    np.testing.assert_allclose(ret, [0.81, 0.9, 1.0], atol=1e-12)
    # lambda 0: the one-step TD errors delta_t
    adv, ret = gae(R, V, gamma=0.9, lam=0.0)
    np.testing.assert_allclose(adv, [-0.14, 0.32, 0.2], atol=1e-12)
    np.testing.assert_allclose(ret, [0.36, 0.72, 1.0], atol=1e-12)  # r_t + gamma V_{t+1}


def test_the_state_after_the_last_turn_is_worth_zero_unless_told() -> None:
    # terminal and truncated episodes alike: V_{T+1} = 0 by default (the trainer never bootstraps: a cut episode's
    # reward is final); an explicit last_value enters only the last TD error: delta_3 = 1 + .9 * .5 - .8 = .65
    default, _ = gae(R, V, 0.9, 0.95)
    np.testing.assert_array_equal(default, gae(R, V, 0.9, 0.95, last_value=0.0)[0])
    boot, _ = gae(R, V, 0.9, 0.95, last_value=0.5)
    assert boot[2] == pytest.approx(0.65)
    assert boot[0] - default[0] == pytest.approx(0.855**2 * 0.45)  # the change reaches turn 1 discounted twice
    assert [a.size for a in gae([], [], 0.9, 0.95)] == [0, 0]
    with pytest.raises(ValueError, match="must be two"):
        gae([1.0, 2.0], [0.0], 0.9, 0.95)


def test_whiten_over_all_turns_of_the_batch() -> None:
    out = whiten([np.array([1.0, 2.0]), np.array([3.0]), np.array([6.0])])
    flat = np.concatenate(out)
    # mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = 1.870829
    np.testing.assert_allclose(flat, (np.array([1.0, 2.0, 3.0, 6.0]) - 3.0) / 1.870829, rtol=1e-5)
    assert abs(flat.mean()) < 1e-12 and flat.std() == pytest.approx(1.0, abs=1e-5)


# ----- the critic: where it reads, what it reads -------------------------------------------------


def test_turn_boundaries_are_the_last_token_before_each_turn() -> None:
    turns = np.array([0, 0, 0, 1, 1, 0, 0, 2, 2, 2, 0, 3])
    np.testing.assert_array_equal(turn_ids(turns), [1, 2, 3])
    np.testing.assert_array_equal(turn_boundaries(turns), [2, 6, 10])
    with pytest.raises(ValueError, match="first token"):
        turn_boundaries(np.array([1, 1, 0]))


def test_turn_rewards_add_the_outcome_to_the_last_turn_and_lose_nothing() -> None:
    np.testing.assert_allclose(turn_rewards(np.array([1, 2, 3]), [0.1, 0.2, 0.3], 1.0), [0.1, 0.2, 1.3])
    # turn 2 sampled no token: its reward joins turn 1's (the closest earlier turn with tokens)
    np.testing.assert_allclose(turn_rewards(np.array([1, 3]), [0.1, 0.2, 0.3], 1.0), [0.3, 1.3])


def test_the_value_is_the_head_on_the_last_hidden_state_at_the_boundary(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)  # attention dropout 0: train mode computes the same
    head = make_value_head(model)
    assert not any(p.detach().any() for p in head.parameters())  # zero-initialised
    torch.nn.init.normal_(head.linear.weight, generator=torch.Generator().manual_seed(0))
    torch.nn.init.constant_(head.linear.bias, 0.25)
    ids = torch.randint(3, 500, (2, 12), generator=torch.Generator().manual_seed(1))
    batch = {"ids": ids, "attention_mask": torch.ones_like(ids)}
    positions = [torch.tensor([2, 6, 10]), torch.tensor([4])]
    with torch.no_grad():
        got = values_at(model, head, batch, positions)
        hidden = model.model(input_ids=ids).last_hidden_state  # (2, 12, H)
        w, b = head.linear.weight[0], head.linear.bias[0]
        want = torch.stack([hidden[0, 2] @ w + b, hidden[0, 6] @ w + b, hidden[0, 10] @ w + b, hidden[1, 4] @ w + b])
        # causal: the value at position 6 depends on ids[:7] only
        changed = ids.clone()
        changed[0, 7:] = 3
        after = values_at(model, head, {"ids": changed, "attention_mask": batch["attention_mask"]}, positions)
    torch.testing.assert_close(got, want)
    assert got.dtype == torch.float32 and got.shape == (4,)
    torch.testing.assert_close(after[:2], got[:2])
    assert after[2] != got[2]


def test_value_loss_is_ppos_clipped_loss() -> None:
    v, old, ret = torch.tensor([1.0, 0.9, 0.5]), torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.0, 2.0, 0.5])
    # turn 1: (1 - 0)^2 = 1 vs clipped V .7: .49 -> max 1; turn 2: (.9 - 2)^2 = 1.21 vs clipped .7: 1.69 -> 1.69
    # (moving past the clip towards the target earns nothing); turn 3: 0
    torch.testing.assert_close(value_loss(v, old, ret, 0.2), torch.tensor([0.5, 0.845, 0.0]))
    torch.testing.assert_close(value_loss(v, old, ret, 0.0), torch.tensor([0.5, 0.605, 0.0]))


# ----- through make_batch and apply_gae -------------------------------------------------------


def _episode(
    group: str, process: list[float], outcome: float, seed: int = 0, infra: bool = False, sampled: int = 3
) -> Trajectory:
    rng = np.random.default_rng(seed)
    segments = [TokenSegment(rng.integers(3, 500, 4 + seed % 3).tolist(), False, None, "prompt", 0)]
    for t in range(1, len(process) + 1):
        n = sampled + (seed + t) % 3
        segments.append(TokenSegment(rng.integers(3, 500, n).tolist(), True, [-1.0] * n, "sampled", t))
        segments.append(TokenSegment(rng.integers(3, 500, 2).tolist(), False, None, "env", t))
    steps = [Step("x", [], r, {}, {"process_reward": r}) for r in process]
    return Trajectory(
        env_id="x",
        task_id=group,
        group_id=group,
        outcome_reward=outcome,
        steps=steps,
        segments=segments,
        infra_failure=infra,
        termination_reason="env_error" if infra else "submitted",
    )


def test_one_turns_reward_reaches_its_tokens_through_gae() -> None:
    # 3 turns, a reward of 1 at turn 2 only, the zero-initialised critic (V = 0), gamma .5, lambda 1, no whitening:
    # A = returns-to-go = [.5, 1, 0]: turn 2's tokens get the reward, turn 1's half of it, turn 3's nothing
    traj = _episode("g", [0.0, 1.0, 0.0], 0.0)
    batch = make_batch([traj], advantage="gae")
    (e,) = batch.episodes
    assert float(e.advantages.abs().sum()) == 0.0  # nothing before the critic has spoken
    stats = apply_gae(batch, [torch.zeros(3)], gamma=0.5, lam=1.0, scale="none")
    assert e.turns is not None
    for t, want in ((1, 0.5), (2, 1.0), (3, 0.0)):
        got = e.advantages[e.turns == t]
        assert len(got) >= 3 and torch.all(got == want), (t, got)
    assert torch.all(e.advantages[e.turns == 0] == 0)  # prompt and tool tokens: no advantage
    torch.testing.assert_close(e.returns, torch.tensor([0.5, 1.0, 0.0]))
    assert stats["returns_mean"] == pytest.approx(0.5) and stats["value_mean"] == 0.0
    # with a critic that already predicts the return-to-go, the TD errors (and the advantages) vanish
    apply_gae(batch, [torch.tensor([0.5, 1.0, 0.0])], gamma=0.5, lam=0.95, scale="none")
    assert float(e.advantages.abs().max()) == 0.0 and batch.stats["explained_variance"] == pytest.approx(1.0)


def test_gae_keeps_zero_variance_groups_masks_failures_and_whitens() -> None:
    trajs = [
        _episode("g", [0.0], 1.0, seed=1),
        _episode("g", [0.0], 1.0, seed=2),  # the same outcome: GRPO would drop group g
        _episode("h", [0.5, 0.0], 0.0, seed=3),
        _episode("h", [0.0], 0.0, seed=4, infra=True),
    ]
    assert make_batch(trajs).episodes == []  # grpo: no group varies (h has one valid episode): nothing to train
    batch = make_batch(trajs, advantage="gae")
    assert len(batch.episodes) == 3 and batch.stats["episodes_masked"] == 1.0
    apply_gae(batch, [torch.tensor([0.2]), torch.tensor([0.9]), torch.tensor([0.1, 0.3])], gamma=1.0, lam=0.95)
    # raw: .8, .1, and for h: delta_2 = 0 - .3, delta_1 = .5 + .3 - .1 = .7, A_1 = .7 + .95 * -.3 = .415
    raw = np.array([0.8, 0.1, 0.415, -0.3])
    per_turn = []
    for e, t in ((batch.episodes[0], 1), (batch.episodes[1], 1), (batch.episodes[2], 1), (batch.episodes[2], 2)):
        assert e.turns is not None
        per_turn.append(float(e.advantages[e.turns == t][0]))
    np.testing.assert_allclose(per_turn, (raw - raw.mean()) / raw.std(), rtol=1e-5)
    with pytest.raises(ValueError, match="advantage must be grpo or gae"):
        make_batch(trajs, advantage="ppo")


def test_value_gradients_are_identical_under_any_micro_batch_split(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    trajs = [_episode(f"g{i // 2}", [0.1 * i] * (1 + i % 3), float(i % 2), seed=i) for i in range(6)]
    batch = make_batch(trajs, advantage="gae")
    positions = [e.value_positions for e in batch.episodes if e.value_positions is not None]
    assert len(positions) == 6 and sum(len(p) for p in positions) == 12
    g = torch.Generator().manual_seed(0)
    apply_gae(batch, [torch.randn(len(p), generator=g) for p in positions])
    head0 = ValueHead(AutoModelForCausalLM.from_pretrained(tiny_dir).config.hidden_size)
    torch.nn.init.normal_(head0.linear.weight, std=0.1, generator=g)  # a head whose values move under value_clip
    grads = []
    for mbs in (1, 2, 6):
        model = AutoModelForCausalLM.from_pretrained(tiny_dir)
        head = copy.deepcopy(head0)
        config = GRPOConfig(advantage="gae", micro_batch_size=mbs, vf_coef=1.0, value_clip=0.05)
        sums = accumulate_gradients(model, batch.episodes, config, pad_id=0, device="cpu", head=head)
        assert sums["value_turns"] == 12 and sums["value_loss"] > 0
        params = [("head." + n, p) for n, p in head.named_parameters()] + list(model.named_parameters())
        grads.append({n: p.grad.clone() for n, p in params if p.grad is not None})
    assert float(grads[0]["head.linear.weight"].abs().sum()) > 0
    for other in grads[1:]:
        for name, grad in grads[0].items():
            # float32 sums in another order: differences ~1e-7 of the largest entry (value gradients reach ~5)
            atol = 1e-7 + 1e-6 * float(grad.abs().max())
            torch.testing.assert_close(
                other[name], grad, rtol=1e-4, atol=atol, msg=f"gradient of {name} depends on the micro-batch size"
            )


def test_config_validates_the_critic_knobs() -> None:
    GRPOConfig(advantage="gae", group_size=1)  # a critic needs no group
    with pytest.raises(ValueError, match=r"group_size must be at least 2.*advantage=gae"):
        GRPOConfig(group_size=1)
    for bad, match in (
        ({"advantage": "ppo"}, "advantage must be grpo or gae"),
        ({"gae_lambda": 1.5}, r"gae_lambda=1.5 must be in \[0, 1\]"),
        ({"advantage": "gae", "gamma": 1.2}, r"gamma=1.2 must be in \[0, 1\]"),
        ({"vf_coef": -1.0}, "vf_coef=-1.0 .* must be >= 0"),
        ({"value_clip": -0.1}, "value_clip=-0.1 must be >= 0"),
        ({"critic_lr": 0.0}, "critic_lr=0.0 must be > 0"),
        ({"advantage": "gae", "process_weight": 0.5}, "process_weight=0.5 has no effect with advantage=gae"),
    ):
        with pytest.raises(ValueError, match=match):
            GRPOConfig(**bad)


def test_the_critic_knobs_are_cli_flags() -> None:
    import argparse

    from agentgym.trainer.cli import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = "--advantage gae --group-size 1 --gae-lambda 0.9 --vf-coef 0.5 --value-clip 0 --critic-lr 1e-3"
    c = config_from_args(parser.parse_args(flags.split()))
    assert (c.advantage, c.group_size, c.gae_lambda, c.vf_coef, c.value_clip, c.critic_lr) == (
        "gae",
        1,
        0.9,
        0.5,
        0,
        1e-3,
    )
    default = config_from_args(parser.parse_args([]))
    assert (default.advantage, default.critic_lr) == ("grpo", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--advantage", "ppo"])


# ----- a real run -------------------------------------------------------------------------------


def test_gae_run_trains_the_head_checkpoints_and_resumes_it_exactly(
    run_config: Callable[..., GRPOConfig], digits_env_id: str, tmp_path: Path
) -> None:
    def config(out: str, **fields: object) -> GRPOConfig:
        base = {"tasks_per_step": 2, "group_size": 2, "minibatches": 2, "save_every": 1, "save_trajectories": False}
        base["seed"] = 2  # step 1 of this seed earns rewards (the tiny model's seed 0 batch scores 0: no value signal)
        return run_config(digits_env_id, output_dir=str(tmp_path / out), **{**base, **fields})

    gae_cfg = {"advantage": "gae", "critic_lr": 1e-2, "steps": 2}
    records = train(config("gae", **gae_cfg))["train"]
    assert len(records) == 2
    for r in records:
        assert {"value_loss", "explained_variance", "value_mean", "returns_mean", "value_clip_fraction"} <= r.keys()
        assert np.isfinite(r["value_loss"]) and r["episodes_trained"] == 4
    assert records[0]["value_mean"] == 0.0  # the zero-initialised head, before its first update
    assert records[1]["value_mean"] != 0.0  # ... has learned something by step 2

    step1, step2 = (tmp_path / "gae" / "checkpoints" / f"step_00000{k}" for k in (1, 2))
    head2 = load_file(step2 / "trainer_state" / "value_head.safetensors")
    assert float(head2["linear.weight"].abs().sum()) > 0, "the value head did not train"
    assert json.loads((step2 / "trainer_state" / "state.json").read_text())["value_head"] is True
    # the model directory is still a plain model: transformers loads it, the head is not among its weights
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoModelForCausalLM.from_pretrained(step2)
    assert not (step2 / "value_head.safetensors").exists()

    # resume from step 1 in a copy of the run: step 2 is re-done and the head comes out bit for bit the same
    shutil.copytree(tmp_path / "gae", tmp_path / "again")
    shutil.rmtree(tmp_path / "again" / "checkpoints" / "step_000002")
    train(config("again", **gae_cfg, resume="auto"))
    again = load_file(tmp_path / "again" / "checkpoints" / "step_000002" / "trainer_state" / "value_head.safetensors")
    for k in head2:
        assert torch.equal(again[k], head2[k]), k

    # restore: the head and its AdamW moments, exactly as saved
    trainer = Trainer(config("restore", **gae_cfg))
    try:
        trainer.restore(step1)
        assert trainer.value_head is not None
        saved = load_file(step1 / "trainer_state" / "value_head.safetensors")
        for k, v in trainer.value_head.state_dict().items():
            assert torch.equal(v, saved[k]), k
        opt = torch.load(step1 / "trainer_state" / "optimizer.pt", weights_only=False)
        head_ids = opt["param_groups"][1]["params"]
        assert opt["param_groups"][1]["lr"] == 1e-2 and len(head_ids) == 2
        for pid, p in zip(head_ids, trainer.optimizer.param_groups[1]["params"], strict=True):
            assert torch.equal(trainer.optimizer.state[p]["exp_avg"], opt["state"][pid]["exp_avg"])
        with pytest.raises(ValueError, match="resumes only a gae run"):
            ckpt.load(step1, trainer.model, trainer.optimizer)
    finally:
        trainer.close()

    # grpo: no critic anywhere (no head, no file, no value metrics), and a grpo checkpoint cannot resume a gae run
    grpo = train(config("grpo", steps=1))["train"]
    assert "value_loss" not in grpo[0]
    grpo_ckpt = tmp_path / "grpo" / "checkpoints" / "step_000001"
    assert not (grpo_ckpt / "trainer_state" / "value_head.safetensors").exists()
    with pytest.raises(ValueError, match="cannot resume a gae run"):
        train(config("grpo", steps=2, resume="auto", advantage="gae"))
    print(
        "step seconds, gae:",
        [round(r["time_step"], 2) for r in records],
        "train part:",
        [round(r["time_train"], 2) for r in records],
        "| grpo:",
        [round(r["time_step"], 2) for r in grpo],
        "train part:",
        [round(r["time_train"], 2) for r in grpo],
    )
