"""Whole runs with the tiny model: every built-in env family, exact resume, the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file

import agentgym
from agentgym.trainer import GRPOConfig, train
from agentgym.trainer.checkpoint import latest
from agentgym.trainer.cli import main as cli_main
from agentgym.trajectory import load_jsonl

RunConfig = Callable[..., GRPOConfig]  # the run_config fixture (tests/trainer/conftest.py)


def _families() -> list[str]:
    """One id per environment class among the registered agentgym envs (test envs excluded)."""
    seen: dict[str, str] = {}
    for env_id in agentgym.list_envs():
        entry = gym.registry[env_id].entry_point
        key = entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"
        if "/Test" not in env_id and "tests." not in key:
            seen.setdefault(key, env_id)
    return sorted(seen.values())


@pytest.mark.slow
@pytest.mark.parametrize("env_id", _families())
def test_two_steps_on_every_env_family(env_id: str, run_config: RunConfig, tmp_path: Path) -> None:
    config = run_config(
        env_id,
        steps=2,
        tasks_per_step=2,
        group_size=2,
        max_turns=2,
        max_turn_tokens=12,
        max_total_tokens=16000,  # a web app page with ten tool schemas is ~8.5k tiny-tokenizer tokens
        eval_tasks=2,
    )
    summary = train(config)
    assert summary["step"] == 2 and len(summary["train"]) == 2
    trajs = load_jsonl(tmp_path / "trajectories.jsonl")
    assert len(trajs) == 2 * 2 * 2
    for t in trajs:
        assert t.segments and t.segments[0].kind == "prompt" and any(s.trainable for s in t.segments)
        assert t.termination_reason is not None
        assert t.infra_failure or t.outcome_reward is not None, (
            f"no outcome reward: {t.termination_reason} {t.metadata}"
        )
        assert all("process_reward" in s.info for s in t.steps)
    assert (tmp_path / "reward_curve.png").stat().st_size > 0
    assert all(isinstance(r["reward"], float) for r in summary["train"])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = latest(path)  # a model directory (model.safetensors) or a PEFT adapter directory
    return load_file(
        ckpt / ("adapter_model.safetensors" if (ckpt / "adapter_config.json").exists() else "model.safetensors")
    )


@pytest.mark.slow
def test_resume_equals_one_uninterrupted_run(run_config: RunConfig, digits_env_id: str, tmp_path: Path) -> None:
    def run(out: str, steps: int, resume: str | None = None) -> None:
        out_dir = str(tmp_path / out)
        train(
            run_config(digits_env_id, output_dir=out_dir, steps=steps, resume=resume, lr=3e-3, epochs=2, minibatches=2)
        )

    run("straight", 4)
    run("resumed", 2)
    run("resumed", 4, resume="auto")
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert set(straight) == set(resumed)
    for name in straight:
        torch.testing.assert_close(
            resumed[name], straight[name], rtol=1e-6, atol=1e-7, msg=f"{name} differs after resume"
        )
    a = load_jsonl(tmp_path / "straight" / "trajectories.jsonl")
    b = load_jsonl(tmp_path / "resumed" / "trajectories.jsonl")
    assert [t.token_ids() for t in a] == [t.token_ids() for t in b]


def test_cli_flags_map_one_to_one_to_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--eps-high" in out and "clip-higher" in out and "--no-filter-zero-variance" in out
    import argparse

    from agentgym.trainer.cli import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    config = config_from_args(
        parser.parse_args(
            [
                "--eps-high",
                "0.3",
                "--env-kwargs",
                '{"max_turns": 2}',
                "--no-progress",
                "--scale",
                "none",
                "--betas",
                "0.9",
                "0.95",
            ]
        )
    )
    assert (config.eps_high, config.env_kwargs, config.progress, config.scale, config.betas) == (
        0.3,
        {"max_turns": 2},
        False,
        "none",
        (0.9, 0.95),
    )


@pytest.mark.slow
def test_lora_with_kl_to_the_reference(run_config: RunConfig, digits_env_id: str, tmp_path: Path) -> None:
    summary = train(run_config(digits_env_id, steps=2, lr=1e-2, lora_rank=4, kl_coef=0.1, epochs=2))
    assert summary["train"][-1]["kl"] > 0, "the policy moved, so its k3 KL to the reference must be positive"
    saved = _weights(tmp_path)
    assert saved and all("lora_" in name for name in saved)
