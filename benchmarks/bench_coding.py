"""Grading latency of the coding environments before and after the integrity layers (issue 8), in one run.

"before" is the grader as it was at commit ``142967d`` (``envs/coding/grading.py``, its path
before the layout move, loaded from git into a temporary module; HumanEval was graded with
``Grader.grade_files`` on ``{"solution.py": module}``). "after" is the current grader: the shared harness with the
audit hook, snapshots and probes, the diff scan, and (HumanEval) the out-of-process
function grader. Both grade the reference fix of the same tasks through the same sandbox
provider, alternating per task so machine load hits both alike; the table reports the
median and mean seconds per grading and the after/before ratio (the budget is +25%).

``--throughput`` also runs the oracle policy end to end (episodes per minute per backend).

Run: ``python benchmarks/bench_coding.py [--tasks 8] [--rounds 3] [--backends local docker]``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentgym.envs.coding import CodeRepairEnv, HumanEvalEnv
from agentgym.envs.coding.repo import solution_files
from agentgym.rollout import collect

BEFORE = "142967d"
ROOT = Path(__file__).resolve().parents[1]


def load_before_grader() -> Any:
    """The ``Grader`` class of ``envs/coding/grading.py`` at commit :data:`BEFORE`."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:envs/coding/grading.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="agentgym-bench-")) / "grading_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("agentgym_grading_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.Grader


def measure(grade: Callable[[], Any], label: str) -> float:
    start = time.perf_counter()
    result = grade()
    elapsed = time.perf_counter() - start
    if not result.resolved:
        raise RuntimeError(f"{label}: the reference fix did not pass: {result.summary()}")
    return elapsed


def compare(env: Any, task_ids: list[str], rounds: int) -> tuple[list[float], list[float]]:
    old = load_before_grader()(env.provider, timeout=120.0)
    new = env.grader
    before: list[float] = []
    after: list[float] = []
    first = env.task_set[task_ids[0]]
    old.grade_files(first, solution_files(first))  # warm up: pool, imports, page cache
    new.grade_files(first, solution_files(first))
    for r in range(rounds):
        for i, task_id in enumerate(task_ids):
            task = env.task_set[task_id]
            files = solution_files(task)
            pair = [("before", old), ("after", new)]
            if (r + i) % 2:
                pair.reverse()
            for label, grader in pair:
                t = measure(functools.partial(grader.grade_files, task, files), f"{label} {task_id}")
                (before if label == "before" else after).append(t)
    return before, after


def episodes_per_minute(source: str, backend: str, task_ids: list[str], workers: int) -> tuple[float, float]:
    kwargs = {"source": source, "sandbox": backend, "split": "all"}
    collect(
        "agentgym/CodeRepair-v0",
        "oracle",
        tasks=task_ids[:workers],
        num_workers=workers,
        env_kwargs=kwargs,
        progress=False,
    )
    start = time.perf_counter()
    trajs = collect(
        "agentgym/CodeRepair-v0", "oracle", tasks=task_ids, num_workers=workers, env_kwargs=kwargs, progress=False
    )
    elapsed = time.perf_counter() - start
    return len(trajs) / elapsed * 60.0, sum(t.outcome_reward == 1.0 for t in trajs) / len(trajs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=8, help="tasks per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="gradings of each task per grader")
    parser.add_argument("--backends", nargs="+", default=["local", "docker"])
    parser.add_argument("--humaneval", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--throughput", action="store_true", help="also measure oracle episodes per minute")
    args = parser.parse_args()

    console = Console(width=150)
    table = Table(title=f"Grading latency of the reference fix, before ({BEFORE}) and after the integrity layers")
    for col in (
        "env",
        "sandbox",
        "gradings",
        "before p50 (s)",
        "after p50 (s)",
        "before mean (s)",
        "after mean (s)",
        "after/before (mean)",
    ):
        table.add_column(col, justify="left" if col in ("env", "sandbox") else "right")
    runs: list[tuple[str, str, Callable[[], Any]]] = [
        ("CodeRepair-v0", b, lambda b=b: CodeRepairEnv(source="curated", sandbox=b, split="all")) for b in args.backends
    ]
    if args.humaneval:
        runs.append(("HumanEval-v0", "local", lambda: HumanEvalEnv(sandbox="local", split="all")))
    for name, backend, make in runs:
        env = make()
        try:
            task_ids = env.tasks.ids[: args.tasks]
            before, after = compare(env, task_ids, args.rounds)
        finally:
            env.close()
        ratio = statistics.mean(after) / statistics.mean(before)
        table.add_row(
            name,
            backend,
            str(len(after)),
            f"{statistics.median(before):.3f}",
            f"{statistics.median(after):.3f}",
            f"{statistics.mean(before):.3f}",
            f"{statistics.mean(after):.3f}",
            f"{ratio:.2f}x",
        )
    console.print(table)
    if args.throughput:
        tp = Table(title="CodeRepair-v0, oracle policy, end to end")
        for col in ("sandbox", "workers", "episodes/min", "solved"):
            tp.add_column(col, justify="right" if col != "sandbox" else "left")
        for backend in args.backends:
            env = CodeRepairEnv(source="curated", sandbox=backend, split="all")
            ids = env.tasks.ids[: args.tasks]
            env.close()
            for workers in (1, 2):
                rate, solved = episodes_per_minute("curated", backend, ids, workers)
                tp.add_row(backend, str(workers), f"{rate:.1f}", f"{solved:.2f}")
        console.print(tp)


if __name__ == "__main__":
    main()
