"""Policy losses, KL and importance weights: small pure functions on (B, T) tensors.

Every function returns a per-token quantity; :func:`token_mean` reduces with the token-level
normaliser of the whole optimizer step (DAPO, Yu et al. 2025), so the sum over micro-batches
of ``token_mean(x, mask, n_step_tokens)`` is the same number for any micro-batch split.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def ppo_clip(
    logp: Tensor, old_logp: Tensor, adv: Tensor, eps_low: float = 0.2, eps_high: float = 0.28
) -> tuple[Tensor, Tensor]:
    """PPO-clip with decoupled ranges: -min(rA, clip(r, 1-eps_low, 1+eps_high) A).

    logp, old_logp, adv: (B, T). Returns (loss (B, T), clipped (B, T) bool).
    """
    ratio = torch.exp(logp - old_logp)  # (B, T)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    return loss, (clipped < unclipped)


def pg(
    logp: Tensor, old_logp: Tensor, adv: Tensor, eps_low: float = 0.2, eps_high: float = 0.28
) -> tuple[Tensor, Tensor]:
    """Plain policy gradient, -r A with r = pi/pi_old (no clipping; on-policy REINFORCE when epochs=1)."""
    ratio = torch.exp(logp - old_logp)  # (B, T)
    return -ratio * adv, torch.zeros_like(adv, dtype=torch.bool)


LOSSES: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {"ppo_clip": ppo_clip, "pg": pg}


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Schulman's k3 estimator of KL(pi || pi_ref): exp(d) - d - 1 with d = ref_logp - logp; (B, T), >= 0."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def tis_weights(old_logp: Tensor, sample_logp: Tensor, cap: float) -> Tensor:
    """Truncated importance sampling (Yao et al. 2025): min(pi_old / pi_sampler, cap), no gradient; (B, T)."""
    if cap <= 0:
        return torch.ones_like(old_logp)
    return torch.exp(old_logp - sample_logp).clamp(max=cap).detach()


def token_mean(x: Tensor, mask: Tensor, n_tokens: int | float) -> Tensor:
    """sum(x * mask) / n_tokens, where n_tokens counts the trainable tokens of the whole optimizer step."""
    return (x * mask).sum() / max(float(n_tokens), 1.0)


def token_logprobs(logits: Tensor, targets: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Log-probabilities of ``targets`` and entropies under softmax(logits / T).

    logits: (B, T, V); targets: (B, T). Returns (logp (B, T), entropy (B, T)).
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logz = torch.logsumexp(logits, dim=-1)  # (B, T)
    logp = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - logz  # (B, T)
    with torch.no_grad():
        probs = torch.softmax(logits, dim=-1)
        entropy = logz - (probs * logits).sum(-1)  # (B, T)
    return logp, entropy
