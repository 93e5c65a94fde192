"""End-to-end GRPO on CPU with the tiny model: reward rises, every trained parameter changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from agentgym.trainer import GRPOConfig, train
from agentgym.trainer.checkpoint import latest


@pytest.mark.slow
def test_reward_rises_on_a_trivially_learnable_task(tiny_dir: Path, digits_env_id: str, tmp_path: Path) -> None:
    config = GRPOConfig(
        env=digits_env_id,
        model=str(tiny_dir),
        output_dir=str(tmp_path),
        steps=24,
        tasks_per_step=8,
        group_size=4,
        max_turn_tokens=6,
        max_total_tokens=256,
        lr=3e-3,
        eval_tasks=0,
        progress=False,
        threads=1,
        save_trajectories=False,
    )
    summary = train(config)
    rewards = [r["reward"] for r in summary["train"]]
    first, last = np.mean(rewards[:4]), np.mean(rewards[-4:])
    assert last > first + 0.15, f"reward did not rise: first window {first:.3f}, last window {last:.3f} ({rewards})"


@pytest.mark.slow
def test_every_trained_parameter_changes(tiny_dir: Path, digits_env_id: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    config = GRPOConfig(
        env=digits_env_id,
        model=str(tiny_dir),
        output_dir=str(tmp_path),
        steps=2,
        tasks_per_step=4,
        group_size=4,
        max_turn_tokens=6,
        max_total_tokens=256,
        lr=1e-3,
        eval_tasks=0,
        progress=False,
        threads=1,
    )
    train(config)
    before = dict(AutoModelForCausalLM.from_pretrained(tiny_dir).named_parameters())
    after = load_file(latest(tmp_path) / "model.safetensors")  # checkpoints are standard model directories
    assert set(after) == set(before) - {n for n in before if n not in after}
    unchanged = [n for n, t in after.items() if (t - before[n].detach()).abs().max() == 0]
    assert not unchanged, f"parameters not updated: {unchanged}"
