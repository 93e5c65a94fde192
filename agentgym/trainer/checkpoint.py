"""Checkpoints that are standard model directories and resume exactly.

Each ``checkpoints/step_NNNNNN/`` is what ``save_pretrained`` writes, loadable as is by
``AutoModelForCausalLM.from_pretrained``, ``--policy hf:PATH`` and ``vllm serve PATH``:

* full fine-tuning: ``config.json``, ``generation_config.json``, ``model.safetensors`` and the
  tokenizer files (chat template included);
* LoRA: a PEFT adapter directory (``adapter_config.json``, ``adapter_model.safetensors``) plus
  the tokenizer; its ``base_model_name_or_path`` names the base model it was trained from.

Beside the weights, ``trainer_state/`` holds what exact resumption needs and a model loader
ignores: ``state.json`` (step, the data position, config), ``optimizer.pt`` and ``rng.pt``, and
with ``advantage="gae"`` the critic's ``value_head.safetensors`` (:mod:`agentgym.trainer.critic`;
its AdamW state is in ``optimizer.pt``, a second parameter group). The head sits in
``trainer_state/`` rather than beside ``model.safetensors`` on purpose: loaders that read every
``*.safetensors`` of a model directory (vLLM without a weights index) would take it for model
weights.
A run draws its tasks and sampling seeds from ``(seed, step)`` alone, so the step *is* the
data position; RNG states are saved for anything that does touch the global generators.

Writes are atomic: everything goes to ``step_NNNNNN.tmp``, is fsynced, and is renamed into
place; :func:`latest` only returns directories named exactly ``step_<digits>`` with a
``trainer_state/state.json``, so a crash mid-write (or a leftover ``*.tmp``) is never picked.

Not covered: sharded or distributed (FSDP/DeepSpeed) state, retention of old checkpoints.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_DIR = "trainer_state"
STATE = "state.json"
VALUE_HEAD = "value_head.safetensors"
FORMAT = 2
_STEP_DIR = re.compile(r"step_(\d+)")


def is_peft(model: Any) -> bool:
    """Whether ``model`` is a PEFT (LoRA) wrapper around a base model."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_model_dir(path: str | Path, model: Any, tokenizer: Any | None) -> None:
    """``save_pretrained`` of the model (or PEFT adapter) and the tokenizer into ``path``.

    A GGUF ``quantization_config`` left in the config (the weights are de-quantized floats)
    is dropped first, so the directory is a plain model that every loader accepts.
    """
    from agentgym.trainer.models import drop_quantization

    base = model.get_base_model() if is_peft(model) else model
    if drop_quantization(base.config):
        for attr, plain in (("hf_quantizer", None), ("quantization_method", None), ("is_quantized", False)):
            if attr in vars(base):
                setattr(base, attr, plain)
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    # a checkpoint every N steps: no "Writing model shards" bar each time (transformers leaves these unannotated)
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model.save_pretrained(path)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def save(
    path: str | Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    step: int,
    extra: dict[str, Any] | None = None,
    tokenizer: Any | None = None,
    value_head: torch.nn.Module | None = None,
) -> Path:
    """Write the checkpoint directory ``path`` atomically (see the module docstring); returns ``path``.

    ``value_head``: the critic of an ``advantage="gae"`` run, saved as ``trainer_state/value_head.safetensors``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model_dir(tmp, model, tokenizer)
    state_dir = tmp / STATE_DIR
    state_dir.mkdir()
    torch.save(optimizer.state_dict(), state_dir / "optimizer.pt")
    if value_head is not None:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in value_head.state_dict().items()}, state_dir / VALUE_HEAD
        )
    torch.save(
        {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        state_dir / "rng.pt",
    )
    state = {
        "format": FORMAT,
        "step": step,
        "data_position": {"step": step},
        "kind": "lora" if is_peft(model) else "full",
        "value_head": value_head is not None,
        **(extra or {}),
    }
    (state_dir / STATE).write_text(json.dumps(state, indent=2))
    _fsync_tree(tmp)
    old = path.with_name(path.name + ".old")
    if path.exists():  # re-saving a step (e.g. after a resume): move the old one aside first
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
    tmp.rename(path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
    return path


def _load_full(path: Path, model: torch.nn.Module) -> None:
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors weights; is it a checkpoint directory?")
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights.update(load_file(f))
    own = model.state_dict()
    unexpected = sorted(set(weights) - set(own))
    if unexpected:
        raise ValueError(
            f"{path}: weights {unexpected[:3]} do not belong to this model; "
            "was it saved with another model or LoRA setting?"
        )
    loaded_ptrs = {own[k].data_ptr() for k in weights}
    missing = [
        k for k in own if k not in weights and own[k].data_ptr() not in loaded_ptrs
    ]  # tied weights are saved once
    if missing:
        raise ValueError(
            f"{path}: checkpoint lacks {len(missing)} weights (e.g. {missing[0]}); was it saved with another model?"
        )
    with torch.no_grad():
        for name, tensor in weights.items():
            own[name].copy_(tensor.to(own[name].device, own[name].dtype))


def _load_adapter(path: Path, model: Any) -> None:
    from peft import set_peft_model_state_dict

    file = path / "adapter_model.safetensors"
    if not file.exists():
        raise FileNotFoundError(f"{path}: no adapter_model.safetensors; was this run trained without LoRA?")
    result = set_peft_model_state_dict(model, load_file(file))
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise ValueError(f"{path}: adapter weights {unexpected[:3]} do not match this LoRA setting")


def load(
    path: str | Path,
    model: Any,
    optimizer: torch.optim.Optimizer | None = None,
    value_head: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Restore a checkpoint into ``model`` (and ``optimizer``, and a gae run's ``value_head``) and the global RNGs.

    Returns:
        The saved training state (``step``, ...).
    """
    path = Path(path)
    state_file = path / STATE_DIR / STATE
    if not state_file.exists():
        raise FileNotFoundError(
            f"{path}: no {STATE_DIR}/{STATE}; not a complete agentgym checkpoint (resume from checkpoints/step_N)"
        )
    state: dict[str, Any] = json.loads(state_file.read_text())
    want = "lora" if is_peft(model) else "full"
    if state.get("kind", want) != want:
        raise ValueError(
            f"{path}: a {state['kind']} checkpoint cannot resume a {want} run; match --lora-rank to the saved run"
        )
    head_file = path / STATE_DIR / VALUE_HEAD
    if value_head is not None and not head_file.exists():
        raise ValueError(
            f"{path}: no {STATE_DIR}/{VALUE_HEAD}; a checkpoint of an --advantage grpo run cannot resume a gae run"
        )
    if value_head is None and optimizer is not None and head_file.exists():
        raise ValueError(f"{path}: a checkpoint of an --advantage gae run (it has a value head) resumes only a gae run")
    (_load_adapter if is_peft(model) else _load_full)(path, model)
    if value_head is not None:
        with torch.no_grad():
            own = value_head.state_dict()
            saved = load_file(head_file)
            if saved.keys() != own.keys() or any(saved[k].shape != own[k].shape for k in own):
                raise ValueError(f"{path}: the saved value head does not fit this model's hidden size")
            for k, v in saved.items():
                own[k].copy_(v.to(own[k].device, own[k].dtype))
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(path / STATE_DIR / "optimizer.pt", weights_only=False))
    rng = torch.load(path / STATE_DIR / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    return state


def step_of(path: str | Path) -> int | None:
    """The step of a directory named exactly ``step_<digits>`` (None for anything else, e.g. ``step_3.tmp``)."""
    m = _STEP_DIR.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def latest(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``output_dir/checkpoints`` (temp and partial directories ignored)."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = [(s, p) for p in root.iterdir() if (s := step_of(p)) is not None and (p / STATE_DIR / STATE).is_file()]
    return max(found)[1] if found else None
