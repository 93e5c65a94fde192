"""A curated set of small multi-file repository bug-fix tasks, written for agentgym.

Each task is a folder under ``curated_data/<task_id>/``::

    task.json   {"issue": str, "fail_to_pass": [...], "pass_to_pass": [...],
                 "metadata": {...}, "split": "train" | "test" (optional)}
    repo/       the repository at its base state, visible tests included
    hidden/     test files added at grading time (new files, or overwrites of visible ones)
    fix/        the files the reference fix changes, with their new contents

The folders are kept as plain files so a task reads like a repository. ``curated_data``
has no ``__init__.py``, so ``find_packages`` never installs the task code as packages;
it ships as package data (``curated_data/**/*``).

Authoring: write ``repo/``, ``hidden/``, ``fix/`` and the FAIL_TO_PASS ids, then
``python -m agentgym.envs.coding.curated fill`` computes PASS_TO_PASS and
``python -m agentgym.envs.coding.curated check`` runs every task's tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agentgym.tasks import Task, TaskSet

from .repo import make_task

DATA_DIR = Path(__file__).with_name("curated_data")
_IGNORED = ("__pycache__", ".pytest_cache")


def _read_tree(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part in _IGNORED for part in p.parts) and p.suffix != ".pyc"
    }


def load_task(folder: Path) -> Task:
    """Build one curated task (shared coding-task format) from its folder."""
    meta = json.loads((folder / "task.json").read_text())
    return make_task(
        folder.name,
        meta["issue"],
        _read_tree(folder / "repo"),
        meta["fail_to_pass"],
        _read_tree(folder / "fix"),
        pass_to_pass=meta.get("pass_to_pass", []),
        hidden_tests=_read_tree(folder / "hidden"),
        test_paths=sorted(_read_tree(folder / "hidden")),
        source="curated",
        split=meta.get("split"),
        **meta.get("metadata", {}),
    )


def load_curated(data_dir: str | Path | None = None) -> TaskSet:
    """All curated tasks, sorted by id; splits by stable hash of the id unless a task pins one."""
    root = Path(data_dir) if data_dir else DATA_DIR
    folders = sorted(p for p in root.iterdir() if (p / "task.json").is_file()) if root.is_dir() else []
    if not folders:
        raise FileNotFoundError(
            f"no curated tasks under {root}: the package data is missing "
            "(package-data for agentgym.envs.coding must include 'curated_data/**/*')"
        )
    return TaskSet([load_task(f) for f in folders], name="curated")


def _cli(argv: list[str] | None = None) -> int:
    from .synth import check_task_tests, run_task_tests

    parser = argparse.ArgumentParser(prog="python -m agentgym.envs.coding.curated")
    parser.add_argument(
        "command", choices=["check", "fill"], help="check: run every task's tests; fill: compute PASS_TO_PASS"
    )
    parser.add_argument("ids", nargs="*", help="task ids (default: all)")
    parser.add_argument(
        "--sandbox", default="none", choices=["none", "local", "docker"], help="none (host subprocess), local or docker"
    )
    args = parser.parse_args(argv)
    folders = [
        f for f in sorted(DATA_DIR.iterdir()) if (f / "task.json").is_file() and (not args.ids or f.name in args.ids)
    ]
    if args.command == "check":
        tasks = [load_task(f) for f in folders]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda t: check_task_tests(t, args.sandbox), tasks))
        for task, problems in zip(tasks, results, strict=True):
            print(("ok     " if not problems else "BROKEN ") + task.id + "".join(f"\n    {p}" for p in problems))
        return int(any(results))
    for folder in folders:
        meta = json.loads((folder / "task.json").read_text())
        hidden = _read_tree(folder / "hidden")
        base = {**_read_tree(folder / "repo"), **hidden}
        fixed = {**base, **_read_tree(folder / "fix"), **hidden}
        before, after = run_task_tests(base, args.sandbox), run_task_tests(fixed, args.sandbox)
        meta["pass_to_pass"] = sorted((before.passed & after.passed) - set(meta["fail_to_pass"]))
        odd = sorted(set(after.tests) - after.passed)
        unlisted = sorted((after.passed - before.passed) - set(meta["fail_to_pass"]))
        (folder / "task.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(
            f"{folder.name}: {len(meta['pass_to_pass'])} pass-to-pass"
            + (f"; FAIL WITH THE FIX: {odd}" if odd else "")
            + (f"; fixed but not in FAIL_TO_PASS: {unlisted}" if unlisted else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
