"""``make demo``: a small model learns multi-turn tool use: evaluate, SFT, evaluate, GRPO, evaluate.

Environment: ``agentgym/ToolChain-v0`` (look up two prices, compute the total with the
calculator, submit it: four tool calls, the prices are not in the prompt). Model:
SmolLM2-135M-Instruct on the CPU. The pipeline:

1. **base**: held-out success and well-formed tool-call rate of the model as shipped;
2. **SFT**: supervised fine-tuning on oracle episodes of training tasks
   (:func:`agentgym.trainer.sft.train_sft`, loss on assistant tokens only), then evaluate;
3. **GRPO**: reinforcement learning from the SFT checkpoint
   (:func:`agentgym.trainer.loop.train`), then evaluate.

Every evaluation plays the same ``eval_tasks`` held-out (``test`` split) tasks greedily with
the same seeds; each stage's row reports success and the well-formed rate (the fraction of
an episode's assistant turns that made a tool call that parsed, averaged over episodes) with
standard errors, and the gain of each stage over the previous one with a paired standard
error (same tasks). ``runs/demo/`` gets ``SUMMARY.md``, ``metrics.json`` and
``reward_curve.png``.

    python -m agentgym.trainer.demo [--grpo-steps 4] [--eval-tasks 128] [--model smollm2]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_ENV = "agentgym/ToolChain-v0"
PROCESS_REWARDS = {"well_formed": 1.0, "tool_errors": 1.0}
"""Per-turn rewards the environment gives GRPO when ``process_weight > 0``: +1 for a turn whose calls all
parse, -1 per tool error (malformed call, unknown tool, bad arguments, unknown key). Outcome-only advantages
ignore them, so ``process_weight`` alone switches per-turn credit on."""


@dataclass
class DemoConfig:
    """Every knob of the demo pipeline; the docstring under each field is its ``--help`` text."""

    env: str = DEMO_ENV
    """Environment id (a multi-call tool-use task with an oracle)."""
    model: str = "smollm2"
    """Model: ``smollm2`` (SmolLM2-135M-Instruct), ``tiny`` (tests) or a model directory."""
    output_dir: str = "runs/demo"
    """Where the stages' runs, SUMMARY.md, metrics.json and reward_curve.png go."""
    seed: int = 0
    """Seed of every stage (task order, sampling, the held-out task draw)."""
    eval_tasks: int = 128
    """Held-out (test split) tasks per evaluation, the same tasks at every stage."""
    sft_episodes: int = 32
    """Oracle episodes (distinct training tasks) for SFT: a warm start that leaves GRPO room to improve."""
    sft_epochs: int = 1
    """Passes over the SFT episodes."""
    sft_lr: float = 1e-4
    """SFT learning rate."""
    grpo_steps: int = 2
    """GRPO steps from the SFT checkpoint (0: skip GRPO)."""
    tasks_per_step: int = 8
    """GRPO: distinct training tasks per step."""
    group_size: int = 4
    """GRPO: episodes per task."""
    grpo_lr: float = 2e-5
    """GRPO learning rate."""
    temperature: float = 1.0
    """GRPO sampling temperature."""
    process_weight: float = 0.0
    """GRPO: weight w of per-turn process advantages, from ``PROCESS_REWARDS`` (0: outcome only)."""
    max_turn_tokens: int = 48
    """Tokens one assistant turn may sample."""
    max_total_tokens: int = 512
    """Tokens of a whole episode."""
    micro_batch_size: int = 8
    """Episodes per forward/backward pass (memory knob only)."""
    threads: int = 2
    """torch CPU threads."""
    progress: bool = True
    """Show progress bars."""

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready values."""
        return dataclasses.asdict(self)


def _se(values: list[float]) -> float:
    """Standard error of the mean (sample std, ddof=1); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def episode_well_formed(traj: Any) -> float:
    """Fraction of an episode's assistant turns that made at least one tool call, none malformed."""
    if not traj.steps:
        return 0.0
    return sum(float(s.reward_components.get("well_formed", 0.0)) for s in traj.steps) / len(traj.steps)


def eval_task_ids(env_id: str, n: int, seed: int) -> list[str]:
    """The ``n`` held-out task ids every stage is evaluated on (a seeded draw from the test split, in order)."""
    import numpy as np

    import agentgym

    with agentgym.make(env_id, split="test") as env:
        test_ids = env.tasks.ids
    if n > len(test_ids):
        raise ValueError(f"eval_tasks={n}, but {env_id} has only {len(test_ids)} test tasks; lower --eval-tasks")
    order = np.random.default_rng([seed, 1]).permutation(len(test_ids))[:n]
    return [test_ids[i] for i in sorted(order)]


def evaluate_model(model: str, config: DemoConfig, stage: str) -> dict[str, Any]:
    """Greedy held-out evaluation of one stage: success and well-formed rate, with standard errors, per task."""
    import torch

    import agentgym
    from agentgym.rollout import plan_jobs
    from agentgym.trainer.engines import make_engine
    from agentgym.trainer.models import load_model
    from agentgym.trainer.rollout import EnvPool, RolloutLimits, rollout
    from agentgym.trainer.tokens import ChatTokens

    torch.set_num_threads(max(1, config.threads))
    ids = eval_task_ids(config.env, config.eval_tasks, config.seed)
    t0 = time.perf_counter()
    lm, tokenizer = load_model(model)  # from_pretrained returns the model in eval mode
    engine = make_engine("hf", lm, tokenizer)
    limits = RolloutLimits(config.max_turn_tokens, config.max_total_tokens, 0.0, 0)
    with EnvPool(lambda: agentgym.make(config.env, split="test")) as pool, torch.no_grad():
        trajs = rollout(
            pool.take(len(ids)),
            plan_jobs(ids, 1, config.seed),
            engine,
            ChatTokens(tokenizer),
            limits,
            seed=config.seed + 10_000,
            env_id=config.env,
            policy_name=f"{stage}:{model}",
        )
    scored = [t for t in trajs if not t.infra_failure]
    success = [float(t.success) for t in scored]
    well = [episode_well_formed(t) for t in scored]
    n = max(len(scored), 1)
    return {
        "stage": stage,
        "model": model,
        "tasks": len(trajs),
        "scored": len(scored),
        "seed": config.seed,
        "success": sum(success) / n,
        "success_se": _se(success),
        "well_formed": sum(well) / n,
        "well_formed_se": _se(well),
        "turns": sum(t.num_turns for t in trajs) / max(len(trajs), 1),
        "seconds": time.perf_counter() - t0,
        "per_task": {t.task_id: float(t.success) for t in scored},
    }


def paired_gain(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float | None]:
    """Success gain of ``after`` over ``before`` on their common tasks, its paired standard error and gain / SE.

    ``z`` is ``None`` when the standard error is 0 (every task moved the same way), so that
    ``metrics.json`` stays strict JSON.
    """
    common = sorted(set(before["per_task"]) & set(after["per_task"]))
    diffs = [after["per_task"][t] - before["per_task"][t] for t in common]
    gain = sum(diffs) / max(len(diffs), 1)
    se = _se(diffs)
    return {"gain": gain, "se": se, "z": gain / se if se > 0 else None}


def run_sft(config: DemoConfig) -> dict[str, Any]:
    """SFT on oracle episodes of training tasks; returns ``train_sft``'s result (``checkpoint``, ...)."""
    from agentgym.trainer.sft import SFTConfig, train_sft

    return train_sft(
        SFTConfig(
            env=config.env,
            model=config.model,
            output_dir=str(Path(config.output_dir) / "sft"),
            seed=config.seed,
            source="oracle",
            episodes=config.sft_episodes,
            rounds=1,
            epochs=config.sft_epochs,
            lr=config.sft_lr,
            micro_batch_size=config.micro_batch_size,
            max_turn_tokens=config.max_turn_tokens,
            max_total_tokens=config.max_total_tokens,
            eval_tasks=0,
            threads=config.threads,
            progress=config.progress,
        )
    )


def run_grpo(config: DemoConfig, model: str) -> dict[str, Any]:
    """GRPO from ``model`` (the SFT checkpoint); returns ``train``'s result plus ``checkpoint``."""
    from agentgym.trainer.config import GRPOConfig
    from agentgym.trainer.loop import train

    grpo = GRPOConfig(
        env=config.env,
        env_kwargs={"process_rewards": PROCESS_REWARDS} if config.process_weight > 0 else {},
        model=model,
        output_dir=str(Path(config.output_dir) / "grpo"),
        seed=config.seed,
        steps=config.grpo_steps,
        tasks_per_step=config.tasks_per_step,
        group_size=config.group_size,
        minibatches=2,
        max_turn_tokens=config.max_turn_tokens,
        max_total_tokens=config.max_total_tokens,
        temperature=config.temperature,
        lr=config.grpo_lr,
        process_weight=config.process_weight,
        micro_batch_size=config.micro_batch_size,
        eval_tasks=0,
        save_every=0,
        save_trajectories=True,
        threads=config.threads,
        progress=config.progress,
    )
    result = train(grpo)
    final = Path(grpo.output_dir) / "checkpoints" / f"step_{grpo.steps:06d}"  # not an older, longer run's
    if not final.is_dir():
        raise RuntimeError(f"GRPO wrote no final checkpoint {final}")
    return {**result, "checkpoint": str(final)}


def run_pipeline(config: DemoConfig) -> dict[str, Any]:
    """The whole pipeline (base -> SFT -> GRPO, an evaluation after each); writes and returns the metrics."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    stages: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    def timed(name: str, t0: float) -> None:
        timings[name] = time.perf_counter() - t0
        if config.progress:
            print(f"[demo] {name}: {timings[name]:.0f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    stages.append(evaluate_model(config.model, config, "base"))
    timed("eval_base", t0)
    t0 = time.perf_counter()
    sft = run_sft(config)
    timed("sft", t0)
    t0 = time.perf_counter()
    stages.append(evaluate_model(str(sft["checkpoint"]), config, "sft"))
    timed("eval_sft", t0)
    train_records: list[dict[str, Any]] = []
    if config.grpo_steps > 0:
        t0 = time.perf_counter()
        grpo = run_grpo(config, str(sft["checkpoint"]))
        train_records = grpo["train"]
        timed("grpo", t0)
        t0 = time.perf_counter()
        stages.append(evaluate_model(grpo["checkpoint"], config, "grpo"))
        timed("eval_grpo", t0)
    gains = {f"{b['stage']}->{a['stage']}": paired_gain(b, a) for b, a in itertools.pairwise(stages)}
    metrics = {
        "config": config.to_dict(),
        "stages": [{k: v for k, v in s.items() if k != "per_task"} for s in stages],
        "gains": gains,
        "grpo_train": [{k: r[k] for k in ("step", "reward", "success") if k in r} for r in train_records],
        "seconds": timings,
        "minutes": (time.perf_counter() - start) / 60,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False))
    plot_curve(metrics, out / "reward_curve.png")
    (out / "SUMMARY.md").write_text(summary_markdown(metrics))
    return metrics


def plot_curve(metrics: dict[str, Any], path: Path) -> Path:
    """GRPO's mean training reward per step, with each stage's held-out success as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = metrics["grpo_train"]
    if train:
        ax.plot([r["step"] for r in train], [r["reward"] for r in train], marker=".", label="GRPO train reward")
    for stage, style in zip(metrics["stages"], (":", "--", "-"), strict=False):
        ax.axhline(stage["success"], linestyle=style, color="gray", label=f"held-out success, {stage['stage']}")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("reward / success")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{metrics['config']['model']} on {metrics['config']['env']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def stage_table(metrics: dict[str, Any]) -> str:
    """The per-stage Markdown table: held-out success and well-formed rate with standard errors."""
    rows = [
        "| stage | held-out tasks | seed | success | well-formed calls | turns | eval seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in metrics["stages"]:
        rows.append(
            f"| {s['stage']} | {s['tasks']} | {s['seed']} | {s['success']:.3f} ± {s['success_se']:.3f} | "
            f"{s['well_formed']:.3f} ± {s['well_formed_se']:.3f} | {s['turns']:.2f} | {s['seconds']:.0f} |"
        )
    return "\n".join(rows)


def summary_markdown(metrics: dict[str, Any]) -> str:
    """``SUMMARY.md``: the stage table, the paired gains and the knobs of the run."""
    c = metrics["config"]
    gains = "\n".join(
        f"- {name}: {g['gain']:+.3f} ± {g['se']:.3f} (paired SE; "
        + (f"{g['z']:.1f} SE)" if g["z"] is not None else "every task moved the same way)")
        for name, g in metrics["gains"].items()
    )
    timing = ", ".join(f"{k} {v / 60:.1f}" for k, v in metrics["seconds"].items())
    return f"""# Demo: {c["model"]} learns {c["env"]}

Held-out success and well-formed tool-call rate (greedy, the same {c["eval_tasks"]} test tasks at
every stage, seed {c["seed"]}; ± one standard error):

{stage_table(metrics)}

Gain in held-out success over the previous stage (same tasks):

{gains}

SFT: {c["sft_episodes"]} oracle episodes x {c["sft_epochs"]} epochs, lr {c["sft_lr"]}.
GRPO: {c["grpo_steps"]} steps x {c["tasks_per_step"]} tasks x {c["group_size"]} episodes, lr {c["grpo_lr"]},
temperature {c["temperature"]}, process weight {c["process_weight"]}.
Wall time: {metrics["minutes"]:.1f} minutes ({timing} minutes), {c["threads"]} torch thread(s).

![reward curve](reward_curve.png)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per :class:`DemoConfig` field (``grpo_steps`` -> ``--grpo-steps``)."""
    from agentgym.trainer.config import field_docs

    docs = field_docs(DemoConfig)
    for f in dataclasses.fields(DemoConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=docs.get(f.name))
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default, help=docs.get(f.name))


def run(args: argparse.Namespace) -> int:
    """Run the pipeline from parsed ``add_arguments`` flags; print the table; 0 on success."""
    config = DemoConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)})
    if config.model in ("smollm2", "smollm2-135m-instruct"):
        from agentgym.trainer.models import ensure_smollm2

        ensure_smollm2()  # one-time conversion (~1 minute), not part of the timed demo
    metrics = run_pipeline(config)
    print(stage_table(metrics))
    for name, g in metrics["gains"].items():
        print(f"{name}: success {g['gain']:+.3f} ± {g['se']:.3f} (paired SE)")
    out = Path(config.output_dir)
    print(f"{metrics['minutes']:.1f} min; summary {out / 'SUMMARY.md'}, curve {out / 'reward_curve.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m agentgym.trainer.demo``."""
    parser = argparse.ArgumentParser(prog="python -m agentgym.trainer.demo", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
