"""Episodes -> training batch: one sequence per episode, per-token advantages, masks from lengths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agentgym.trainer import advantages as adv_fn
from agentgym.trainer.critic import turn_boundaries, turn_ids
from agentgym.trainer.critic import turn_rewards as critic_turn_rewards
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
    # advantage="gae" only (None otherwise): the K turns with sampled tokens, see agentgym.trainer.critic
    turns: torch.Tensor | None = None  # (L-1,) int64, the turn of each target token, 0 outside turns
    value_positions: torch.Tensor | None = None  # (K,) int64, where the critic reads each turn's state in ids
    turn_ids: torch.Tensor | None = None  # (K,) int64, the 1-based turns
    turn_rewards: torch.Tensor | None = None  # (K,) float64, process reward (+ outcome on the last turn)
    old_values: torch.Tensor | None = None  # (K,) float32, V(s_t) when the batch was sampled (set by apply_gae)
    returns: torch.Tensor | None = None  # (K,) float32, the critic's targets A_t + V_t (set by apply_gae)

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
    advantage: str = "grpo",
) -> Batch:
    """Advantages for every trainable token of ``trajs``; masked and zero-signal episodes dropped.

    A group whose episodes are all masked contributes nothing; the others' statistics use only
    their valid episodes (see :mod:`agentgym.trainer.advantages`). With ``advantage="gae"`` the
    valid episodes are all kept (no zero-variance filter: a value error is signal), carry their
    turn boundaries and per-turn rewards, and get zero advantages until :func:`apply_gae` fills
    them from the critic's values.
    """
    if advantage not in ("grpo", "gae"):
        raise ValueError(f"advantage must be grpo or gae; got {advantage!r}")
    gae = advantage == "gae"
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
    if filter_zero_variance and not gae:
        for g in set(group_ids):
            members = [i for i, x in enumerate(group_ids) if x == g]
            if not signal[members].any():
                keep[members] = False

    episodes = []
    for i in np.flatnonzero(keep):
        s = seqs[i]
        token_adv = np.zeros(len(s.ids)) if gae else adv_fn.token_advantages(per_turn[i], s.turns)  # (L,)
        episode = Episode(
            ids=torch.from_numpy(s.ids),
            targets=torch.from_numpy(s.ids[1:]),
            mask=torch.from_numpy(s.trainable[1:].astype(np.float32)),
            advantages=torch.from_numpy(token_adv[1:].astype(np.float32)),
            sample_logprobs=torch.from_numpy(s.sample_logprobs[1:]),
        )
        if gae:
            t_ids = turn_ids(s.turns)  # (K,)
            episode.turns = torch.from_numpy(s.turns[1:].copy())
            episode.value_positions = torch.from_numpy(turn_boundaries(s.turns))
            episode.turn_ids = torch.from_numpy(t_ids)
            episode.turn_rewards = torch.from_numpy(
                critic_turn_rewards(t_ids, trajs[int(i)].process_rewards, float(trajs[int(i)].outcome_reward or 0.0))
            )
        episodes.append(episode)
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


def apply_gae(
    batch: Batch,
    old_values: Sequence[torch.Tensor],
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    scale: adv_fn.Scale = "group",
) -> dict[str, float]:
    """Turn-level GAE advantages and value targets for a ``make_batch(..., advantage="gae")`` batch, in place.

    old_values: per episode, (K,) critic values at its turn boundaries (no gradient). Per episode
    :func:`agentgym.trainer.advantages.gae` gives (advantages, returns) per turn; the advantages are
    whitened over every turn of the batch (scale ``group`` or ``batch``) or kept raw (``none``), then
    reach each turn's tokens (:func:`agentgym.trainer.advantages.token_advantages`). Sets each
    episode's ``advantages``, ``old_values`` and ``returns``.

    Returns:
        Critic metrics: ``explained_variance`` (``1 - Var(R - V) / Var(R)`` over the batch's turns,
        NaN when the returns are constant), ``value_mean``, ``returns_mean``, ``advantage_abs_mean``.
    """
    adv_fn._check_scale(scale)
    per_turn, returns, values = [], [], []
    for e, v_old in zip(batch.episodes, old_values, strict=True):
        if e.turn_rewards is None:
            raise ValueError("apply_gae needs a batch made with advantage='gae' (turn boundaries and rewards)")
        v_np = v_old.detach().double().cpu().numpy()  # (K,)
        a, r = adv_fn.gae(e.turn_rewards.numpy(), v_np, gamma, lam)  # (K,), (K,)
        per_turn.append(a)
        returns.append(r)
        values.append(v_np)
    if scale != "none":
        per_turn = adv_fn.whiten(per_turn)
    for e, a, r, v in zip(batch.episodes, per_turn, returns, values, strict=True):
        assert e.turns is not None and e.turn_ids is not None
        dense = np.zeros(int(e.turn_ids.max()) if len(e.turn_ids) else 0)  # index t-1 -> turn t
        dense[e.turn_ids.numpy() - 1] = a
        e.advantages = torch.from_numpy(adv_fn.token_advantages(dense, e.turns.numpy()).astype(np.float32))
        e.returns = torch.from_numpy(r.astype(np.float32))
        e.old_values = torch.from_numpy(v.astype(np.float32))
    flat_r = np.concatenate(returns) if returns else np.zeros(0)
    flat_v = np.concatenate(values) if values else np.zeros(0)
    flat_a = np.concatenate(per_turn) if per_turn else np.zeros(0)
    var_r = float(flat_r.var()) if flat_r.size else 0.0
    stats = {
        "explained_variance": 1.0 - float((flat_r - flat_v).var()) / var_r if var_r > 0 else float("nan"),
        "value_mean": float(flat_v.mean()) if flat_v.size else 0.0,
        "returns_mean": float(flat_r.mean()) if flat_r.size else 0.0,
        "advantage_abs_mean": float(np.abs(flat_a).mean()) if flat_a.size else 0.0,
    }
    batch.stats.update(stats)
    return stats


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
