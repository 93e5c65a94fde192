"""CodeRepair-v0 throughput with the oracle policy, and grading latency per task.

For each sandbox backend (local bubblewrap, Docker) and 1 or 2 rollout workers, runs
the oracle on the same tasks and reports episodes per minute (each episode: a fresh
workspace sandbox, the reference fix written through the tools, submit, grading in a
second fresh sandbox). The baseline in the same run is the grading step alone
(:meth:`Grader.grade_files` on the reference fix), the floor of an episode's cost.

Run: ``python benchmarks/bench_coding.py [--source curated] [--tasks 12] [--backends local docker]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.table import Table

from agentgym.envs.coding import CodeRepairEnv
from agentgym.envs.coding.repo import solution_files
from agentgym.rollout import collect


def grading_latency(env: CodeRepairEnv, task_ids: list[str]) -> list[float]:
    times = []
    for task_id in task_ids:
        task = env.task_set[task_id]
        start = time.perf_counter()
        result = env.grader.grade_files(task, solution_files(task))
        times.append(time.perf_counter() - start)
        if not result.resolved:
            raise RuntimeError(f"the reference fix of {task_id} did not pass: {result.summary()}")
    return times


def episodes_per_minute(source: str, backend: str, task_ids: list[str], workers: int) -> tuple[float, float]:
    kwargs = {"source": source, "sandbox": backend, "split": "all"}
    collect("agentgym/CodeRepair-v0", "oracle", tasks=task_ids[:workers], num_workers=workers, env_kwargs=kwargs,
            progress=False)  # warm up: imports, image layers, page cache
    start = time.perf_counter()
    trajs = collect("agentgym/CodeRepair-v0", "oracle", tasks=task_ids, num_workers=workers, env_kwargs=kwargs,
                    progress=False)
    elapsed = time.perf_counter() - start
    solved = sum(t.outcome_reward == 1.0 for t in trajs) / len(trajs)
    return len(trajs) / elapsed * 60.0, solved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="curated", help="task source: curated, humaneval or a .jsonl path")
    parser.add_argument("--tasks", type=int, default=12, help="tasks per measurement")
    parser.add_argument("--backends", nargs="+", default=["local", "docker"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()

    console = Console()
    table = Table(title=f"CodeRepair-v0, oracle policy, {args.tasks} tasks from {args.source!r}")
    for col in ("sandbox", "workers", "episodes/min", "solved", "grading p50 (s)", "grading p95 (s)"):
        table.add_column(col, justify="right" if col != "sandbox" else "left")
    for backend in args.backends:
        env = CodeRepairEnv(source=args.source, sandbox=backend, split="all")
        try:
            task_ids = env.tasks.ids[: args.tasks]
            grading_latency(env, task_ids[:2])  # warm up
            lat = sorted(grading_latency(env, task_ids))
        finally:
            env.close()
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        table.add_row(backend, "grading only", f"{60.0 / statistics.mean(lat):.1f}", "1.00", f"{p50:.2f}", f"{p95:.2f}")
        for workers in args.workers:
            rate, solved = episodes_per_minute(args.source, backend, task_ids, workers)
            table.add_row(backend, str(workers), f"{rate:.1f}", f"{solved:.2f}", "", "")
    console.print(table)


if __name__ == "__main__":
    main()
