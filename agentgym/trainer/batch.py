"""Episodes -> training batch: one sequence per episode, per-token advantages, masks from lengths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agentgym.trainer import advantages as adv_fn
from agentgym.trainer.tokens import episode_sequence
from agentgym.trajectory import Trajectory


@dataclass
class Episode:
    """One episode, next-token aligned: ``targets[p]`` is predicted from ``ids[:p+1]``."""

    ids: torch.Tensor  # (L,) input ids
    targets: torch.Tensor  # (L-1,)
    mask: torch.Tensor  # (L-1,) float, 1 on sampled target tokens
    advantages: torch.Tensor  # (L-1,)
    sample_logprobs: torch.Tensor  # (L-1,)

    @property
    def n_tokens(self) -> int:
        """The number of trained (sampled) target tokens."""
        return int(self.mask.sum().item())


@dataclass
class Batch:
    """The episodes one rollout batch trains on, and statistics of the whole batch."""

    episodes: list[Episode]
    stats: dict[str, Any]


def mask_reason(traj: Trajectory, has_tokens: bool = True) -> str | None:
    """Why an episode takes no part in training (None: it is trained on).

    Masked: infrastructure failures (the rollout records the reason as ``termination_reason``,
    e.g. ``reset_error``, ``template_error``, ``engine_error``, ``env_error``, ``infra_error``),
    non-finite rewards (``nonfinite_reward``) and episodes without a sampled token (``no_tokens``).
    """
    if traj.infra_failure:
        return str(traj.termination_reason or "infra_error")
    rewards = [traj.outcome_reward or 0.0, *traj.process_rewards]
    if not all(isinstance(r, (int, float)) and np.isfinite(r) for r in rewards):
        return "nonfinite_reward"
    if not has_tokens:
        return "no_tokens"
    return None


def make_batch(
    trajs: Sequence[Trajectory],
    *,
    scale: adv_fn.Scale = "group",
    process_weight: float = 0.0,
    gamma: float = 1.0,
    filter_zero_variance: bool = True,
) -> Batch:
    """Advantages for every trainable token of ``trajs``; masked and zero-signal episodes dropped.

    A group whose episodes are all masked contributes nothing; the others' statistics use only
    their valid episodes (see :mod:`agentgym.trainer.advantages`).
    """
    group_ids = [t.group_id or t.task_id for t in trajs]
    seqs = [episode_sequence(t.segments) for t in trajs]
    reasons = [mask_reason(t, bool(s.trainable.any())) for t, s in zip(trajs, seqs, strict=True)]
    valid = np.array([r is None for r in reasons], dtype=bool)  # (N,)
    rewards = np.array(
        [float(t.outcome_reward or 0.0) if v else 0.0 for t, v in zip(trajs, valid, strict=True)]
    )  # (N,)
    a_out = adv_fn.outcome_advantages(rewards, group_ids, valid, scale)  # (N,)
    process = None
    if process_weight > 0:
        turn_rewards = [t.process_rewards if v else [] for t, v in zip(trajs, valid, strict=True)]  # N x (T_i,)
        process = adv_fn.process_advantages(turn_rewards, group_ids, gamma, valid, scale)  # N x (T_i,)
    per_turn = adv_fn.turn_advantages(a_out, process, process_weight)  # N x (T_i,) or N x (1,)

    signal = np.array([bool(np.any(a != 0)) for a in per_turn], dtype=bool) & valid  # (N,)
    keep = valid.copy()
    if filter_zero_variance:
        for g in set(group_ids):
            members = [i for i, x in enumerate(group_ids) if x == g]
            if not signal[members].any():
                keep[members] = False

    episodes = []
    for i in np.flatnonzero(keep):
        s = seqs[i]
        token_adv = adv_fn.token_advantages(per_turn[i], s.turns)  # (L,)
        episodes.append(
            Episode(
                ids=torch.from_numpy(s.ids),
                targets=torch.from_numpy(s.ids[1:]),
                mask=torch.from_numpy(s.trainable[1:].astype(np.float32)),
                advantages=torch.from_numpy(token_adv[1:].astype(np.float32)),
                sample_logprobs=torch.from_numpy(s.sample_logprobs[1:]),
            )
        )
    n_groups = len(set(group_ids))
    zero_groups = len({g for g, v in zip(group_ids, valid, strict=True) if v}) - len(
        {g for g, s in zip(group_ids, signal, strict=True) if s}
    )
    masked: dict[str, int] = {}
    for r in reasons:
        if r is not None:
            masked[r] = masked.get(r, 0) + 1
    stats = {
        "episodes": float(len(trajs)),
        "episodes_trained": float(len(episodes)),
        "episodes_masked": float((~valid).sum()),
        "masked_reasons": masked,
        "zero_variance_groups": float(zero_groups) / max(n_groups, 1),
        "advantage_abs_mean": float(np.mean(np.abs(a_out[valid]))) if valid.any() else 0.0,
    }
    return Batch(episodes, stats)


def collate(episodes: Sequence[Episode], pad_id: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch; the attention mask comes from the lengths, never from token ids."""
    lengths = torch.tensor([len(e.ids) for e in episodes])  # (B,)
    width = int(lengths.max())
    b = len(episodes)
    ids = torch.full((b, width), pad_id, dtype=torch.long)  # (B, L)
    tgt_shape = (b, width - 1)
    targets = torch.full(tgt_shape, pad_id, dtype=torch.long)  # (B, L-1)
    mask, adv, slp = torch.zeros(tgt_shape), torch.zeros(tgt_shape), torch.zeros(tgt_shape)  # (B, L-1)
    for r, e in enumerate(episodes):
        n = len(e.ids)
        ids[r, :n] = e.ids
        targets[r, : n - 1] = e.targets
        mask[r, : n - 1] = e.mask
        adv[r, : n - 1] = e.advantages
        slp[r, : n - 1] = e.sample_logprobs
    attention = (torch.arange(width)[None, :] < lengths[:, None]).long()  # (B, L)
    out = {
        "ids": ids,
        "attention_mask": attention,
        "targets": targets,
        "mask": mask,
        "advantages": adv,
        "sample_logprobs": slp,
    }
    return {k: v.to(device) for k, v in out.items()}
