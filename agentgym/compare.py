"""Compare two evaluation runs task by task (``agentgym eval compare A B``).

Each run is an ``agentgym eval --out`` directory; its ``metrics.json`` holds per-task
valid samples and successes. Tasks evaluated (with at least one valid sample) in both
runs are *paired*; the comparison is B minus A on each paired task's success rate.

Significance: a two-sided **paired sign-flip permutation test** on the per-task
differences, computed exactly (the distribution of the sum under random signs, by
dynamic programming over integer-scaled differences). When every task has one sample
per run the differences are -1/0/+1 and this test *is* McNemar's exact test (a binomial
test on the discordant tasks), and it is named so. A 95% paired bootstrap interval
(tasks resampled, 10,000 draws, fixed seed) of the mean difference is given beside it.

Not covered: comparing runs on different task sets beyond the paired tasks (the others
are listed, not tested), multiple-comparison corrections, per-sample pairing.
"""

from __future__ import annotations

import json
from fractions import Fraction
from math import lcm
from pathlib import Path
from typing import Any

import numpy as np

_EXACT_LIMIT = 20_000_000  # most (tasks x sum of |scaled differences|) the exact DP handles; beyond: Monte Carlo


def load_run(path: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of an eval output directory (or the file itself)."""
    p = Path(path)
    file = p / "metrics.json" if p.is_dir() else p
    if not file.exists():
        raise FileNotFoundError(
            f"{path}: no metrics.json; create it with `agentgym eval ENV --out {path}` "
            f"(or finish an interrupted run with --resume)"
        )
    data = json.loads(file.read_text())
    if not isinstance(data, dict) or "per_task" not in data:
        raise ValueError(f"{file}: no per-task results (written by an older agentgym); re-run the evaluation")
    return data


def sign_flip_test(diffs: list[Fraction]) -> tuple[float, str]:
    """Two-sided p-value of a paired sign-flip test of mean(diffs) == 0, and how it was computed."""
    nonzero = [d for d in diffs if d != 0]
    if not nonzero:
        return 1.0, "exact"
    scale = lcm(*(d.denominator for d in nonzero))
    ints = [abs(int(d * scale)) for d in nonzero]
    observed = abs(int(sum(nonzero) * scale))
    total = sum(ints)
    if len(ints) * total <= _EXACT_LIMIT:
        dist = np.zeros(2 * total + 1)  # probability of each sum, offset by ``total``
        dist[total] = 1.0
        for x in ints:
            dist = 0.5 * (np.roll(dist, x) + np.roll(dist, -x))  # no wrap-around: |sum| never exceeds total
        sums = np.arange(-total, total + 1)
        return float(min(1.0, dist[np.abs(sums) >= observed].sum())), "exact"
    rng = np.random.default_rng(0)
    draws = 100_000
    arr = np.array(ints, dtype=np.float64)
    hits = 0
    for _ in range(draws // 10_000):
        signs = rng.choice([-1.0, 1.0], size=(10_000, len(arr)))
        hits += int((np.abs(signs @ arr) >= observed).sum())
    return (hits + 1) / (draws + 1), f"Monte Carlo, {draws} sign draws"


def bootstrap_ci(diffs: list[float], draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean difference, resampling tasks with replacement."""
    arr = np.asarray(diffs, dtype=np.float64)
    if len(arr) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(draws, len(arr)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def compare_runs(a_dir: str | Path, b_dir: str | Path, alpha: float = 0.05) -> dict[str, Any]:
    """Side-by-side, per-task comparison of two eval runs, with a significance test (B - A)."""
    a, b = load_run(a_dir), load_run(b_dir)
    ta, tb = a["per_task"], b["per_task"]
    paired = [t for t in ta if t in tb and ta[t]["valid"] > 0 and tb[t]["valid"] > 0]
    rows, diffs = [], []
    for t in paired:
        ra, rb = Fraction(ta[t]["successes"], ta[t]["valid"]), Fraction(tb[t]["successes"], tb[t]["valid"])
        diffs.append(rb - ra)
        rows.append(
            {
                "task_id": t,
                "a": {"successes": ta[t]["successes"], "valid": ta[t]["valid"]},
                "b": {"successes": tb[t]["successes"], "valid": tb[t]["valid"]},
                "diff": float(rb - ra),
            }
        )
    binary = all(ta[t]["valid"] == 1 and tb[t]["valid"] == 1 for t in paired)
    p, how = sign_flip_test(diffs)
    method = (
        "McNemar exact test (two-sided) on per-task success"
        if binary
        else "paired sign-flip permutation test (two-sided) on per-task success rates"
    )
    lo, hi = bootstrap_ci([float(d) for d in diffs])
    mean_a = float(np.mean([float(Fraction(ta[t]["successes"], ta[t]["valid"])) for t in paired])) if paired else None
    mean_b = float(np.mean([float(Fraction(tb[t]["successes"], tb[t]["valid"])) for t in paired])) if paired else None
    better = sum(d > 0 for d in diffs)
    worse = sum(d < 0 for d in diffs)
    warnings = []
    for key in ("env", "split"):
        va, vb = a.get(key, a.get("config", {}).get(key)), b.get(key, b.get("config", {}).get(key))
        if va != vb:
            warnings.append(f"the runs differ in {key}: {va!r} vs {vb!r}")
    only_a = [t for t in ta if t not in paired]
    only_b = [t for t in tb if t not in paired]
    if only_a or only_b:
        warnings.append(f"{len(only_a)} task(s) only usable in A and {len(only_b)} only in B are left out of the test")
    if not paired:
        verdict = "no task was evaluated in both runs: nothing to compare"
    elif p < alpha:
        verdict = f"B is {'better' if sum(diffs) > 0 else 'worse'} than A (p = {p:.3g} < {alpha})"
    else:
        verdict = (
            f"no significant difference at the {alpha} level (p = {p:.3g}); "
            f"the 95% interval of B - A is [{lo:+.3f}, {hi:+.3f}]"
        )
        n_diff = sum(d != 0 for d in diffs)
        if n_diff and 2 * 0.5**n_diff >= alpha:
            verdict += (
                f"; only {n_diff} task(s) differ, so no result could reach significance (smallest possible "
                f"p = {2 * 0.5**n_diff:.3g}): evaluate more tasks"
            )
    return {
        "a": {"dir": str(a_dir), "env": a.get("env"), "policy": a.get("policy"), "metrics": _headline(a)},
        "b": {"dir": str(b_dir), "env": b.get("env"), "policy": b.get("policy"), "metrics": _headline(b)},
        "paired_tasks": len(paired),
        "success_rate_a": mean_a,
        "success_rate_b": mean_b,
        "mean_diff": float(np.mean([float(d) for d in diffs])) if diffs else None,
        "b_better_tasks": better,
        "b_worse_tasks": worse,
        "test": {
            "method": method,
            "computed": how,
            "p_value": p,
            "alpha": alpha,
            "bootstrap_ci95": [lo, hi] if paired else None,
        },
        "verdict": verdict,
        "warnings": warnings,
        "only_in_a": only_a,
        "only_in_b": only_b,
        "tasks": rows,
    }


def _headline(m: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in m if k.startswith("pass@")] + [
        "success_rate",
        "mean_reward",
        "mean_turns",
        "episodes",
        "infra_failures",
    ]
    return {k: m.get(k) for k in keys}


def _f(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def to_markdown(c: dict[str, Any]) -> str:
    """A comparison (from :func:`compare_runs`) as a Markdown report: headline metrics, the test, per-task rows."""
    a, b = c["a"], c["b"]
    lines = [
        f"# Comparison: A = {a['policy']} ({a['dir']}) vs B = {b['policy']} ({b['dir']})",
        "",
        "| metric | A | B |",
        "|---|---|---|",
    ]
    for k in a["metrics"]:
        lines.append(f"| {k} | {_f(a['metrics'][k])} | {_f(b['metrics'].get(k))} |")
    t = c["test"]
    lines += [
        "",
        f"**{c['verdict']}.**",
        "",
        (
            f"- paired tasks: {c['paired_tasks']}; "
            f"success rate over them A {_f(c['success_rate_a'])}, B {_f(c['success_rate_b'])}; "
            f"B better on {c['b_better_tasks']}, worse on {c['b_worse_tasks']}"
        ),
        f"- test: {t['method']} ({t['computed']}), p = {t['p_value']:.4g}"
        + (
            f"; paired bootstrap 95% CI of B - A: [{t['bootstrap_ci95'][0]:+.3f}, {t['bootstrap_ci95'][1]:+.3f}]"
            if t["bootstrap_ci95"]
            else ""
        ),
    ]
    lines += [f"- warning: {w}" for w in c["warnings"]]
    lines += ["", "| task | A successes / valid | B successes / valid | B - A |", "|---|---|---|---|"]
    for r in c["tasks"]:
        mark = " ▲" if r["diff"] > 0 else (" ▼" if r["diff"] < 0 else "")
        a_cell = f"{r['a']['successes']} / {r['a']['valid']}"
        b_cell = f"{r['b']['successes']} / {r['b']['valid']}"
        lines.append(f"| {r['task_id']} | {a_cell} | {b_cell} | {r['diff']:+.3f}{mark} |")
    return "\n".join(lines) + "\n"


def write_comparison(c: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``compare.json`` and ``compare.md`` into ``out_dir``; returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(c, indent=2, allow_nan=False) + "\n")
    (out / "compare.md").write_text(to_markdown(c))
    return out
