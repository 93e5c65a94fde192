"""Generation engines behind one interface: ``generate(prompts, params) -> [Completion]``.

``hf`` runs transformers (CPU or GPU); ``vllm`` runs vLLM on a GPU (imported lazily).
"""

from __future__ import annotations

from typing import Any

from agentgym.trainer.engines.base import Completion, Engine, SamplingParams


def make_engine(kind: str, model: Any, tokenizer: Any, **kwargs: Any) -> Engine:
    """``hf``: sample with ``model`` itself; ``vllm``: a vLLM copy of it, synced with ``sync_weights``."""
    if kind == "hf":
        from agentgym.trainer.engines.hf import HFEngine

        return HFEngine(model, tokenizer, **kwargs)
    if kind == "vllm":
        from agentgym.trainer.engines.vllm import VLLMEngine

        return VLLMEngine(model, tokenizer, **kwargs)
    raise ValueError(f"unknown engine {kind!r}; use hf or vllm")


__all__ = ["Completion", "Engine", "SamplingParams", "make_engine"]
