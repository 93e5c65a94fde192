"""End-to-end GRPO on CPU with the tiny model: reward rises, every trained parameter changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from agentgym.trainer import GRPOConfig, train
from agentgym.trainer.checkpoint import latest

RunConfig = Callable[..., GRPOConfig]  # the run_config fixture (tests/trainer/conftest.py)


@pytest.mark.slow
def test_reward_rises_on_a_trivially_learnable_task(run_config: RunConfig, digits_env_id: str) -> None:
    summary = train(run_config(digits_env_id, steps=24, tasks_per_step=8, lr=3e-3, save_trajectories=False))
    rewards = [r["reward"] for r in summary["train"]]
    first, last = np.mean(rewards[:4]), np.mean(rewards[-4:])
    assert last > first + 0.15, f"reward did not rise: first window {first:.3f}, last window {last:.3f} ({rewards})"


@pytest.mark.slow
def test_every_trained_parameter_changes(
    run_config: RunConfig, tiny_dir: Path, digits_env_id: str, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    train(run_config(digits_env_id, steps=2, lr=1e-3))
    before = dict(AutoModelForCausalLM.from_pretrained(tiny_dir).named_parameters())
    after = load_file(latest(tmp_path) / "model.safetensors")  # checkpoints are standard model directories
    assert set(after) == set(before) - {n for n in before if n not in after}
    unchanged = [n for n, t in after.items() if (t - before[n].detach()).abs().max() == 0]
    assert not unchanged, f"parameters not updated: {unchanged}"
