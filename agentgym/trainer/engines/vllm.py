"""vLLM engine (GPU): same interface as the HF engine; weights synced from the trainer after every step.

vLLM is imported lazily, so this module imports (and the rest of the trainer runs) without it.
Logprobs are requested in ``processed_logprobs`` mode: of the distribution actually sampled
(after temperature and top-k), like the HF engine's.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

import torch

from agentgym.trainer.engines.base import Completion, SamplingParams


def _require_vllm() -> Any:
    if not torch.cuda.is_available():
        raise RuntimeError("the vllm engine needs a CUDA GPU; on CPU use engine='hf'")
    try:
        return importlib.import_module("vllm")  # by name: vLLM is an optional extra, absent where mypy runs
    except ImportError as e:
        raise ImportError("the vllm engine needs vLLM: pip install 'agentgym[gpu]' (vllm)") from e


class VLLMEngine:
    """Samples with an in-process vLLM ``LLM`` whose weights the trainer overwrites after each step."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_path: str,
        gpu_memory_utilization: float = 0.3,
        dtype: str = "auto",
        **kwargs: Any,
    ):
        # In-process engine, so the trainer can reach the model runner and load weights into it.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = _require_vllm()
        from agentgym.trainer.models import resolve

        self._vllm = vllm
        self.tokenizer = tokenizer
        self.llm = vllm.LLM(
            model=resolve(model_path),
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            enable_prefix_caching=True,
            logprobs_mode="processed_logprobs",
            **kwargs,
        )
        if model is not None:
            self.sync_weights(model)

    def _runner_model(self) -> Any:
        executor = self.llm.llm_engine.model_executor
        worker = executor.driver_worker
        worker = getattr(worker, "worker", worker)
        return worker.model_runner.model

    def sync_weights(self, model: Any) -> None:
        """Copy the trainer's current weights into vLLM (LoRA adapters merged), then drop cached prefixes."""
        source = model
        if hasattr(model, "merge_adapter") and hasattr(model, "unmerge_adapter"):
            model.merge_adapter()
        try:
            state = source.state_dict()
            names = {}
            for name, tensor in state.items():
                if "lora_" in name:
                    continue
                clean = name.replace("base_model.model.", "").replace(".base_layer", "")
                names[clean] = tensor
            self._runner_model().load_weights(names.items())
        finally:
            if hasattr(model, "unmerge_adapter"):
                model.unmerge_adapter()
        self.llm.reset_prefix_cache()

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """Sample one completion per prompt, with the logprob of each sampled id."""
        vllm = self._vllm
        limits = params.limits(len(prompts))
        # One seed per prompt when given (a sample must not depend on the batch it lands in).
        seeds = params.prompt_seeds(len(prompts)) or [params.seed + i for i in range(len(prompts))]
        sampling = [
            vllm.SamplingParams(
                max_tokens=m,
                temperature=params.temperature,
                top_k=params.top_k if params.top_k > 0 else -1,
                seed=seeds[i],
                logprobs=0,
                stop_token_ids=list(params.stop_ids),
                detokenize=False,
            )
            for i, m in enumerate(limits)
        ]
        outputs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], sampling, use_tqdm=False)
        out = []
        for o in outputs:
            c = o.outputs[0]
            ids = list(c.token_ids)
            logprobs = [float(step[t].logprob) for t, step in zip(ids, c.logprobs, strict=True)]
            out.append(Completion(ids, logprobs, "stop" if ids and ids[-1] in set(params.stop_ids) else "length"))
        return out
