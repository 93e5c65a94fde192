"""Synthesis over many projects: one worker process per project, resumable, with a yield report.

``agentgym tasks synth --projects FILE --out-dir DIR`` reads one project per line of FILE
(``NAME==VERSION`` for a PyPI sdist, or a local folder; ``#`` starts a comment) and writes::

    DIR/tasks/<project>.jsonl    the project's tasks (written before its status)
    DIR/status/<project>.json    kept, tried, per-operator counts, seconds; or why it cannot be used
    DIR/logs/<project>.log       the synthesis log
    DIR/tasks.jsonl              every project's tasks, sorted by id
    DIR/yield.md, yield.json     per-project and per-operator tables

A project with a status file is finished and skipped on a rerun (``retry_failed`` reruns
those that failed). A project that raises, or whose worker process dies, gets a failed
status and the others go on. The held-out split is by project: a stable hash of the
project's name (without its version) puts about ``test_fraction`` of the projects in
``test``, and every task of a project carries that split.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.tasks import Task, TaskSet, stable_split

from .check import check_task_tests
from .errors import SynthError
from .project import download_sdist, load_project
from .search import SynthConfig, synthesize
from .stats import OperatorStats, yield_table

SPLIT_SALT = "agentgym-synth-project"
"""Salt of the stable hash that puts a project in ``train`` or ``test``."""


@dataclass(frozen=True)
class ProjectSpec:
    """One line of a projects file."""

    name: str
    """The project's name in file names and task ids: ``NAME-VERSION`` or the folder's name."""
    base: str
    """The name without a version: what the split hashes, so every version of a project is in one split."""
    version: str = ""
    """The PyPI version (empty for a local folder)."""
    pypi: str | None = None
    """``NAME==VERSION`` to download, or None."""
    path: str | None = None
    """The local folder, or None."""


def parse_projects(text: str, relative_to: Path | None = None) -> list[ProjectSpec]:
    """The projects listed in ``text``, one per line; blank lines and ``#`` comments are ignored.

    Args:
        text: The projects file's contents.
        relative_to: Folder that relative local paths are relative to (default: the working directory).

    Raises:
        ValueError: Two lines give the same project name.
    """
    specs: list[ProjectSpec] = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if "==" in entry and "/" not in entry:
            base, version = (s.strip() for s in entry.split("==", 1))
            specs.append(ProjectSpec(f"{base}-{version}", base, version, pypi=f"{base}=={version}"))
        else:
            path = Path(entry).expanduser()
            if relative_to is not None and not path.is_absolute():
                path = relative_to / path
            name = path.resolve().name
            specs.append(ProjectSpec(name, name, path=str(path)))
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise ValueError(f"project {s.name!r} is listed twice; each project needs its own name")
        seen.add(s.name)
    return specs


def project_split(base: str, test_fraction: float = 0.2) -> str:
    """``train`` or ``test`` for a project, from a stable hash of its name."""
    return stable_split(base, test_fraction, salt=SPLIT_SALT)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _label(tasks: list[Task], spec: ProjectSpec, split: str) -> list[Task]:
    """The tasks with their project's name (and PyPI release, for ``agentgym tasks pack``) and split."""
    sdist = {"sdist": spec.pypi} if spec.pypi else {}
    return [dataclasses.replace(t, metadata={**t.metadata, "project": spec.name, **sdist}, split=split) for t in tasks]


def run_project(
    spec: ProjectSpec, cfg: SynthConfig, out_dir: str, *, check: bool = False, test_fraction: float = 0.2
) -> dict[str, Any]:
    """Synthesize one project (in a worker process) and write its tasks, log and status.

    Never raises for a project problem: a :class:`SynthError` or any other exception ends in a
    ``failed`` status with its category (``crash`` for an unexpected exception) and one line.

    Returns:
        The status written to ``out_dir/status/<project>.json``.
    """
    out = Path(out_dir)
    slug = _slug(spec.name)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    split = project_split(spec.base, test_fraction)
    started = time.monotonic()
    status: dict[str, Any] = {
        "project": spec.name,
        "version": spec.version,
        "source": spec.pypi or spec.path,
        "split": split,
    }
    with open(out / "logs" / f"{slug}.log", "w") as logf:

        def log(msg: str) -> None:
            print(msg, file=logf, flush=True)

        try:
            with tempfile.TemporaryDirectory(prefix="agentgym-sdist-") as tmp:
                if spec.pypi:
                    try:
                        root = download_sdist(spec.pypi, tmp)
                    except RuntimeError as e:
                        raise SynthError("download", str(e).splitlines()[0]) from None
                else:
                    root = Path(spec.path or "")
                try:
                    files = load_project(root)
                except FileNotFoundError as e:  # a folder that is not there has no tests
                    raise SynthError("no-tests", str(e)) from None
                except ValueError as e:
                    raise SynthError("too-large", str(e)) from None
            result = synthesize(files, dataclasses.replace(cfg, name=spec.name), log=log)
            tasks = result.tasks
            if check:
                deps = result.deps.path if result.deps else None
                sound = []
                for task in tasks:
                    problems = check_task_tests(task, cfg.sandbox, deps=deps)
                    if problems:
                        log(f"dropping {task.id}: " + "; ".join(problems[:3]))
                    else:
                        sound.append(task)
                tasks = sound
            tasks = _label(tasks, spec, split)
            _write_atomic(
                out / "tasks" / f"{slug}.jsonl", "".join(json.dumps(t.to_dict(), sort_keys=True) + "\n" for t in tasks)
            )
            status.update(
                status="done",
                tests=result.baseline_passed + result.baseline_not_passed,
                baseline_passed=result.baseline_passed,
                kept=len(tasks),
                tried=sum(s.tried for s in result.stats.values()),
                operators={op: dataclasses.asdict(s) for op, s in result.stats.items()},
                category=None,
                reason=None,
            )
        except SynthError as e:
            log(e.line(spec.name))
            status.update(status="failed", kept=0, tried=0, operators={}, category=e.category, reason=e.line(spec.name))
        except Exception as e:  # one project's bug must not stop the batch
            log(traceback.format_exc())
            line = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            status.update(
                status="failed",
                kept=0,
                tried=0,
                operators={},
                category="crash",
                reason=f"cannot use {spec.name}: crash: {line}",
            )
    status["seconds"] = round(time.monotonic() - started, 1)
    status["finished_at"] = time.time()
    _write_atomic(out / "status" / f"{slug}.json", json.dumps(status, indent=2, sort_keys=True) + "\n")
    return status


def read_status(out_dir: str | Path, spec: ProjectSpec) -> dict[str, Any] | None:
    """The project's status from an earlier run, or None when it has not finished."""
    path = Path(out_dir) / "status" / f"{_slug(spec.name)}.json"
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status


def _crash_status(spec: ProjectSpec, out_dir: str, detail: str, test_fraction: float) -> dict[str, Any]:
    status: dict[str, Any] = {
        "project": spec.name,
        "version": spec.version,
        "source": spec.pypi or spec.path,
        "split": project_split(spec.base, test_fraction),
        "status": "failed",
        "kept": 0,
        "tried": 0,
        "operators": {},
        "category": "crash",
        "reason": f"cannot use {spec.name}: crash: {detail}",
        "seconds": 0.0,
        "finished_at": time.time(),
    }
    _write_atomic(
        Path(out_dir) / "status" / f"{_slug(spec.name)}.json", json.dumps(status, indent=2, sort_keys=True) + "\n"
    )
    return status


def run_batch(
    specs: Sequence[ProjectSpec],
    cfg: SynthConfig,
    out_dir: str | Path,
    *,
    workers: int = 1,
    retry_failed: bool = False,
    check: bool = False,
    test_fraction: float = 0.2,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Synthesize every project not yet finished, each in a worker process, then write the report.

    Args:
        specs: The projects (:func:`parse_projects`).
        cfg: Per-project settings; ``name`` is set per project.
        out_dir: Where everything is written (see the module docstring).
        workers: Worker processes.
        retry_failed: Rerun projects whose earlier status is ``failed`` (``done`` ones are always skipped).
        check: Re-run every kept task's tests and drop those that are not sound.
        test_fraction: Share of projects in the ``test`` split.
        progress: Called with each status as its project finishes (not for skipped ones).

    Returns:
        Every project's status, in the order of ``specs``.
    """
    out = str(Path(out_dir).resolve())
    Path(out).mkdir(parents=True, exist_ok=True)
    todo = []
    for spec in specs:
        old = read_status(out, spec)
        if old is None or (retry_failed and old.get("status") != "done"):
            todo.append(spec)
    done: dict[str, dict[str, Any]] = {}

    def finish(status: dict[str, Any]) -> None:
        done[status["project"]] = status
        if progress:
            progress(status)

    broken = _run_pool(todo, cfg, out, workers, check, test_fraction, finish)
    for spec in broken:  # a worker process died: rerun these one at a time to find which
        if _run_pool([spec], cfg, out, 1, check, test_fraction, finish):
            finish(_crash_status(spec, out, "the worker process died", test_fraction))
    write_report(specs, out)
    return [read_status(out, s) or {} for s in specs]


def _run_pool(
    specs: Sequence[ProjectSpec],
    cfg: SynthConfig,
    out: str,
    workers: int,
    check: bool,
    test_fraction: float,
    finish: Callable[[dict[str, Any]], None],
) -> list[ProjectSpec]:
    """Run ``specs`` in a pool; the ones whose worker process died are returned."""
    if not specs:
        return []
    broken: list[ProjectSpec] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures: dict[Future[dict[str, Any]], ProjectSpec] = {
            pool.submit(run_project, s, cfg, out, check=check, test_fraction=test_fraction): s for s in specs
        }
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                finish(fut.result())
            except BrokenProcessPool:
                broken.append(spec)
            except Exception as e:  # e.g. a result that cannot be unpickled
                finish(_crash_status(spec, out, " ".join(f"{type(e).__name__}: {e}".split())[:300], test_fraction))
    return broken


def write_report(specs: Sequence[ProjectSpec], out_dir: str | Path) -> dict[str, Any]:
    """Write ``tasks.jsonl``, ``yield.md`` and ``yield.json`` from the projects' status and task files.

    Projects without a status (not run yet) are listed as ``pending``.

    Returns:
        The ``yield.json`` content.
    """
    out = Path(out_dir)
    rows: list[dict[str, Any]] = []
    operators: dict[str, OperatorStats] = {}
    tasks: list[Task] = []
    for spec in specs:
        status = read_status(out, spec) or {"project": spec.name, "version": spec.version, "status": "pending"}
        rows.append(status)
        for op, counts in (status.get("operators") or {}).items():
            operators[op] = operators.get(op, OperatorStats()) + OperatorStats(**counts)
        path = out / "tasks" / f"{_slug(spec.name)}.jsonl"
        if status.get("status") == "done" and path.exists():
            split = status.get("split") or project_split(spec.base)
            tasks += _label(list(TaskSet.from_jsonl(path)), spec, split)
    tasks.sort(key=lambda t: t.id)
    TaskSet(tasks, name="synth").to_jsonl(out / "tasks.jsonl")
    total = sum(operators.values(), OperatorStats())
    report = {
        "projects": [
            {
                k: r.get(k)
                for k in (
                    "project",
                    "version",
                    "status",
                    "split",
                    "tests",
                    "baseline_passed",
                    "kept",
                    "tried",
                    "seconds",
                    "category",
                    "reason",
                )
            }
            for r in rows
        ],
        "operators": {op: {**dataclasses.asdict(s), "yield_pct": round(s.yield_pct, 1)} for op, s in operators.items()},
        "total": {**dataclasses.asdict(total), "yield_pct": round(total.yield_pct, 1)},
        "tasks": len(tasks),
        "splits": {s: sum(t.split == s for t in tasks) for s in ("train", "test")},
    }
    _write_atomic(out / "yield.json", json.dumps(report, indent=2) + "\n")
    _write_atomic(out / "yield.md", _markdown(report, operators))
    return report


def _markdown(report: dict[str, Any], operators: dict[str, OperatorStats]) -> str:
    header = ("project", "version", "split", "tests", "baseline passed", "kept", "tried", "seconds", "reason")
    rows = [header]
    for p in report["projects"]:
        cells = [p["project"], p["version"] or "", p["split"] or ""]
        cells += [
            "" if p.get(k) is None else str(p[k]) for k in ("tests", "baseline_passed", "kept", "tried", "seconds")
        ]
        cells.append(p["reason"] or ("" if p["status"] == "done" else p["status"]))
        rows.append(tuple(c.replace("|", "\\|") for c in cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7}

    def line(row: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 1) + (":" if i in numeric else "-") for i, w in enumerate(widths)) + "|"
    done = sum(p["status"] == "done" for p in report["projects"])
    parts = [
        "# Synthesis yield",
        "",
        f"{len(report['projects'])} projects, {done} used; {report['tasks']} tasks "
        f"({report['splits']['train']} train, {report['splits']['test']} test, split by project).",
        "",
        "## Projects",
        "",
        line(rows[0]),
        rule,
        *map(line, rows[1:]),
        "",
        "## Operators (summed over projects)",
        "",
        yield_table(operators),
        "",
    ]
    return "\n".join(parts)
