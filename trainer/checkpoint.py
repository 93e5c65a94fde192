"""Checkpoints that resume exactly: trainable weights, optimizer, step, RNG and data position.

A run draws its tasks and sampling seeds from ``(seed, step)`` alone, so restoring the
weights, the optimizer state and the step reproduces the remaining steps bit for bit;
RNG states are saved as well for anything that does touch the global generators.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE = "trainer_state.json"


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters the optimizer updates (all of them, or the LoRA adapters), by name."""
    return {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}


def save(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (a directory) atomically: weights, optimizer, RNG, state JSON."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    params = trainable_state(model)
    # Tied weights (embeddings = lm_head) share storage; store each tensor once.
    seen: dict[int, str] = {}
    aliases: dict[str, str] = {}
    unique: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if name not in params:
            continue
        key = id(p)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = params[name]
    save_file(unique, tmp / "weights.safetensors")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}, tmp / "rng.pt")
    (tmp / STATE).write_text(json.dumps({"step": step, "aliases": aliases, **(extra or {})}, indent=2))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def load(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Restore a checkpoint into ``model`` (and ``optimizer``); returns the saved state dict (``step``, ...)."""
    path = Path(path)
    state = json.loads((path / STATE).read_text())
    weights = load_file(path / "weights.safetensors")
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights and n not in state.get("aliases", {})]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {len(missing)} trainable parameters (e.g. {missing[0]}); was it saved with another model or LoRA setting?")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    rng = torch.load(path / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    return state


def latest(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``output_dir/checkpoints``."""
    root = Path(output_dir) / "checkpoints"
    found = sorted((p for p in root.glob("step_*") if (p / STATE).exists()), key=lambda p: int(p.name.split("_")[1])) if root.exists() else []
    return found[-1] if found else None
