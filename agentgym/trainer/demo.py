"""``make demo``: GRPO on the built-in tool-use family with SmolLM2-135M-Instruct, on the CPU.

Environment: ``agentgym/Addition-v0``, the single-skill variant of ``ToolUse`` (``a + b`` with
a, b < 20, the answer read from the reply's last number; SmolLM2-135M cannot write a
well-formed tool call yet, so the tool variants give it no reward to learn from). Held-out
success (greedy, fixed test tasks) is printed before and after training; the reward curve
(PNG), metrics (JSONL) and a Markdown summary land in ``runs/demo/``.

    python -m agentgym.trainer.demo [--steps 8] [--threads 1] [--output-dir runs/demo]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from agentgym.trainer.config import GRPOConfig
from agentgym.trainer.loop import train

DEMO = GRPOConfig(
    env="agentgym/Addition-v0",
    model="smollm2",
    output_dir="runs/demo",
    seed=0,
    steps=8,
    tasks_per_step=6,
    group_size=4,
    max_turn_tokens=24,
    max_total_tokens=256,
    temperature=0.8,
    lr=3e-5,
    micro_batch_size=8,
    eval_tasks=64,
    eval_temperature=0.0,
    save_trajectories=True,
    threads=1,
)


def summary_markdown(config: GRPOConfig, result: dict[str, Any], minutes: float) -> str:
    """``SUMMARY.md`` of a demo run: held-out success before and after, and one row per step."""
    before, after = result["evals"][0], result["evals"][-1]
    rows = "\n".join(
        f"| {r['step']} | {r['reward']:.3f} | {r['success']:.3f} | {r.get('clip_fraction', 0):.3f} | "
        f"{r.get('entropy', 0):.3f} | {r['time_step']:.1f} |"
        for r in result["train"]
    )
    return f"""# GRPO demo: {config.model} on {config.env}

Held-out success (greedy, {after["tasks"]} test tasks, seed {config.seed}):
**{before["success"]:.3f} before -> {after["success"]:.3f} after** {config.steps} steps
({config.tasks_per_step} tasks x {config.group_size} episodes per step, lr {config.lr}, \
temperature {config.temperature}).
Wall time: {minutes:.1f} minutes on the CPU ({config.threads} thread(s)).

| step | train reward | train success | clip fraction | entropy | seconds |
|---:|---:|---:|---:|---:|---:|
{rows}

![reward curve](reward_curve.png)
"""


def main(argv: list[str] | None = None) -> int:
    """``python -m agentgym.trainer.demo``: train, then print and write the before/after summary."""
    parser = argparse.ArgumentParser(prog="python -m agentgym.trainer.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=DEMO.steps)
    parser.add_argument(
        "--threads", type=int, default=DEMO.threads, help="torch threads (1 is fastest on a busy machine)"
    )
    parser.add_argument("--eval-tasks", type=int, default=DEMO.eval_tasks)
    parser.add_argument("--output-dir", default=DEMO.output_dir)
    args = parser.parse_args(argv)
    config = GRPOConfig(
        **{
            **DEMO.to_dict(),
            "steps": args.steps,
            "threads": args.threads,
            "eval_tasks": args.eval_tasks,
            "output_dir": args.output_dir,
        }
    )
    from agentgym.trainer.models import ensure_smollm2

    ensure_smollm2()  # one-time conversion (~1 minute), not part of the timed demo
    start = time.perf_counter()
    result = train(config)
    minutes = (time.perf_counter() - start) / 60
    before, after = result["evals"][0], result["evals"][-1]
    print(
        f"held-out success on {after['tasks']} test tasks (greedy, seed {config.seed}): "
        f"before {before['success']:.3f} -> after {after['success']:.3f}  ({minutes:.1f} min)"
    )
    out = Path(config.output_dir)
    (out / "SUMMARY.md").write_text(summary_markdown(config, result, minutes))
    print(f"curve: {out / 'reward_curve.png'}   summary: {out / 'SUMMARY.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
