"""GRPO advantages: pure functions on rewards, tested against hand-computed values.

Notation: N episodes in a batch, each in a group g (the G episodes of one task, which all
start from the same prompt); episode i has T_i assistant turns, per-turn (process) rewards
``r_{i,t}`` and an outcome reward ``o_i``. Standard deviations are population std (ddof=0).
Masked episodes (infrastructure failures) take no part in any statistic and get 0.

Outcome advantage (GRPO, Shao et al. 2024, "DeepSeekMath", eq. 3)
    ``A_i = (o_i - mean_g(o)) / s``, the same for every turn of the episode, with ``s``:

    * ``group``: the std of the group's outcomes (GRPO);
    * ``batch``: the std of the outcomes of the whole batch, the mean staying per group. This
      is TRL's ``scale_rewards="batch"`` (trl 1.16 ``GRPOTrainer._generate_and_score_completions``:
      ``rewards - mean_grouped_rewards`` divided by ``nanstd(rewards)`` over the batch, "Lite
      PPO", Liu et al. 2025). Differences from TRL, on purpose: population std (TRL applies
      Bessel's correction, a factor sqrt(N/(N-1)) larger), ``eps=1e-6`` (TRL 1e-4), and
      masked episodes are excluded from the std (TRL excludes only NaN rewards);
    * ``none``: 1 (Dr. GRPO, Liu et al. 2025: no difficulty bias from the std).

Process advantage (per-turn credit assignment, when ``process_weight > 0``)
    Turn t is credited with what happened from t on, the discounted return-to-go
    ``R_{i,t} = r_{i,t} + gamma R_{i,t+1}`` (causality: a turn cannot be blamed for rewards
    earned before it), minus a baseline that estimates the return-to-go expected at that
    decision point:

        ``b_{g,t} = mean over valid episodes j of g of R_{j,t}``, with ``R_{j,t} = 0`` for t > T_j,
        ``P_{i,t} = (R_{i,t} - b_{g,t}) / s``

    i.e. the time-dependent baseline of REINFORCE (Williams 1992; Greensmith et al. 2004),
    estimated from the group as in GRPO, on episodes padded to a common horizon with the
    zero reward of the absorbing "episode over" state. ``s``: the root mean square of the
    centred values over the real turns of the group (``group``), of the batch (``batch``),
    or 1 (``none``). Turns are mixed ``A_{i,t} = (1 - w) A_i + w P_{i,t}``.

    Properties: identical episodes get exactly 0 at every turn (the mean is computed as
    ``x_0 + mean(x - x_0)``, exact for equal values); at turn 1 (the shared prompt) it is the
    group baseline of the whole return. Including episode i in its own baseline scales its
    advantage by the constant (G-1)/G relative to the leave-one-out baseline of RLOO
    (Ahmadian et al. 2024), ``R_{i,t} - b_{g,t} = (G-1)/G (R_{i,t} - mean_{j != i} R_{j,t})``,
    because every index t averages over all G valid episodes; so the direction is that of
    the unbiased leave-one-out estimator.

Why not a baseline per turn index over the episodes that reached it
    When the agent decides when to stop, turn k of a 2-turn episode (its answer) and turn k
    of a 6-turn episode (mid-search) are different decision points, and the set of episodes
    still running at k is a consequence of earlier stop/continue actions. A per-index mean
    over the n_k survivors that includes the episode itself scales its advantage by
    (n_k - 1)/n_k, a weight that depends on how many chose to continue: the longest
    episode's extra turns get exactly 0 whatever they earned (n_k = 1), and a per-index std
    over a handful of survivors is degenerate. The weight on each turn thus correlates with
    the stopping action, a biased gradient for the decision to stop. Padding ended episodes
    with return 0 keeps all G episodes in every index (a fixed comparator set, so the
    weight is the constant (G-1)/G), and scoring the real turns by one group-wide RMS
    instead of a per-index std keeps rare late turns from being blown up. The previous
    estimator (one mean/std over all (episode, turn) returns of the group, as in GRPO's
    process supervision which normalises step rewards the same way) compares turn t with
    turn 1's larger return-to-go: two identical 3-turn episodes with rewards 1 per turn got
    [-1.22, 0, +1.22] (x w), pushing the first turn down and the last up.

Turn-level GAE (``advantage="gae"``, a learned critic instead of the group baseline)
    The decision points are the T_i turn boundaries of one episode; ``V_t`` is the critic's
    value of the state before turn t (:mod:`agentgym.trainer.critic`) and ``r_t`` the turn's
    reward (its process reward, plus the outcome reward on the last turn). With
    ``V_{T+1} = 0``:

        ``delta_t = r_t + gamma V_{t+1} - V_t``,
        ``A_t = sum_{k >= 0} (gamma lambda)^k delta_{t+k}``  (computed ``A_t = delta_t + gamma lambda A_{t+1}``),
        ``R_t = A_t + V_t``  (the critic's regression target, the lambda-return)

    (Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
    Estimation", eq. 16; PPO's estimator, Schulman et al. 2017). ``lambda = 1``: the discounted
    return-to-go minus ``V_t`` (unbiased, high variance); ``lambda = 0``: the one-step TD error
    (low variance, biased by the critic). The state after the last turn is terminal, value 0,
    also for an episode cut by a turn or token limit: its reward is final (nothing is earned
    after the cut), so there is nothing to bootstrap. Advantages are then whitened over all
    real turns of the batch (mean 0, std 1; :func:`whiten`, scales ``group`` and ``batch``) or
    left raw (``none``): a critic's baseline is per state, so there is no group to scale by.

Not covered: state-matched step groups (GiGPO, Feng et al. 2025, compares turns that reach
the same environment state; with sampled free text such repeats are rare after turn 1, where
this estimator already is the group baseline); token-level GAE (a value per token, as in
RLHF's PPO: here the environment acts only between turns, so the turn is the decision unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Scale = Literal["group", "batch", "none"]
SCALES = ("group", "batch", "none")
EPS = 1e-6


def _groups(group_ids: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, g in enumerate(group_ids):
        out.setdefault(g, []).append(i)
    return out


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; use group, batch or none")


def exact_mean(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Mean computed as ``x_0 + mean(x - x_0)``: exactly ``x_0`` when all values are equal (no rounding residue)."""
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        x = x.reshape(-1)
        return np.asarray(x[0] + np.mean(x - x[0]))
    first = np.take(x, [0], axis=axis)  # the first slice along ``axis``, kept for broadcasting
    return np.asarray(np.squeeze(first, axis=axis) + np.mean(x - first, axis=axis))


def outcome_advantages(
    rewards: np.ndarray,
    group_ids: Sequence[str],
    valid: np.ndarray | None = None,
    scale: Scale = "group",
    eps: float = EPS,
) -> np.ndarray:
    """Group-relative outcome advantages (see the module docstring for the three scales).

    rewards: (N,) outcome reward per episode; valid: (N,) bool, False for masked episodes.
    Returns (N,) float64; 0 for masked episodes.
    """
    _check_scale(scale)
    rewards = np.asarray(rewards, dtype=np.float64)  # (N,)
    valid = np.ones(len(rewards), bool) if valid is None else np.asarray(valid, bool)  # (N,)
    centred = np.zeros_like(rewards)  # (N,)
    group_std = np.ones_like(rewards)  # (N,)
    for idx in _groups(group_ids).values():
        members = [i for i in idx if valid[i]]
        if not members:
            continue
        r = rewards[members]  # (n,)
        centred[members] = r - exact_mean(r)
        group_std[members] = r.std()
    if scale == "group":
        return np.where(valid, centred / (group_std + eps), 0.0)
    if scale == "batch":
        std = rewards[valid].std() if valid.any() else 1.0
        return np.where(valid, centred / (std + eps), 0.0)
    return np.where(valid, centred, 0.0)


def discounted_returns(turn_rewards: Sequence[float], gamma: float) -> np.ndarray:
    """R_t = r_t + gamma R_{t+1}: (T,) rewards -> (T,) returns."""
    returns = np.zeros(len(turn_rewards))
    running = 0.0
    for t in range(len(turn_rewards) - 1, -1, -1):
        running = float(turn_rewards[t]) + gamma * running
        returns[t] = running
    return returns


def padded_returns(returns: Sequence[np.ndarray]) -> np.ndarray:
    """N ragged (T_i,) returns-to-go -> (n, H) with H = max T_i, 0 after an episode's end (absorbing state)."""
    horizon = max((len(r) for r in returns), default=0)
    out = np.zeros((len(returns), horizon))  # (n, H)
    for row, r in enumerate(returns):
        out[row, : len(r)] = r
    return out


def process_advantages(
    turn_rewards: Sequence[Sequence[float]],
    group_ids: Sequence[str],
    gamma: float = 1.0,
    valid: np.ndarray | None = None,
    scale: Scale = "group",
    eps: float = EPS,
) -> list[np.ndarray]:
    """Per-turn advantages: return-to-go minus the group's mean return-to-go at the same turn.

    Episodes that ended before a turn count 0 there. turn_rewards: N ragged (T_i,) process
    rewards; returns N (T_i,) advantages (zeros for masked episodes). See the module
    docstring for the estimator and why it is built this way.
    """
    _check_scale(scale)
    valid = np.ones(len(turn_rewards), bool) if valid is None else np.asarray(valid, bool)  # (N,)
    returns = [discounted_returns(r, gamma) for r in turn_rewards]  # N x (T_i,)
    centred = [np.zeros(len(r)) for r in returns]  # N x (T_i,)
    group_rms: dict[int, float] = {}
    for idx in _groups(group_ids).values():
        members = [i for i in idx if valid[i]]
        if not members:
            continue
        baseline = exact_mean(padded_returns([returns[i] for i in members]), axis=0)  # (H,)
        for i in members:
            centred[i] = returns[i] - baseline[: len(returns[i])]  # (T_i,)
        real = np.concatenate([centred[i] for i in members])  # (sum T_i,)
        rms = float(np.sqrt(np.mean(real**2))) if real.size else 0.0
        group_rms.update(dict.fromkeys(members, rms))
    if scale == "none":
        return [c if valid[i] else np.zeros_like(c) for i, c in enumerate(centred)]
    if scale == "batch":
        real = np.concatenate([centred[i] for i in np.flatnonzero(valid)] or [np.zeros(0)])
        batch_rms = float(np.sqrt(np.mean(real**2))) if real.size else 0.0
        return [c / (batch_rms + eps) if valid[i] else np.zeros_like(c) for i, c in enumerate(centred)]
    return [c / (group_rms[i] + eps) if valid[i] else np.zeros_like(c) for i, c in enumerate(centred)]


def turn_advantages(outcome: np.ndarray, process: list[np.ndarray] | None, weight: float) -> list[np.ndarray]:
    """Mix outcome (N,) and process N x (T_i,) advantages per turn: (1-w) A_i + w A_{i,t}.

    Without process advantages each episode gets a (1,) array: its outcome advantage, for every turn.
    """
    if process is None or weight == 0.0:
        return [np.array([a], dtype=np.float64) for a in outcome]
    return [(1.0 - weight) * a + weight * p for a, p in zip(outcome, process, strict=True)]


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
    return np.asarray(padded[np.clip(token_turns, 0, len(turn_adv))])


def gae(
    rewards: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    gamma: float,
    lam: float,
    last_value: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation over the T turns of one episode (see the module docstring).

    rewards, values: (T,) per-turn rewards ``r_t`` and critic values ``V_t``; ``last_value`` is
    ``V_{T+1}``, 0 for the terminal state (and for a truncated episode: its reward is final).
    Returns (advantages (T,), returns (T,)) as float64, ``returns = advantages + values``.
    """
    r = np.asarray(rewards, dtype=np.float64)  # (T,)
    v = np.asarray(values, dtype=np.float64)  # (T,)
    if r.shape != v.shape or r.ndim != 1:
        raise ValueError(f"rewards {r.shape} and values {v.shape} must be two (T,) arrays")
    nxt = np.append(v[1:], float(last_value))  # (T,) V_{t+1}
    delta = r + gamma * nxt - v  # (T,)
    adv = np.zeros_like(r)  # (T,)
    running = 0.0
    for t in range(len(r) - 1, -1, -1):
        running = float(delta[t]) + gamma * lam * running
        adv[t] = running
    return adv, adv + v


def whiten(advantages: Sequence[np.ndarray], eps: float = EPS) -> list[np.ndarray]:
    """Shift and scale ragged per-turn advantages to mean 0, std 1 over all their turns together.

    The batch normalisation of PPO implementations (OpenAI baselines, CleanRL ``norm_adv``);
    population std, ``eps`` added to it. Empty input or no turns: returned unchanged.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in advantages]
    flat = np.concatenate(arrays) if arrays else np.zeros(0)  # (sum T_i,)
    if not flat.size:
        return arrays
    mean, std = float(flat.mean()), float(flat.std())
    return [(a - mean) / (std + eps) for a in arrays]
