"""The vLLM engine: same interface as the HF engine; needs a CUDA GPU (CI has none, so it skips there)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU")
def test_vllm_engine_samples_and_syncs_weights(tiny_dir: Path, tiny_tokenizer) -> None:
    from transformers import AutoModelForCausalLM

    from agentgym.trainer.engines import SamplingParams, make_engine

    model = AutoModelForCausalLM.from_pretrained(tiny_dir).cuda()
    engine = make_engine("vllm", model, tiny_tokenizer, model_path=str(tiny_dir), gpu_memory_utilization=0.2)
    params = SamplingParams(max_tokens=8, temperature=0.0, stop_ids=(2,))
    (before,) = engine.generate([[1, 87, 85, 264]], params)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    engine.sync_weights(model)
    (after,) = engine.generate([[1, 87, 85, 264]], params)
    assert before.ids != after.ids and len(after.logprobs) == len(after.ids)


def test_vllm_engine_refuses_cleanly_without_a_gpu(tiny_dir: Path, tiny_tokenizer) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from agentgym.trainer.engines import make_engine

    with pytest.raises(RuntimeError, match="needs a CUDA GPU; on CPU use engine='hf'"):
        make_engine("vllm", None, tiny_tokenizer, model_path=str(tiny_dir))
