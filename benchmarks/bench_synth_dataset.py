"""The shipped synthesized coding tasks, validated in full: every task's oracle 1 and do-nothing 0, timed.

    python benchmarks/bench_synth_dataset.py [--dataset agentgym/envs/coding/synth_data/pypi.jsonl.xz]
        [--workers 2] [--sandbox local] [--projects wcwidth-0.2.13 ...] [--limit-per-project N]
        [--out runs/bench_synth_dataset]

**Loading.** The compact file is rebuilt into full tasks (each sdist from the cache, or downloaded
once from PyPI; each task's patch applied and its digest checked), timed, and set against the
baseline of reading the same tasks as full JSON (what the compact form saves on disk costs this
much at start-up).

**Validation.** Project by project (so the table says where time goes), every task runs the
oracle and the no-op policy through ``agentgym.validate.validate`` on ``--sandbox``, with
``--workers`` episodes at once; a task is broken when the oracle does not score 1 or doing
nothing does not score 0. The run ends with the per-project table, the totals and the
throughput, written to ``--out`` as ``results.json`` and ``RESULTS.md``. No thresholds: a broken
task is listed with its problem, and the exit status is 1 when any task is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentgym.envs.coding import CodeRepairEnv
from agentgym.envs.coding.dataset import SHIPPED, load
from agentgym.tasks import Task, TaskSet
from agentgym.validate import validate


def _load_timed(path: Path) -> tuple[list[Task], float, float]:
    """The tasks, the seconds to rebuild them from the compact file, and to read them back as full JSON."""
    start = time.perf_counter()
    tasks = list(load(path))
    rebuild = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp, "tasks.jsonl")
        TaskSet(tasks).to_jsonl(full)
        start = time.perf_counter()
        TaskSet.from_jsonl(full)
        read_full = time.perf_counter() - start
        full_mb = full.stat().st_size / 1e6
    print(f"rebuilt {len(tasks)} tasks in {rebuild:.1f} s (full JSON: {full_mb:.1f} MB, read in {read_full:.1f} s)")
    return tasks, rebuild, read_full


def _env_factory(group: list[Task], project: str, sandbox: str) -> Callable[[], CodeRepairEnv]:
    return lambda: CodeRepairEnv(tasks=TaskSet(group, name=project), sandbox=sandbox, split="all")


def main(argv: list[str] | None = None) -> int:
    """Validate the dataset project by project and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", type=Path, default=SHIPPED)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sandbox", default="local", choices=["local", "docker"])
    p.add_argument("--projects", nargs="*", default=None, help="only these projects (names as in the task ids)")
    p.add_argument("--limit-per-project", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("runs/bench_synth_dataset"))
    args = p.parse_args(argv)

    tasks, rebuild_s, read_full_s = _load_timed(args.dataset)
    by_project: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_project[str(task.metadata.get("project", "?"))].append(task)
    if args.projects:
        by_project = defaultdict(list, {k: v for k, v in by_project.items() if k in set(args.projects)})
    rows: list[dict[str, Any]] = []
    broken: list[dict[str, str]] = []
    started = time.perf_counter()
    for project in sorted(by_project):
        group = by_project[project][: args.limit_per_project]
        t0 = time.perf_counter()
        report = validate(_env_factory(group, project, args.sandbox), num_workers=args.workers, progress=True)
        seconds = time.perf_counter() - t0
        bad = [c for c in report.checks if not c.ok]
        broken += [{"task": c.task_id, "problems": "; ".join(c.problems)} for c in bad]
        rows.append(
            {
                "project": project,
                "split": group[0].split,
                "tasks": len(report.checks),
                "broken": len(bad),
                "seconds": round(seconds, 1),
                "seconds_per_task": round(seconds / max(1, len(report.checks)), 2),
            }
        )
        print(f"{project}: {len(report.checks)} tasks, {len(bad)} broken, {seconds:.0f} s", flush=True)
    total_s = time.perf_counter() - started
    n = sum(r["tasks"] for r in rows)
    summary = {
        "dataset": str(args.dataset),
        "tasks": n,
        "projects": len(rows),
        "broken": len(broken),
        "validate_seconds": round(total_s, 1),
        "tasks_per_minute": round(60 * n / total_s, 1) if total_s else None,
        "rebuild_seconds": round(rebuild_s, 1),
        "read_full_json_seconds": round(read_full_s, 2),
        "workers": args.workers,
        "sandbox": args.sandbox,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }

    table = Table(
        title=f"{args.dataset.name}: oracle 1 and no-op 0 on every task ({args.sandbox}, {args.workers} workers)"
    )
    for col in ("project", "split", "tasks", "broken", "seconds", "s/task"):
        table.add_column(col, justify="left" if col in ("project", "split") else "right")
    for r in rows:
        table.add_row(
            r["project"],
            r["split"],
            str(r["tasks"]),
            str(r["broken"]),
            f"{r['seconds']:.0f}",
            f"{r['seconds_per_task']:.2f}",
        )
    table.add_row("total", "", str(n), str(len(broken)), f"{total_s:.0f}", f"{total_s / max(1, n):.2f}")
    Console().print(table)
    print(
        f"rebuild from the compact file: {rebuild_s:.1f} s (baseline, full JSON read: {read_full_s:.2f} s); "
        f"validation: {n} tasks in {total_s / 60:.1f} min ({summary['tasks_per_minute']} tasks/min)"
    )
    for b in broken:
        print(f"BROKEN {b['task']}: {b['problems']}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"summary": summary, "projects": rows, "broken": broken}, indent=2)
    )
    lines = [
        f"# Shipped synth dataset validation ({summary['date']})",
        "",
        f"{n} tasks from {len(rows)} projects, {len(broken)} broken; validation {total_s / 60:.1f} min "
        f"({args.workers} workers, {args.sandbox} sandbox, {summary['machine']}); rebuild {rebuild_s:.1f} s.",
        "",
        "| project | split | tasks | broken | seconds | s/task |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {r['project']} | {r['split']} | {r['tasks']} | {r['broken']} | {r['seconds']:.0f} | "
            f"{r['seconds_per_task']:.2f} |"
            for r in rows
        ),
        "",
        *(f"- BROKEN `{b['task']}`: {b['problems']}" for b in broken),
    ]
    (args.out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
