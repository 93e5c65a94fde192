"""The user journey through the real CLI: train -> checkpoint -> evaluate it -> load it with plain transformers.

The ``train`` step is also the regression test of ``agentgym train`` dispatching to its handler (it used to
crash: Namespace has no attribute 'fn').
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentgym.testing import run_cli
from agentgym.trainer import checkpoint as ckpt
from agentgym.trainer.engines.hf import HFEngine, cache_keyword


def _cli(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    # Deprecations are errors in the CLI as in pytest: a deprecated transformers API would end every
    # hf-policy episode as policy_error.
    env = {
        "AGENTGYM_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "PYTHONWARNINGS": "error::DeprecationWarning,error::FutureWarning",
    }
    result = run_cli(*args, cwd=cwd, env=env, timeout=900)
    assert result.returncode == 0, f"agentgym {' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def test_train_then_evaluate_the_checkpoint_then_load_it_with_transformers(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    trained = _cli(
        "train",
        "--env",
        "Calculator-v0",
        "--model",
        "tiny",
        "--steps",
        "2",
        "--output-dir",
        "runs/calc",
        "--no-progress",
        cwd=tmp_path,
        cache=cache,
    )
    assert "metrics:" in trained.stdout
    last = ckpt.latest(tmp_path / "runs" / "calc")
    assert last is not None and last.name == "step_000002"
    assert (last / "config.json").exists()

    result = _cli(
        "eval",
        "Calculator-v0",
        "--policy",
        f"hf:{last}",
        "--tasks",
        "4",
        "--workers",
        "1",
        "--out",
        "runs/eval",
        cwd=tmp_path,
        cache=cache,
    )
    assert "pass@1" in result.stdout
    trajs = [json.loads(line) for line in (tmp_path / "runs" / "eval" / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajs) == 4
    reasons = {t.get("termination_reason") for t in trajs}
    assert "policy_error" not in reasons, reasons
    assert all(t["num_turns"] >= 1 if "num_turns" in t else True for t in trajs)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = AutoModelForCausalLM.from_pretrained(last)
        tokenizer = AutoTokenizer.from_pretrained(last)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 6 * 7?"}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 3 or int(out[0, -1]) == tokenizer.eos_token_id


def test_hf_engine_passes_the_cache_under_the_models_own_keyword() -> None:
    """Transformers >= 5.24 names it ``cache`` (``past_key_values`` is deprecated); older models keep the old name."""

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return None

    class New(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, use_cache=None):
            return None

    assert cache_keyword(Old()) == "past_key_values"
    assert cache_keyword(New()) == "cache"


def test_hf_engine_samples_without_deprecation_warnings(tiny_dir: Path) -> None:
    from agentgym.trainer.engines import SamplingParams
    from agentgym.trainer.models import load_model

    model, tok = load_model(str(tiny_dir))
    engine = HFEngine(model, tok)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a, b) = engine.generate([[1, 2, 3], [4, 5]], SamplingParams(max_tokens=5, temperature=1.0, seed=0))
    assert len(a.ids) == 5 and len(b.ids) == 5 and len(a.logprobs) == 5
