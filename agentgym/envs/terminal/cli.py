"""``agentgym tasks import harbor PATH...`` and ``agentgym tasks export harbor``: Harbor task folders in and out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentgym.tasks import TaskSet


def add_commands(tasks_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` and ``export`` to the ``agentgym tasks`` command group."""
    p = tasks_subparsers.add_parser(
        "import",
        help="read tasks written in another format (harbor) and say per task what can run here",
        description="Read Harbor task folders (a task folder or a folder of them), print per task whether it can "
        "run on the local and the Docker backend (and why not), and with --out write them as agentgym tasks "
        "(JSONL) that Terminal-v0 plays with --env-arg source=FILE. Terminal-v0 also reads the folders directly "
        "(--env-arg source=PATH).",
    )
    p.add_argument("format", choices=["harbor"], help="the task format")
    p.add_argument("paths", nargs="+", help="task folders, or folders of task folders")
    p.add_argument("--out", default=None, help="write the tasks to this JSONL file")
    p.set_defaults(fn=cmd_import)

    p = tasks_subparsers.add_parser(
        "export",
        help="write agentgym tasks in another format (harbor folders)",
        description="Write the tasks of a source as Harbor task folders, one per task, under --out: shell tasks "
        "as they are, coding tasks (CodeRepair format) converted (tests restored, FAIL_TO_PASS and PASS_TO_PASS "
        "run with pytest, reward.json).",
    )
    p.add_argument("format", choices=["harbor"], help="the task format")
    p.add_argument(
        "source",
        nargs="?",
        default="builtin",
        help="builtin (the shell tasks, default), curated or humaneval (coding tasks, converted), a .jsonl of "
        "shell or coding tasks, or a folder of Harbor tasks",
    )
    p.add_argument("--out", required=True, help="folder to write the task folders into")
    p.add_argument("--split", default="all", choices=["train", "test", "all"])
    p.set_defaults(fn=cmd_export)


def _status(reasons: list[str]) -> str:
    return "ok" if not reasons else "no: " + "; ".join(reasons)


def cmd_import(args: argparse.Namespace) -> int:
    """Load the folders, print the per-task table, write JSONL; 0 when every task can run on some backend."""
    from agentgym.envs.terminal.build import missing_host_packages
    from agentgym.harbor import load_tasks, unsupported_reasons

    tasks = load_tasks(args.paths)
    unusable = 0
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
    print(f"{len(tasks)} tasks, {len(tasks) - unusable} runnable here, {unusable} not", file=sys.stderr)
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


def cmd_export(args: argparse.Namespace) -> int:
    """Write every task of the source as a Harbor folder."""
    from agentgym.harbor import export_task

    tasks = export_source(args.source).split(args.split)
    out = Path(args.out)
    for task in tasks:
        export_task(task, out)
    print(f"wrote {len(tasks)} Harbor task folders under {out}")
    return 0
