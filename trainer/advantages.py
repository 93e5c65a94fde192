"""GRPO advantages: pure functions on rewards, tested against hand-computed values.

Notation: N episodes in a batch, each in a group (the G episodes of one task); episode i
has T_i assistant turns. Standard deviations are population std (ddof=0).

* Outcome advantage (Shao et al. 2024): ``A_i = (r_i - mean_g(r)) / scale``, with scale
  the group std (``group``), the std of the centred rewards over the batch (``batch``)
  or 1 (``none``, Dr. GRPO).
* Process advantage: per-turn returns ``R_{i,t} = r_{i,t} + gamma R_{i,t+1}``,
  normalised over all (episode, turn) returns of the group, mixed per turn:
  ``A_{i,t} = (1 - w) A_i + w (R_{i,t} - mean_g(R)) / std_g(R)``.
* Masked episodes (infrastructure failures) take no part in any statistic and get 0.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

Scale = Literal["group", "batch", "none"]
EPS = 1e-6


def _groups(group_ids: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, g in enumerate(group_ids):
        out.setdefault(g, []).append(i)
    return out


def outcome_advantages(rewards: np.ndarray, group_ids: Sequence[str], valid: np.ndarray | None = None,
                       scale: Scale = "group", eps: float = EPS) -> np.ndarray:
    """Group-relative outcome advantages.

    rewards: (N,) outcome reward per episode; valid: (N,) bool, False for masked episodes.
    Returns (N,) float64; 0 for masked episodes.
    """
    rewards = np.asarray(rewards, dtype=np.float64)  # (N,)
    valid = np.ones(len(rewards), bool) if valid is None else np.asarray(valid, bool)  # (N,)
    centred = np.zeros_like(rewards)  # (N,)
    group_std = np.ones_like(rewards)  # (N,)
    for idx in _groups(group_ids).values():
        members = [i for i in idx if valid[i]]
        if not members:
            continue
        r = rewards[members]
        centred[members] = r - r.mean()
        group_std[members] = r.std()
    if scale == "group":
        return np.where(valid, centred / (group_std + eps), 0.0)
    if scale == "batch":
        std = centred[valid].std() if valid.any() else 1.0
        return np.where(valid, centred / (std + eps), 0.0)
    if scale == "none":
        return np.where(valid, centred, 0.0)
    raise ValueError(f"unknown advantage scale {scale!r}; use group, batch or none")


def zero_variance_groups(rewards: np.ndarray, group_ids: Sequence[str], valid: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: True for episodes whose group's valid rewards are all equal (no learning signal)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    valid = np.ones(len(rewards), bool) if valid is None else np.asarray(valid, bool)
    out = np.zeros(len(rewards), bool)
    for idx in _groups(group_ids).values():
        members = [i for i in idx if valid[i]]
        if not members or np.ptp(rewards[members]) == 0.0:
            out[idx] = True
    return out


def discounted_returns(turn_rewards: Sequence[float], gamma: float) -> np.ndarray:
    """R_t = r_t + gamma R_{t+1}: (T,) rewards -> (T,) returns."""
    returns = np.zeros(len(turn_rewards))
    running = 0.0
    for t in range(len(turn_rewards) - 1, -1, -1):
        running = float(turn_rewards[t]) + gamma * running
        returns[t] = running
    return returns


def process_advantages(turn_rewards: Sequence[Sequence[float]], group_ids: Sequence[str], gamma: float = 1.0,
                       valid: np.ndarray | None = None, eps: float = EPS) -> list[np.ndarray]:
    """Per-turn returns normalised within the group: N ragged (T_i,) rewards -> N (T_i,) advantages."""
    valid = np.ones(len(turn_rewards), bool) if valid is None else np.asarray(valid, bool)
    returns = [discounted_returns(r, gamma) for r in turn_rewards]  # N x (T_i,)
    out = [np.zeros(len(r)) for r in returns]
    for idx in _groups(group_ids).values():
        members = [i for i in idx if valid[i]]
        pooled = np.concatenate([returns[i] for i in members]) if members else np.zeros(0)
        if pooled.size == 0:
            continue
        mean, std = pooled.mean(), pooled.std()
        for i in members:
            out[i] = (returns[i] - mean) / (std + eps)
    return out


def turn_advantages(outcome: np.ndarray, process: list[np.ndarray] | None, weight: float) -> list[np.ndarray]:
    """Mix outcome (N,) and process N x (T_i,) advantages per turn: (1-w) A_i + w A_{i,t}.

    Without process advantages each episode gets a (1,) array: its outcome advantage, for every turn.
    """
    if process is None or weight == 0.0:
        return [np.array([a], dtype=np.float64) for a in outcome]
    return [(1.0 - weight) * a + weight * p for a, p in zip(outcome, process)]


def token_advantages(turn_adv: np.ndarray, token_turns: np.ndarray) -> np.ndarray:
    """Broadcast per-turn advantages to tokens.

    turn_adv: (T,) advantage of assistant turns 1..T; token_turns: (L,) the turn (1-based) of
    each token, 0 for tokens outside any turn. Returns (L,), 0 where token_turns is 0. A single
    outcome advantage (T == 1) reaches every turn.
    """
    turn_adv = np.asarray(turn_adv, dtype=np.float64)
    token_turns = np.asarray(token_turns, dtype=np.int64)
    if len(turn_adv) == 0:
        return np.zeros(len(token_turns))
    if len(turn_adv) == 1:
        return np.where(token_turns > 0, turn_adv[0], 0.0)
    padded = np.concatenate([[0.0], turn_adv])  # index 0 -> no turn
    return padded[np.clip(token_turns, 0, len(turn_adv))]
