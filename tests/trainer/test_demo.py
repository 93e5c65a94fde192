"""The demo pipeline end to end on the tiny model: every stage runs and every file is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentgym.trainer.demo import DemoConfig, episode_well_formed, eval_task_ids, main, paired_gain, run_pipeline
from agentgym.trajectory import Step, Trajectory

TINY = {
    "model": "tiny",
    "eval_tasks": 6,
    "sft_episodes": 4,
    "sft_epochs": 1,
    "grpo_steps": 1,
    "tasks_per_step": 2,
    "group_size": 2,
    "max_turn_tokens": 48,
    "max_total_tokens": 640,
    "micro_batch_size": 4,
    "threads": 1,
    "progress": False,
}


def test_pipeline_writes_table_summary_metrics_and_curve(tmp_path: Path) -> None:
    metrics = run_pipeline(DemoConfig(output_dir=str(tmp_path), **TINY))  # type: ignore[arg-type]
    assert [s["stage"] for s in metrics["stages"]] == ["base", "sft", "grpo"]
    for s in metrics["stages"]:
        assert s["tasks"] == 6 and s["seed"] == 0
        for key in ("success", "success_se", "well_formed", "well_formed_se"):
            assert 0.0 <= s[key] <= 1.0, (s["stage"], key, s[key])
    assert set(metrics["gains"]) == {"base->sft", "sft->grpo"}
    assert len(metrics["grpo_train"]) == 1
    assert set(metrics["seconds"]) == {"eval_base", "sft", "eval_sft", "grpo", "eval_grpo"}
    assert json.loads((tmp_path / "metrics.json").read_text())["stages"][0]["tasks"] == 6
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert "| base | 6 | 0 |" in summary and "| grpo | 6 | 0 |" in summary
    assert (tmp_path / "reward_curve.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "grpo" / "checkpoints" / "step_000001" / "config.json").exists()


def test_cli_without_grpo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "progress"]
    assert main([*argv, "--grpo-steps=0", "--no-progress", f"--output-dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "| base | 6 | 0 |" in out and "| sft | 6 | 0 |" in out and "| grpo |" not in out
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["grpo_steps"] == 0


def test_eval_tasks_are_held_out_and_fixed_by_seed() -> None:
    a, b = eval_task_ids("agentgym/ToolChain-v0", 128, 0), eval_task_ids("agentgym/ToolChain-v0", 128, 1)
    assert len(a) == len(set(a)) == 128 and a == eval_task_ids("agentgym/ToolChain-v0", 128, 0) and a != b
    with pytest.raises(ValueError, match="lower --eval-tasks"):
        eval_task_ids("agentgym/ToolChain-v0", 10_000, 0)


def test_well_formed_rate_and_paired_gain_by_hand() -> None:
    def step(wf: float) -> Step:
        return Step(action="", observation=[], reward=0.0, reward_components={"well_formed": wf}, info={})

    traj = Trajectory(env_id="e", task_id="t", steps=[step(1.0), step(0.0), step(1.0), step(1.0)])
    assert episode_well_formed(traj) == 0.75
    assert episode_well_formed(Trajectory(env_id="e", task_id="t")) == 0.0
    before = {"per_task": {"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0}}
    after = {"per_task": {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0}}
    g = paired_gain(before, after)
    # diffs 1, 0, 1, 0: mean 0.5, sample sd sqrt(1/3), SE sqrt(1/3) / 2
    assert g["gain"] == 0.5
    assert g["se"] == pytest.approx((1 / 3) ** 0.5 / 2)
    assert g["z"] == pytest.approx(0.5 / ((1 / 3) ** 0.5 / 2))
