"""A learned critic for ``advantage="gae"``: a value head on the policy's own trunk, read at turn boundaries.

The head. ``V(s) = w . h(s) + b``, one ``torch.nn.Linear(hidden_size, 1)`` in float32 applied
to the policy's last hidden state (``output_hidden_states=True``; the final-norm output the
LM head also reads), as PPO for language models does with a shared backbone (Ziegler et al.
2019, "Fine-Tuning Language Models from Human Preferences"; Stiennon et al. 2020 trained a
separate value network). The trade-off:

* shared trunk (this module): one forward gives the log-probabilities and the values, no
  second model in memory; but the value loss's gradients also move the policy's trunk, so
  it enters the loss with a small weight (``vf_coef``, 0.1 by default) and a clip on how far
  the value may move per batch (``value_clip``);
* a separate critic (a second copy of the model with the head): the policy's trunk only sees
  the policy loss, at twice the weights, optimizer state and forward passes in memory.

The head starts at zero (weight and bias): every value is 0 before the first update, so the
first advantages are the discounted returns-to-go (whitened over the batch), no random
baseline, and the head learns from there. It computes in float32 whatever the trunk's dtype.

Turn level. The environment acts only between assistant turns, so the decision points are
the turn boundaries: the state before turn t is the prompt and everything up to turn t's
first sampled token, exactly what the policy conditions on when it samples that token. Its
value is the head applied at the position of the last token before turn t's first sampled
token (a causal model's hidden state at position p has seen ``ids[:p+1]``).
:func:`turn_boundaries` finds those positions from the ``turns`` array of
:func:`agentgym.trainer.tokens.episode_sequence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

VALUE_HEAD_FILE = "value_head.safetensors"


def turn_ids(turns: np.ndarray) -> np.ndarray:
    """The assistant turns (1-based) that have sampled tokens, in order: (K,) int64."""
    turns = np.asarray(turns, dtype=np.int64)
    return np.unique(turns[turns > 0])


def turn_boundaries(turns: np.ndarray) -> np.ndarray:
    """Positions of the states the critic scores, one per assistant turn with sampled tokens.

    turns: (L,) the 1-based turn of each token, 0 outside turns (``Sequence1D.turns``).
    Returns (K,) int64: for each turn of :func:`turn_ids`, the position just before its first
    sampled token. A turn starting at position 0 (nothing to condition on) is an error.
    """
    turns = np.asarray(turns, dtype=np.int64)
    positions = np.array([int(np.argmax(turns == t)) - 1 for t in turn_ids(turns)], dtype=np.int64)  # (K,)
    if (positions < 0).any():
        raise ValueError("a turn starts at the first token: its state has no token to read the value at")
    return positions


def turn_rewards(ids: np.ndarray, process_rewards: Sequence[float], outcome: float) -> np.ndarray:
    """Per-turn rewards for GAE: each turn's process reward, the outcome reward added to the last turn's.

    ids: (K,) the turns with sampled tokens (:func:`turn_ids`); process_rewards: one per
    environment step (step s is turn s). The reward of a step whose turn has no sampled token
    goes to the closest earlier turn that has some (to the first when there is none before), so
    no reward is lost. Returns (K,) float64.
    """
    ids = np.asarray(ids, dtype=np.int64)
    out = np.zeros(len(ids))  # (K,)
    if not len(ids):
        return out
    for s, r in enumerate(process_rewards, start=1):
        k = max(int(np.searchsorted(ids, s, side="right")) - 1, 0)  # the last turn id <= s
        out[k] += float(r)
    out[-1] += float(outcome)
    return out


class ValueHead(torch.nn.Module):
    """``V = w . h + b`` on the trunk's last hidden state, float32, zero-initialised (see the module docstring)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1, dtype=torch.float32)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden: (..., H) in any dtype -> values (...,) float32."""
        return self.linear(hidden.float()).squeeze(-1)  # type: ignore[no-any-return]


def hidden_size(model: Any) -> int:
    """The width of ``model``'s last hidden state (a transformers model or its PEFT wrapper)."""
    config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.hidden_size)


def make_value_head(model: Any) -> ValueHead:
    """A zero-initialised head for ``model``, on its device."""
    device = next(model.parameters()).device
    return ValueHead(hidden_size(model)).to(device)


def gather_values(head: ValueHead, hidden: Tensor, positions: Sequence[Tensor]) -> Tensor:
    """The head at ``positions[b]`` of row b of ``hidden`` (B, L, H), rows concatenated: (sum K_b,) float32."""
    rows = [head(hidden[b, p.to(hidden.device)]) for b, p in enumerate(positions)]  # K_b each
    return torch.cat(rows) if rows else torch.zeros(0, device=hidden.device)


def values_at(model: Any, head: ValueHead, batch: dict[str, Tensor], positions: Sequence[Tensor]) -> Tensor:
    """Values of the states at ``positions`` of a collated micro-batch (one forward; keeps the graph).

    batch: ``collate``'s dict (``ids``, ``attention_mask``); positions: per row, (K_b,) long
    positions into its ids (:func:`turn_boundaries`). Returns (sum K_b,) float32, rows in order.
    Wrap in ``torch.no_grad()`` for the rollout's (old) values.
    """
    out = model(
        input_ids=batch["ids"], attention_mask=batch["attention_mask"], output_hidden_states=True, logits_to_keep=1
    )
    return gather_values(head, out.hidden_states[-1], positions)
