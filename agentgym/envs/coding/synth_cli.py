"""``agentgym tasks synth``: bug-fix tasks from a real project's own test suite."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .mutations import OPERATORS

if TYPE_CHECKING:
    from .synth import SynthConfig


def add_commands(tasks_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``synth`` to the ``agentgym tasks`` command group."""
    p = tasks_subparsers.add_parser(
        "synth",
        help="inject bugs into a real project and keep those its tests catch",
        description="Mutate a Python project (local folder or PyPI sdist with tests), run its tests in a sandbox, "
        "and write the mutants its tests catch as coding tasks (JSONL, shared coding-task format).",
    )
    p.add_argument("source", nargs="?", help="project folder (its root holds the tests); omit with --pypi")
    p.add_argument("--pypi", metavar="NAME==VER", help="download this source distribution from PyPI instead")
    p.add_argument("--out", default="tasks.jsonl", help="output JSONL file (default: tasks.jsonl)")
    p.add_argument(
        "--sandbox",
        default="local",
        choices=["local", "docker", "none"],
        help="where tests run: local (bubblewrap), docker, or none (host subprocess; trusted code only)",
    )
    p.add_argument("--max-tasks", type=int, default=50, help="stop after keeping this many tasks")
    p.add_argument("--max-per-operator", type=int, default=25, help="try at most this many mutants per operator")
    p.add_argument("--seed", type=int, default=0, help="order in which mutation sites are tried")
    p.add_argument("--operators", default=",".join(OPERATORS), help="comma-separated operators (default: all)")
    harder = p.add_argument_group("harder bugs")
    harder.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="also keep up to N two-bug tasks: two kept mutants in different files applied together, whose failing "
        "tests need both to explain them (fixing one file is not enough); counted under the 'pair' row",
    )
    harder.add_argument(
        "--far",
        action="store_true",
        help="keep only bugs whose failing tests never name the mutated function (reached through other code); "
        "every task records metadata.distance (far or near) either way",
    )
    p.add_argument(
        "--test-cmd", default=None, help="command that runs pytest in the sandbox (default: 'python3 -m pytest')"
    )
    p.add_argument(
        "--mutant-timeout", type=float, default=None, help="seconds per mutant test run (default: 3x baseline, >= 20)"
    )
    p.add_argument("--name", default=None, help="project name in task ids (default: folder or NAME-VER)")
    p.add_argument(
        "--check", action="store_true", help="re-run every kept task's tests (base fails, fix passes) before writing"
    )
    p.add_argument(
        "--no-grade",
        action="store_true",
        help="keep tasks without grading them with the coding environments' grader (default: a task is kept only "
        "when the grader scores its fix 1 and its base 0)",
    )
    p.add_argument(
        "--no-deps",
        action="store_true",
        help="do not install the project's declared runtime and test dependencies (default: pip installs them once "
        "into a cached folder on the host, uploaded into the sandbox)",
    )
    p.add_argument(
        "--deps-cache", default=None, help="folder for installed dependencies (default: $AGENTGYM_CACHE/synth-deps)"
    )
    p.add_argument(
        "--find-links",
        default=None,
        metavar="DIR",
        help="install dependencies only from this folder of wheels/sdists (pip --no-index --find-links DIR)",
    )
    batch = p.add_argument_group("batch mode (many projects, one worker process each, resumable)")
    batch.add_argument(
        "--projects",
        metavar="FILE",
        default=None,
        help="synthesize every project in FILE (one per line: NAME==VER for a PyPI sdist, or a local folder, "
        "relative to FILE; '#' comments) instead of one project; needs --out-dir",
    )
    batch.add_argument(
        "--out-dir",
        metavar="DIR",
        default=None,
        help="batch output: DIR/tasks/<project>.jsonl, DIR/status/<project>.json, DIR/logs/, and DIR/tasks.jsonl, "
        "DIR/yield.md, DIR/yield.json over all projects",
    )
    batch.add_argument("--workers", type=int, default=1, help="projects synthesized in parallel (default: 1)")
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="rerun projects whose status says failed (by default every project with a status file is skipped; "
        "those that are done always are)",
    )
    batch.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="share of projects whose tasks go to the held-out 'test' split (stable hash of the name; default 0.2)",
    )
    p.set_defaults(fn=cmd_synth)


def synth_config(args: argparse.Namespace, name: str | None = None) -> SynthConfig:
    """The :class:`SynthConfig` of the command line (one project, or each project of a batch)."""
    from .synth import SynthConfig

    return SynthConfig(
        max_tasks=args.max_tasks,
        max_per_operator=args.max_per_operator,
        seed=args.seed,
        operators=[o.strip() for o in args.operators.split(",") if o.strip()],
        sandbox=args.sandbox,
        test_cmd=shlex.split(args.test_cmd) if args.test_cmd else None,
        mutant_timeout=args.mutant_timeout,
        name=name,
        install_deps=not args.no_deps,
        grade=not args.no_grade,
        deps_cache=args.deps_cache,
        pip_args=["--no-index", "--find-links", str(Path(args.find_links).resolve())] if args.find_links else [],
        pairs=args.pairs,
        far=args.far,
    )


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``agentgym tasks synth``: load or download the project, synthesize, optionally check, write JSONL."""
    from agentgym.tasks import TaskSet

    from .synth import SynthError, check_task_tests, download_sdist, load_project, synthesize

    if args.pairs < 0:
        raise SystemExit(f"--pairs must be 0 or more, got {args.pairs}")
    if args.projects or args.out_dir:
        return cmd_synth_batch(args)
    if bool(args.source) == bool(args.pypi):
        raise SystemExit("give either a project folder or --pypi NAME==VER (not both)")
    name = args.name or (args.pypi.replace("==", "-") if args.pypi else Path(args.source).resolve().name)
    try:
        with tempfile.TemporaryDirectory(prefix="agentgym-sdist-") as tmp:
            if args.pypi:
                try:
                    root = download_sdist(args.pypi, tmp)
                except RuntimeError as e:
                    raise SynthError("download", str(e).splitlines()[0]) from None
            else:
                root = Path(args.source)
            try:
                files = load_project(root)
            except ValueError as e:
                raise SynthError("too-large", str(e)) from None
        cfg = synth_config(args, name=name)
        result = synthesize(files, cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except SynthError as e:
        raise SystemExit(e.line(name)) from None
    tasks = result.tasks
    deps = result.deps.path if result.deps else None
    if args.check:
        sound = []
        for task in tasks:
            problems = check_task_tests(task, args.sandbox, deps=deps)
            if problems:
                print(f"dropping {task.id}: " + "; ".join(problems[:3]), file=sys.stderr)
            else:
                sound.append(task)
        tasks = sound
    TaskSet(tasks, name=name).to_jsonl(args.out)
    print(
        f"\n{name}: baseline {result.baseline_passed} passing tests; {len(tasks)} tasks written to {args.out} "
        f"in {result.seconds:.0f}s\n"
    )
    print(result.table())
    return 0


def cmd_synth_batch(args: argparse.Namespace) -> int:
    """Run ``agentgym tasks synth --projects FILE --out-dir DIR``: every project in its own worker process."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

    from .synth.batch import parse_projects, run_batch

    if not (args.projects and args.out_dir):
        raise SystemExit("batch mode needs both --projects FILE and --out-dir DIR")
    if args.source or args.pypi or args.name:
        raise SystemExit("--projects lists the projects: give no project folder, --pypi or --name with it")
    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {args.workers}")
    projects = Path(args.projects)
    try:
        specs = parse_projects(projects.read_text(), relative_to=projects.resolve().parent)
    except OSError as e:
        raise SystemExit(f"cannot read the projects file: {e}") from None
    except ValueError as e:
        raise SystemExit(f"{args.projects}: {e}") from None
    cfg = synth_config(args)
    bar = tqdm(total=len(specs), desc="projects", unit="project", dynamic_ncols=True)

    def progress(status: dict[str, object]) -> None:
        if status.get("status") == "done":
            line = f"{status['project']}: kept {status['kept']} of {status['tried']} tried in {status['seconds']}s"
        else:
            line = str(status.get("reason"))
        bar.write(line, file=sys.stderr)
        bar.update(1)

    try:
        statuses = run_batch(
            specs,
            cfg,
            args.out_dir,
            workers=args.workers,
            retry_failed=args.retry_failed,
            check=args.check,
            test_fraction=args.test_fraction,
            progress=progress,
        )
    finally:
        bar.close()
    out = Path(args.out_dir)
    done = sum(s.get("status") == "done" for s in statuses)
    kept = sum(int(s.get("kept") or 0) for s in statuses)
    print(f"\n{done} of {len(specs)} projects used, {kept} tasks: {out / 'tasks.jsonl'}; yield: {out / 'yield.md'}\n")
    print((out / "yield.md").read_text())
    return 0
