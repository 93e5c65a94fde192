"""Loss functions against hand-computed values; token-level normalisation invariant to micro-batching."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from agentgym.trainer.batch import make_batch
from agentgym.trainer.config import GRPOConfig
from agentgym.trainer.loop import accumulate_gradients
from agentgym.trainer.loss import LOSSES, k3_kl, tis_weights, token_logprobs, token_mean
from agentgym.trajectory import Step, TokenSegment, Trajectory


def test_ppo_clip_with_decoupled_ranges() -> None:
    ratio = torch.tensor([[1.5, 0.5, 0.5, 1.5]])
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    loss, clipped = LOSSES["ppo_clip"](ratio.log(), torch.zeros_like(ratio), adv, eps_low=0.2, eps_high=0.28)
    # r=1.5,A=+1 -> -min(1.5, 1.28); r=.5,A=+1 -> -min(.5, .8);
    # r=.5,A=-1 -> -min(-.5, -.8); r=1.5,A=-1 -> -min(-1.5, -1.28)
    torch.testing.assert_close(loss, torch.tensor([[-1.28, -0.5, 0.8, 1.5]]))
    assert clipped.tolist() == [[True, False, True, False]]


def test_pg_loss_is_minus_ratio_times_advantage() -> None:
    loss, clipped = LOSSES["pg"](torch.tensor([[0.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]))
    assert loss.item() == -2.0 and not clipped.any()


def test_k3_kl() -> None:
    kl = k3_kl(torch.tensor([math.log(0.5), math.log(0.3)]), torch.tensor([math.log(0.25), math.log(0.3)]))
    torch.testing.assert_close(kl, torch.tensor([0.5 + math.log(2) - 1, 0.0]))  # exp(d) - d - 1, d = log(.25/.5)


def test_truncated_importance_weights() -> None:
    w = tis_weights(torch.tensor([math.log(3.0), math.log(0.5)]), torch.zeros(2), cap=2.0)
    torch.testing.assert_close(w, torch.tensor([2.0, 0.5]))
    assert tis_weights(torch.tensor([5.0]), torch.zeros(1), cap=0).item() == 1.0


def test_token_mean_uses_the_step_normaliser() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert token_mean(x, mask, n_tokens=8).item() == pytest.approx(0.5)


def test_token_logprobs_are_of_the_tempered_distribution() -> None:
    logits = torch.tensor([[[2.0, 0.0, -1.0]]])
    logp, entropy = token_logprobs(logits, torch.tensor([[0]]), temperature=2.0)
    expected = torch.log_softmax(logits / 2.0, -1)[0, 0, 0]
    torch.testing.assert_close(logp[0, 0], expected)
    p = torch.softmax(logits / 2.0, -1)
    torch.testing.assert_close(entropy[0, 0], -(p * p.log()).sum())


def _fake_trajectory(i: int, n_prompt: int, n_sampled: int, reward: float, group: str) -> Trajectory:
    g = torch.Generator().manual_seed(i)
    ids = torch.randint(3, 500, (n_prompt + n_sampled,), generator=g).tolist()
    return Trajectory(
        env_id="x",
        task_id=group,
        group_id=group,
        outcome_reward=reward,
        steps=[Step("a", [], reward, {}, {"process_reward": 0.0})],
        segments=[
            TokenSegment(ids[:n_prompt], False, None, "prompt", 0),
            TokenSegment(ids[n_prompt:], True, [-1.0] * n_sampled, "sampled", 1),
        ],
    )


def test_gradients_are_identical_under_any_micro_batch_split(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    trajs = [_fake_trajectory(i, 5 + 3 * i, 2 + 5 * (i % 3), float(i % 2), f"g{i // 3}") for i in range(6)]
    episodes = make_batch(trajs).episodes
    assert len(episodes) == 6
    grads = []
    for mbs in (1, 2, 6):
        model = AutoModelForCausalLM.from_pretrained(tiny_dir)
        accumulate_gradients(model, episodes, GRPOConfig(micro_batch_size=mbs), pad_id=0, device="cpu")
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for other in grads[1:]:
        for name, g in grads[0].items():
            torch.testing.assert_close(
                other[name], g, rtol=1e-4, atol=1e-7, msg=f"gradient of {name} depends on the micro-batch size"
            )
