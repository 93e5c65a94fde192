"""The engine interface shared by the HF and vLLM back ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class SamplingParams:
    """How to sample one ``generate`` call."""

    max_tokens: int | Sequence[int] = 128
    """New tokens per prompt (one number, or one per prompt)."""
    temperature: float = 1.0
    """0: greedy. Logprobs are of the tempered (and top-k restricted) distribution actually sampled."""
    top_k: int = 0
    """Restrict sampling to the k most likely tokens (0: off)."""
    seed: int = 0
    """Seed of this call's sampling; a call is a function of (weights, prompts, params)."""
    seeds: Sequence[int] | None = None
    """One seed per prompt (overrides ``seed``): each prompt's sample is then a function of its own seed and
    prompt alone, whatever other prompts share the call (up to floating-point differences of batched kernels)."""
    stop_ids: Sequence[int] = field(default_factory=tuple)
    """Token ids that end a completion (included in its ids, finish reason ``stop``)."""

    def limits(self, n: int) -> list[int]:
        """``max_tokens`` for each of ``n`` prompts."""
        if isinstance(self.max_tokens, int):
            return [self.max_tokens] * n
        if len(self.max_tokens) != n:
            raise ValueError(f"max_tokens has {len(self.max_tokens)} entries for {n} prompts")
        return [int(m) for m in self.max_tokens]

    def prompt_seeds(self, n: int) -> list[int] | None:
        """``seeds`` checked against ``n`` prompts (None when the call has one seed)."""
        if self.seeds is None:
            return None
        if len(self.seeds) != n:
            raise ValueError(f"seeds has {len(self.seeds)} entries for {n} prompts")
        return [int(s) for s in self.seeds]


@dataclass
class Completion:
    """One sampled completion."""

    ids: list[int]
    """Sampled ids, the stop token included when one ended the completion."""
    logprobs: list[float]
    """Logprob of each sampled id under the sampling distribution."""
    finish_reason: str
    """``stop`` (a stop id) or ``length`` (max_tokens reached)."""


class Engine(Protocol):
    """Samples token ids from a model, given token ids; the trainer's only view of generation."""

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """Sample one completion per prompt (token ids in, token ids out)."""
        ...

    def sync_weights(self, model: Any) -> None:
        """Make the engine sample from ``model``'s current weights (a no-op when it samples with ``model`` itself)."""
        ...
