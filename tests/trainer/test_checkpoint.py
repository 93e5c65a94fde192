"""Checkpoints are standard model / PEFT adapter directories, written atomically, that resume exactly."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentgym.trainer import checkpoint as ckpt
from agentgym.trainer.config import GRPOConfig
from agentgym.trainer.metrics import resume_logs, truncate_jsonl
from agentgym.trainer.models import drop_quantization, load_model


def _one_step(model: torch.nn.Module, seed: int = 0) -> torch.optim.Optimizer:
    """One AdamW step on a language-model loss, so weights and optimizer state are non-trivial."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=g)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad()
    return opt


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_full_checkpoint_is_a_model_directory_transformers_loads(tiny_dir: Path, tmp_path: Path) -> None:
    model, tok = load_model(str(tiny_dir))
    opt = _one_step(model)
    path = ckpt.save(tmp_path / "checkpoints" / "step_000001", model, opt, 1, {"config": {"seed": 3}}, tokenizer=tok)
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "trainer_state"} <= names
    assert not (
        set(names) & {"weights.safetensors", "optimizer.pt", "rng.pt"}
    )  # training state sits beside, in trainer_state/
    assert json.loads((path / "trainer_state" / "state.json").read_text())["step"] == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = AutoModelForCausalLM.from_pretrained(path)
        loaded_tok = AutoTokenizer.from_pretrained(path)
    ids = torch.randint(0, model.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(1))
    assert torch.equal(_logits(loaded, ids), _logits(model, ids))  # the trained weights, bit for bit
    messages = [{"role": "user", "content": "6 * 7?"}]
    assert loaded_tok.chat_template, "chat template lost"
    assert loaded_tok.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    ) == tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_load_restores_weights_optimizer_and_rng_exactly(tiny_dir: Path, tmp_path: Path) -> None:
    model, tok = load_model(str(tiny_dir))
    opt = _one_step(model)
    torch.manual_seed(123)
    path = ckpt.save(tmp_path / "step_000004", model, opt, 4, tokenizer=tok)
    expected_draw = torch.rand(3)

    fresh, _ = load_model(str(tiny_dir))
    fresh_opt = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(999)
    state = ckpt.load(path, fresh, fresh_opt)
    assert state["step"] == 4 and state["kind"] == "full"
    assert torch.equal(torch.rand(3), expected_draw)
    for (n, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    # AdamW moments restored: the next optimizer step is identical too
    a_opt_state = opt.state_dict()["state"]
    b_opt_state = fresh_opt.state_dict()["state"]
    assert a_opt_state.keys() == b_opt_state.keys()
    for k in a_opt_state:
        assert torch.equal(a_opt_state[k]["exp_avg"], b_opt_state[k]["exp_avg"])


def test_lora_checkpoint_is_a_peft_adapter_directory(tiny_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base, tok = load_model(str(tiny_dir))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = get_peft_model(
            base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0, init_lora_weights=False)
        )
    opt = _one_step(model)
    path = ckpt.save(tmp_path / "step_000002", model, opt, 2, tokenizer=tok)
    assert (path / "adapter_config.json").exists() and (path / "adapter_model.safetensors").exists()
    assert not (path / "model.safetensors").exists()
    adapter = json.loads((path / "adapter_config.json").read_text())
    assert Path(adapter["base_model_name_or_path"]) == tiny_dir

    ids = torch.randint(0, base.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(2))
    loaded = AutoModelForCausalLM.from_pretrained(path)  # transformers' PEFT integration: base + adapter
    assert torch.allclose(_logits(loaded, ids), _logits(model, ids), atol=1e-5)
    via_policy, _ = load_model(str(path))  # what --policy hf:PATH loads
    assert torch.allclose(_logits(via_policy, ids), _logits(model, ids), atol=1e-5)

    full, _ = load_model(str(tiny_dir))
    with pytest.raises(ValueError, match="lora"):
        ckpt.load(path, full)


def test_latest_ignores_temp_partial_and_foreign_directories(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for name, complete in [
        ("step_000002", True),
        ("step_000010", True),
        ("step_000011.tmp", True),
        ("step_000012", False),
        ("step_000013.old", True),
        ("step_x", True),
        ("notes", True),
    ]:
        d = root / name / "trainer_state"
        d.mkdir(parents=True)
        if complete:
            (d / "state.json").write_text("{}")
    assert ckpt.latest(tmp_path) == root / "step_000010"
    assert ckpt.latest(tmp_path / "nothing") is None


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tiny_dir: Path, tmp_path: Path) -> None:
    model, tok = load_model(str(tiny_dir))
    opt = _one_step(model)
    path = ckpt.save(tmp_path / "checkpoints" / "step_000001", model, opt, 1, tokenizer=tok)
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}

    class Exploding:
        def save_pretrained(self, where: str | Path) -> None:
            Path(where, "tokenizer.json").write_text("partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.save(path, model, opt, 1, tokenizer=Exploding())
    with pytest.raises(OSError, match="disk full"):
        ckpt.save(tmp_path / "checkpoints" / "step_000002", model, opt, 2, tokenizer=Exploding())
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == before
    assert not (tmp_path / "checkpoints" / "step_000002").exists()
    assert ckpt.latest(tmp_path) == path  # the leftover step_000002.tmp is not a checkpoint


def test_save_every_is_on_by_default() -> None:
    assert GRPOConfig().save_every > 0
    assert GRPOConfig().save_every <= GRPOConfig().steps


def test_gguf_quantization_config_is_dropped_before_saving(tiny_dir: Path, tmp_path: Path) -> None:
    model, tok = load_model(str(tiny_dir))
    model.config.quantization_config = {"quant_method": "gguf"}
    opt = _one_step(model)
    path = ckpt.save(tmp_path / "step_000001", model, opt, 1, tokenizer=tok)
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    other = type("Cfg", (), {"quantization_config": {"quant_method": "bitsandbytes"}})()
    assert not drop_quantization(other) and other.quantization_config  # real quantization is kept


def test_truncate_jsonl_keeps_matching_records_and_drops_a_torn_line(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "rew')
    assert truncate_jsonl(log, lambda r: r["step"] <= 2) == 2
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2]


def test_resume_logs_cut_every_appended_log_to_the_resumed_step(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"kind": k, "step": s}) + "\n"
            for k, s in [("eval", 0), ("train", 1), ("train", 2), ("eval", 2), ("train", 3)]
        )
    )
    (tmp_path / "trajectories.jsonl").write_text(
        "".join(json.dumps({"metadata": {"step": s}}) + "\n" for s in (0, 0, 1, 1, 2, 2))
    )
    resume_logs(tmp_path, 2)
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2, 2]
    assert [json.loads(x)["metadata"]["step"] for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()] == [
        0,
        0,
        1,
        1,
    ]
    resume_logs(tmp_path, None)
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "trajectories.jsonl").exists()


def test_resumed_run_logs_each_step_once(
    run_config: Callable[..., GRPOConfig], digits_env_id: str, tmp_path: Path
) -> None:
    """Crash after step 2 was logged but before it was saved: the resumed run re-does step 2 and logs it once."""
    from agentgym.trainer.loop import train

    def config(**fields: int | str) -> GRPOConfig:
        return run_config(digits_env_id, tasks_per_step=2, group_size=2, save_every=1, **fields)

    train(config(steps=2))
    per_step = 2 * 2
    trajs = [json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajs) == 2 * per_step
    import shutil

    shutil.rmtree(tmp_path / "checkpoints" / "step_000002")  # as if the process died before saving step 2
    train(config(steps=3, resume="auto"))
    trajs = [json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    assert sorted(t["metadata"]["step"] for t in trajs) == sorted([0] * per_step + [1] * per_step + [2] * per_step)
    train_steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "train"
    ]
    assert train_steps == [1, 2, 3]
    assert ckpt.latest(tmp_path).name == "step_000003"


@pytest.mark.slow
def test_smollm2_checkpoint_is_a_plain_model_even_from_an_old_gguf_cache(tmp_path: Path) -> None:
    """SmolLM2 comes from a GGUF; its checkpoints must not carry ``quant_method: gguf`` (save_pretrained refuses it)."""
    import shutil

    from agentgym.trainer.models import ensure_smollm2

    cache = ensure_smollm2()
    assert "quantization_config" not in json.loads((cache / "config.json").read_text())
    old = tmp_path / "old-cache"  # as written before the GGUF entry was dropped
    shutil.copytree(cache, old)
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "quantization_config": {"quant_method": "gguf"}}))
    model, tok = load_model(str(old))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    path = ckpt.save(tmp_path / "step_000001", model, opt, 1, tokenizer=tok)
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    loaded = AutoModelForCausalLM.from_pretrained(path)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(_logits(loaded, ids), _logits(model, ids))
    assert AutoTokenizer.from_pretrained(path).chat_template == tok.chat_template
