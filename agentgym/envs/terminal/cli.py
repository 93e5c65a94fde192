"""``agentgym tasks import FORMAT PATH...`` and ``agentgym tasks export FORMAT``: tasks in other formats, in and out.

Formats: ``harbor`` (task folders, shell tasks) and ``swe`` (SWE-bench-style JSONL instances, coding tasks,
read against local git mirrors; see :mod:`agentgym.envs.coding.swe`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentgym.tasks import Task, TaskSet


def add_commands(tasks_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` and ``export`` to the ``agentgym tasks`` command group."""
    p = tasks_subparsers.add_parser(
        "import",
        help="read tasks written in another format (harbor, swe) and say per task what can run here",
        description="harbor: read Harbor task folders (a task folder or a folder of them), print per task whether "
        "it can run on the local and the Docker backend (and why not), and with --out write them as agentgym tasks "
        "(JSONL) that Terminal-v0 plays with --env-arg source=FILE. Terminal-v0 also reads the folders directly "
        "(--env-arg source=PATH). swe: read SWE-bench / SWE-Gym / SWE-smith JSONL instances against local git "
        "mirrors (--repos), print per instance ok or why not, and with --out write the coding tasks (JSONL) that "
        "CodeRepair-v0 plays with --env-arg source=FILE.",
    )
    p.add_argument("format", choices=["harbor", "swe"], help="the task format")
    p.add_argument("paths", nargs="+", help="harbor: task folders, or folders of task folders; swe: JSONL files")
    p.add_argument("--out", default=None, help="write the tasks to this JSONL file")
    p.add_argument(
        "--ubuntu-on-debian",
        action="store_true",
        help="harbor: plan FROM ubuntu:* Dockerfiles on the Debian base image (apt packages by the same names) "
        "instead of refusing them",
    )
    p.add_argument(
        "--repos",
        default=None,
        help="swe: folder of local git mirrors, one per repository, named owner__name or name",
    )
    p.add_argument("--max-file-bytes", type=int, default=None, help="swe: larger files of a repository are left out")
    p.add_argument(
        "--max-repo-bytes", type=int, default=None, help="swe: refuse repositories holding more text than this"
    )
    p.set_defaults(fn=cmd_import)

    p = tasks_subparsers.add_parser(
        "export",
        help="write agentgym tasks in another format (harbor folders, swe JSONL)",
        description="harbor: write the tasks of a source as Harbor task folders, one per task, under --out: shell "
        "tasks as they are, coding tasks (CodeRepair format) converted (tests restored, FAIL_TO_PASS and "
        "PASS_TO_PASS run with pytest, reward.json). swe: write coding tasks as SWE-bench-style instances (JSONL) "
        "to --out, and with --repos a git mirror of each base tree, so the file imports again.",
    )
    p.add_argument("format", choices=["harbor", "swe"], help="the task format")
    p.add_argument(
        "source",
        nargs="?",
        default=None,
        help="harbor: builtin (the shell tasks, default), curated or humaneval (coding tasks, converted), a .jsonl "
        "of shell or coding tasks, or a folder of Harbor tasks; swe: curated (default), humaneval or a .jsonl of "
        "coding tasks",
    )
    p.add_argument("--out", required=True, help="harbor: folder to write the task folders into; swe: the JSONL file")
    p.add_argument("--repos", default=None, help="swe: also write a git mirror of each base tree into this folder")
    p.add_argument("--split", default="all", choices=["train", "test", "all"])
    p.set_defaults(fn=cmd_export)


def _status(reasons: list[str]) -> str:
    return "ok" if not reasons else "no: " + "; ".join(reasons)


def cmd_import(args: argparse.Namespace) -> int:
    """Load the folders, print the per-task table, write JSONL; 0 when every task can run on some backend."""
    if args.format == "swe":
        return _import_swe(args)
    from agentgym.envs.terminal.build import missing_host_packages
    from agentgym.harbor import HarborFormatError, load_tasks, unsupported_reasons

    errors: dict[str, str] = {}
    found: list[Task] = []
    for path in args.paths:
        try:
            found.extend(load_tasks(path, ubuntu_on_debian=args.ubuntu_on_debian, errors=errors))
        except HarborFormatError as e:  # not a task folder, or none of its folders is readable (those are in errors)
            if not any(str(e).endswith(v) for v in errors.values()):
                errors[str(path)] = str(e).removeprefix(f"{path}: ")
    name = Path(args.paths[0]).name if len(args.paths) == 1 else "harbor"
    tasks = TaskSet(found, name)
    unusable = len(errors)
    for folder, reason in errors.items():  # folders that are no readable task: said, not fatal to the others
        print(f"{folder} [not imported]")
        print(f"  local:  no: {reason}")
        print(f"  docker: no: {reason}")
    for task in tasks:
        local = unsupported_reasons(task, "local")
        if not local and task.setup.get("apt"):
            missing = missing_host_packages(list(task.setup["apt"]))
            if missing:
                local = [f"apt packages missing on this host: {' '.join(missing)}"]
        docker = unsupported_reasons(task, "docker")
        unusable += bool(local and docker)
        print(f"{task.id} [{tasks.split_of(task)}]")
        print(f"  local:  {_status(local)}")
        print(f"  docker: {_status(docker)}")
        for note in task.setup.get("notes", []):
            print(f"  note:   {note}")
    if args.out:
        tasks.to_jsonl(args.out)
        print(f"wrote {len(tasks)} tasks to {args.out}")
    total = len(tasks) + len(errors)
    print(f"{total} tasks, {total - unusable} runnable here, {unusable} not", file=sys.stderr)
    return 1 if unusable else 0


def export_source(source: str) -> TaskSet:
    """The tasks of ``source`` in the Harbor format: shell tasks as they are, coding tasks converted.

    ``source``: ``builtin`` (the shell tasks), ``curated`` or ``humaneval`` (CodeRepair's), a
    ``.jsonl`` of shell or coding tasks, or a folder of Harbor tasks.
    """
    from agentgym.envs.coding.to_harbor import coding_task_to_harbor

    if source in ("curated", "humaneval"):
        from agentgym.envs.coding.env import load_source as coding_source

        tasks = coding_source(source)
    else:
        from agentgym.envs.terminal.env import load_source

        tasks = load_source(source)
    converted = []
    for task in tasks:
        if task.setup.get("format") == "harbor":
            converted.append(task)
        elif isinstance(task.setup.get("files"), dict):
            converted.append(coding_task_to_harbor(task))
        else:
            raise ValueError(f"task {task.id!r} is neither a shell task nor a coding task; it has no Harbor form")
    return TaskSet(converted, tasks.name, tasks.test_fraction)


def _import_swe(args: argparse.Namespace) -> int:
    """Import SWE-style JSONL files; print per instance ok or why not; 0 when every instance imported."""
    from agentgym.envs.coding.swe import SWEError, iter_swe

    if not args.repos:
        print("tasks import swe needs --repos DIR: the folder of local git mirrors (owner__name or name)")
        return 2
    caps = {k: v for k, v in (("max_file_bytes", args.max_file_bytes), ("max_repo_bytes", args.max_repo_bytes)) if v}
    imported, failed = [], 0
    for path in args.paths:
        try:
            results = list(iter_swe(path, args.repos, **caps))
        except (OSError, SWEError) as e:
            print(f"{path}: {e}")
            failed += 1
            continue
        for instance, result in results:
            if isinstance(result, SWEError):
                failed += 1
                print(f"{instance}: no: {str(result).removeprefix(f'{instance}: ')}")
                continue
            imported.append(result)
            ignored = result.metadata.get("ignored_patch_files", {})
            note = f" (gold patch files the grader ignores: {', '.join(ignored)})" if ignored else ""
            print(f"{instance}: ok{note}")
    if args.out:
        TaskSet(imported, Path(args.out).stem).to_jsonl(args.out)
        print(f"wrote {len(imported)} tasks to {args.out}")
    print(f"{len(imported)} instances imported, {failed} not", file=sys.stderr)
    return 1 if failed else 0


def _export_swe(args: argparse.Namespace) -> int:
    """Write coding tasks as SWE-style JSONL, and with --repos their base trees as git mirrors."""
    import json

    from agentgym.envs.coding.env import load_source as coding_source
    from agentgym.envs.coding.swe import SWEError, to_swe, write_mirror

    tasks = coding_source(args.source or "curated").split(args.split)
    rows, mirrors, failed = [], set(), 0
    for task in tasks:
        try:
            rows.append(to_swe(task))
            if args.repos:
                mirrors.add(write_mirror(task, args.repos))
        except SWEError as e:
            failed += 1
            print(f"{task.id}: no: {e}")
    with open(args.out, "w") as f:
        f.writelines(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    print(f"wrote {len(rows)} instances to {args.out}")
    if args.repos:
        print(f"wrote {len(mirrors)} git mirrors under {args.repos}")
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write every task of the source as a Harbor folder (or, for ``swe``, a JSONL row)."""
    from agentgym.harbor import export_task

    if args.format == "swe":
        return _export_swe(args)
    tasks = export_source(args.source or "builtin").split(args.split)
    out = Path(args.out)
    for task in tasks:
        export_task(task, out)
    print(f"wrote {len(tasks)} Harbor task folders under {out}")
    return 0
