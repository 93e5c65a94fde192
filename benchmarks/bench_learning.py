"""Learning benchmark: the demo pipeline (base -> SFT -> GRPO) over several seeds, with an ablation.

For each seed: evaluate the base model, SFT on oracle episodes, evaluate, then GRPO from the
same SFT checkpoint twice, once with outcome-only advantages (``process_weight=0``) and once
with outcome + per-turn credit (``process_weight=w`` with the demo's per-turn rewards), each
evaluated on the same held-out tasks. Reported per stage: mean held-out success over seeds
with a 95% confidence interval (Student t over seeds; with one seed the binomial SE of that
seed), and the per-seed values; then each GRPO variant's gain over SFT and the difference
between the variants, paired by seed.

    python benchmarks/bench_learning.py [--seeds 3] [--no-quick] [--model smollm2] [--process-weight 0.5]

``--quick`` (the default) shrinks the stages (64 held-out tasks, 2 GRPO steps of 4 tasks x 4 episodes; SFT as
the demo's: 32 oracle episodes, one epoch) so three seeds take under an hour on two CPU cores; with
``--no-quick`` each seed is a full demo.
Writes ``runs/bench_learning/RESULTS.md`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from agentgym.trainer.demo import DemoConfig, evaluate_model, paired_gain, run_grpo, run_sft

QUICK = {"eval_tasks": 64, "sft_episodes": 32, "grpo_steps": 2, "tasks_per_step": 4, "group_size": 4}
# two-sided 95% Student t quantiles by degrees of freedom (no scipy in the lock)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def interval(values: list[float], se_one: float = 0.0) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval over seeds (one seed: 1.96 x its own SE)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 1.96 * se_one
    sd = statistics.stdev(values)
    return mean, T975.get(len(values) - 1, 1.96) * sd / math.sqrt(len(values))


def run_seed(config: DemoConfig, variants: dict[str, float]) -> dict[str, Any]:
    """One seed: base and SFT evaluations, then one GRPO run and evaluation per variant."""
    stages = {"base": evaluate_model(config.model, config, "base")}
    sft = run_sft(config)
    stages["sft"] = evaluate_model(str(sft["checkpoint"]), config, "sft")
    for name, weight in variants.items():
        cfg = dataclasses.replace(config, process_weight=weight, output_dir=str(Path(config.output_dir) / name))
        grpo = run_grpo(cfg, str(sft["checkpoint"]))
        stages[f"grpo-{name}"] = evaluate_model(grpo["checkpoint"], cfg, f"grpo-{name}")
    return stages


def report(seeds: list[dict[str, Any]], variants: dict[str, float], config: DemoConfig) -> dict[str, Any]:
    """Per-stage intervals, GRPO gains over SFT and the variant difference, all paired by seed."""
    stages: dict[str, Any] = {}
    for stage in seeds[0]:
        values = [s[stage]["success"] for s in seeds]
        mean, half = interval(values, seeds[0][stage]["success_se"])
        wf = statistics.fmean(s[stage]["well_formed"] for s in seeds)
        stages[stage] = {"success": mean, "ci95": half, "per_seed": values, "well_formed": wf}
    comparisons: dict[str, Any] = {}
    pairs = [(f"grpo-{v}", "sft") for v in variants]
    if len(variants) == 2:
        a, b = variants
        pairs.append((f"grpo-{b}", f"grpo-{a}"))
    for after, before in pairs:
        diffs = [s[after]["success"] - s[before]["success"] for s in seeds]
        mean, half = interval(diffs, paired_gain(seeds[0][before], seeds[0][after])["se"] or 0.0)
        comparisons[f"{before} -> {after}"] = {"gain": mean, "ci95": half, "per_seed": diffs}
    return {
        "config": config.to_dict(),
        "variants": variants,
        "seeds": len(seeds),
        "stages": stages,
        "gains": comparisons,
    }


def markdown(result: dict[str, Any], minutes: float) -> str:
    """The results as Markdown tables."""
    c = result["config"]
    lines = [
        f"# Learning benchmark: {c['model']} on {c['env']}",
        "",
        f"{result['seeds']} seed(s), {c['eval_tasks']} held-out tasks per evaluation (greedy); SFT "
        f"{c['sft_episodes']} oracle episodes x {c['sft_epochs']} epochs; GRPO {c['grpo_steps']} steps x "
        f"{c['tasks_per_step']} tasks x {c['group_size']} episodes. Variants (process_weight): "
        + ", ".join(f"{k}={v}" for k, v in result["variants"].items())
        + f". {minutes:.1f} minutes.",
        "",
        "| stage | held-out success (mean ± 95% CI) | per seed | well-formed calls |",
        "|---|---:|---|---:|",
    ]
    for name, s in result["stages"].items():
        per = ", ".join(f"{v:.3f}" for v in s["per_seed"])
        lines.append(f"| {name} | {s['success']:.3f} ± {s['ci95']:.3f} | {per} | {s['well_formed']:.3f} |")
    lines += ["", "| comparison (paired by seed) | gain (mean ± 95% CI) | per seed |", "|---|---:|---|"]
    for name, g in result["gains"].items():
        per = ", ".join(f"{v:+.3f}" for v in g["per_seed"])
        lines.append(f"| {name} | {g['gain']:+.3f} ± {g['ci95']:.3f} | {per} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument(
        "--quick",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="small stages (default; --no-quick: the demo's)",
    )
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny or a model directory")
    parser.add_argument("--process-weight", type=float, default=0.5, help="w of the per-turn credit variant")
    parser.add_argument("--eval-tasks", type=int, default=None, help="override held-out tasks per evaluation")
    parser.add_argument("--grpo-steps", type=int, default=None, help="override GRPO steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default="runs/bench_learning")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = dict(QUICK) if args.quick else {}
    overrides.update({k: v for k, v in (("eval_tasks", args.eval_tasks), ("grpo_steps", args.grpo_steps)) if v})
    base = DemoConfig(model=args.model, threads=args.threads, output_dir=args.output_dir, progress=False, **overrides)
    if base.model in ("smollm2", "smollm2-135m-instruct"):
        from agentgym.trainer.models import ensure_smollm2

        ensure_smollm2()
    variants = {"outcome": 0.0, "turn": args.process_weight}
    start = time.perf_counter()
    seeds: list[dict[str, Any]] = []
    text = ""
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        config = dataclasses.replace(base, seed=seed, output_dir=str(Path(args.output_dir) / f"seed{seed}"))
        seeds.append(run_seed(config, variants))
        row = ", ".join(f"{k} {v['success']:.3f}" for k, v in seeds[-1].items())
        print(f"seed {seed}: {row}  ({(time.perf_counter() - t0) / 60:.1f} min)", flush=True)
        text = write_results(seeds, variants, base, (time.perf_counter() - start) / 60, Path(args.output_dir))
    print(text)
    return 0


def write_results(
    seeds: list[dict[str, Any]], variants: dict[str, float], base: DemoConfig, minutes: float, out: Path
) -> str:
    """``results.json`` and ``RESULTS.md`` for the seeds done so far (rewritten after every seed); the Markdown."""
    result = report(seeds, variants, base)
    result["per_seed"] = [{k: {m: v[m] for m in v if m != "per_task"} for k, v in s.items()} for s in seeds]
    result["minutes"] = minutes
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    text = markdown(result, minutes)
    (out / "RESULTS.md").write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
