"""Token-level policies for ``agentgym run/eval``: ``hf:<model>`` and ``vllm:<model>``.

They record the exact segments the trainer consumes (prompt, sampled ids with logprobs,
env deltas) in ``ctx.segments``, one episode per context; ``act`` is thread-safe.

Tools are shown through the model's own chat template when it renders ``tools=`` (else the
environment's Hermes block; ``tools="block"`` forces it). When the template describes the
tools, the environment's tool-call parser is set to the model family's format (``parser=``
names one explicitly, and is then always applied): see :mod:`agentgym.trainer.tokens` and
:func:`agentgym.parsing.detect_parser`.
The format is :attr:`HFPolicy.tool_format`, which rollouts send in ``reset``'s options
(``tool_format``), so remote and Ray environments read it too.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from agentgym.policies import Generation, PolicyContext
from agentgym.trainer.engines import SamplingParams, make_engine
from agentgym.trainer.models import load_model
from agentgym.trainer.tokens import ChatTokens, EpisodeTokens


class HFPolicy:
    """Samples turns with a transformers model (``tiny``, ``smollm2``, a path or hub id)."""

    engine_kind = "hf"

    def __init__(
        self,
        path: str,
        temperature: float = 0.7,
        max_tokens: int = 256,
        top_k: int = 0,
        device: str = "auto",
        threads: int = 2,
        tools: str = "auto",
        parser: str | None = None,
        **engine_kw: Any,
    ):
        torch.set_num_threads(threads)
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.model: Any = None  # vLLM loads its own copy of the weights
        if self.engine_kind == "hf":
            self.model, self.tokenizer = load_model(path, device=dev)
        else:
            self.tokenizer = load_model_tokenizer(path)
        self.chat = ChatTokens(self.tokenizer, tools=tools, parser=parser)
        self.parser = parser
        # The env must read the format the model is told: the template's (its family's parser) when the
        # template shows the tools, else the env's own block (its own parser), unless the user named one.
        self.tool_format: str | None = parser or (self.chat.parser if self.chat.native_tools else None)
        if self.engine_kind == "vllm":
            engine_kw.setdefault("model_path", path)
        self.engine = make_engine(self.engine_kind, self.model, self.tokenizer, **engine_kw)
        self.temperature, self.max_tokens, self.top_k = temperature, max_tokens, top_k
        self.name = f"{self.engine_kind}:{path}"
        self._lock = threading.Lock()

    def act(self, ctx: PolicyContext) -> Generation:
        """Sample the next turn from the episode's exact token context; record its segments."""
        tokens: EpisodeTokens | None = ctx.state.get("tokens")
        if tokens is None:
            tokens = ctx.state["tokens"] = EpisodeTokens(self.chat, ctx.messages, ctx.tools)
        else:
            tokens.add_env(ctx.messages, ctx.turn)
        params = SamplingParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_k=self.top_k,
            seed=int(ctx.rng.integers(2**31)),
            stop_ids=tuple(sorted(self.chat.stop_ids)),
        )
        with self._lock:
            (c,) = self.engine.generate([tokens.ids()], params)
        tokens.add_sampled(c.ids, c.logprobs, ctx.turn + 1)
        ctx.segments[:] = tokens.segments
        return Generation(self.chat.decode(c.ids), c.finish_reason)


def load_model_tokenizer(path: str) -> Any:
    """The tokenizer of a model spec, without loading the model."""
    from transformers import AutoTokenizer

    from agentgym.trainer.models import resolve

    return AutoTokenizer.from_pretrained(resolve(path))


class VLLMPolicy(HFPolicy):
    """Samples turns with vLLM on a GPU (same segments as ``HFPolicy``)."""

    engine_kind = "vllm"
