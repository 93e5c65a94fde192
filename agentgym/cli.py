"""The ``agentgym`` command line: list, describe, run, eval, tasks, serve.

The sandboxes, the coding environments and the trainer add their own commands
(``_EXTENSIONS``) when they are installed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

import gymnasium.error

from agentgym.messages import render_transcript

# Packages that add subcommands: module -> (function, parser group it extends).
_EXTENSIONS = [
    ("agentgym.server_cli", "add_commands", "root"),
    ("agentgym.sandboxes.cli", "add_commands", "root"),
    ("agentgym.trainer.cli", "add_commands", "root"),
    ("agentgym.trainer.serve_model", "add_commands", "root"),
    ("agentgym.envs.coding.synth_cli", "add_commands", "tasks"),
    ("agentgym.envs.coding.dataset", "add_commands", "tasks"),
    ("agentgym.envs.terminal.cli", "add_commands", "tasks"),
]


def _env_kwargs(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env-arg expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _add_env_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--env-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment keyword argument (VALUE parsed as JSON when it can be), repeatable",
    )


def cmd_list(args: argparse.Namespace) -> int:
    """``agentgym list``: print every registered environment id."""
    import agentgym

    for env_id in agentgym.list_envs():
        print(env_id)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """``agentgym describe ENV``: tools, rewards, splits and task count (``--json`` for the raw dict)."""
    from agentgym.registry import env_class, spec_kwargs

    kwargs = {**spec_kwargs(args.env), **_env_kwargs(args.env_arg)}
    info = env_class(args.env).describe(**kwargs)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.env}  ({info['class']})\n  {info['doc']}")
    splits = info["splits"]
    print(f"  tasks: {info['tasks']}  (train {splits['train']}, test {splits['test']}); max_turns {info['max_turns']}")
    print("  tools:")
    for t in info["tools"]:
        fn = t["function"]
        params = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in fn["parameters"].get("properties", {}).items())
        print(f"    {fn['name']}({params}) — {fn['description']}")
    print("  rewards:")
    for r in info["rewards"]:
        role = "metric" if r["weight"] == 0 else f"weight {r['weight']:g}"
        print(f"    {r['name']} [{r['kind']}, {r['source']}, {role}] {r['doc']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``agentgym run ENV``: play episodes with a policy and print each transcript and result."""
    from agentgym.rollout import collect
    from agentgym.trajectory import save_jsonl

    _check_backend_args(args)
    kwargs = {"split": args.split, **_env_kwargs(args.env_arg)}
    if args.task_id:
        _check_task(args.env, args.task_id, kwargs)
    trajs = collect(
        args.env,
        args.policy,
        tasks=[args.task_id] * args.episodes if args.task_id else None,
        num_tasks=None if args.task_id else args.episodes,
        num_workers=args.workers,
        seed=args.seed,
        env_kwargs=kwargs,
        progress=not args.quiet,
        backend=args.backend,
        address=args.address,
    )
    for t in trajs:
        if not args.quiet:
            print(f"=== task {t.task_id} (seed {t.seed}) ===")
            print(render_transcript(t.messages))
        print(
            f"task {t.task_id}: reward {t.reward:.3f}, outcome {t.outcome_reward}, turns {t.num_turns}, "
            f"ended by {t.termination_reason}"
        )
    if args.out:
        save_jsonl(trajs, args.out)
        print(f"trajectories written to {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``agentgym eval ENV``: evaluate a policy and print the report (130 when interrupted)."""
    from agentgym.evaluation import evaluate

    _check_backend_args(args)
    if args.token and not args.server:
        raise ValueError("--token is the bearer token of --server; add --server URL")
    try:
        report = evaluate(
            args.env,
            args.policy,
            split=args.split,
            num_tasks=args.tasks,
            samples=args.samples,
            ks=args.k,
            num_workers=args.workers,
            seed=args.seed,
            env_kwargs=_env_kwargs(args.env_arg),
            out_dir=args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            backend=args.backend,
            address=args.address,
            server=args.server,
            token=args.token,
        )
    except KeyboardInterrupt:
        saved = (
            f"; the finished episodes are in {args.out}, continue with the same command and --resume"
            if args.out
            else ""
        )
        print(f"agentgym: interrupted{saved}", file=sys.stderr)
        return 130
    print(report.to_markdown())
    if args.out:
        print(f"written to {args.out} (metrics.json, summary.md, rewards.png, trajectories.jsonl)")
    return 0


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        default="thread",
        choices=["thread", "ray"],
        help="where episodes run: threads of this process, or Ray actors that own the environments (default thread)",
    )
    p.add_argument(
        "--address",
        help="Ray cluster to use with --backend ray (default: $RAY_ADDRESS, else a local cluster for this run)",
    )


def _check_backend_args(args: argparse.Namespace) -> None:
    if args.address and args.backend != "ray":
        raise ValueError("--address is the Ray cluster of --backend ray; add --backend ray")


def cmd_eval_compare(args: argparse.Namespace) -> int:
    """``agentgym eval compare A B``: compare two evaluation directories task by task."""
    from agentgym.compare import compare_runs, to_markdown, write_comparison

    result = compare_runs(args.a, args.b, alpha=args.alpha)
    print(to_markdown(result))
    print(f"written to {write_comparison(result, args.out)} (compare.md, compare.json)")
    return 0


def _eval_compare_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="agentgym eval compare",
        description="Compare two `agentgym eval --out` directories task by task "
        "(B - A), with a paired significance test (McNemar exact / sign-flip permutation test).",
    )
    p.add_argument("a", help="eval output directory of run A (the baseline)")
    p.add_argument("b", help="eval output directory of run B")
    p.add_argument(
        "--out", default="eval-compare", help="directory for compare.md and compare.json (default: eval-compare)"
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.set_defaults(fn=cmd_eval_compare, command="eval compare")
    return p


def cmd_validate(args: argparse.Namespace) -> int:
    """``agentgym tasks validate ENV``: 0 when the oracle scores 1 and doing nothing 0 on every task."""
    from agentgym.validate import validate

    report = validate(
        args.env,
        split=args.split,
        task_ids=args.task or None,
        env_kwargs=_env_kwargs(args.env_arg),
        num_workers=args.workers,
        limit=args.limit,
    )
    print(report.summary())
    return 0 if report.ok else 1


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line that says where the help is (no usage block)."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# Errors a user's input causes (unknown env, task, policy, model, bad argument value):
# reported as one line. Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    LookupError,
    OSError,
    TypeError,
    ImportError,
    gymnasium.error.Error,
)


def _one_line(e: BaseException) -> str:
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(text).split()) or type(e).__name__


def _check_env(env_id: Any) -> None:
    """An unknown environment id fails before anything is loaded, listing the registered ones."""
    if not isinstance(env_id, str):
        return
    import agentgym

    known = agentgym.list_envs()
    if (env_id if "/" in env_id else f"agentgym/{env_id}") not in known:
        raise ValueError(f"unknown environment {env_id!r}; registered: {', '.join(k.split('/', 1)[1] for k in known)}")


def _check_task(env_id: str, task_id: str, kwargs: dict[str, Any]) -> None:
    """An unknown task id fails before any episode runs (KeyError naming a few ids that exist)."""
    import agentgym

    env = agentgym.make(env_id, **kwargs)
    try:
        env.task_set[task_id]
    finally:
        env.close()


def build_parser() -> argparse.ArgumentParser:
    """The ``agentgym`` parser with every subcommand, the installed extensions' included."""
    parser = _Parser(
        prog="agentgym", description="Gymnasium environments for tool-using LLM agents, and a GRPO trainer."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list registered environments").set_defaults(fn=cmd_list)

    p = sub.add_parser("describe", help="tools, rewards, splits and task count of an environment")
    p.add_argument("env")
    p.add_argument("--json", action="store_true")
    _add_env_args(p)
    p.set_defaults(fn=cmd_describe)

    p = sub.add_parser("run", help="run episodes with a policy and print the transcripts")
    p.add_argument("env")
    p.add_argument("--policy", default="oracle", help="oracle | noop | random | hf:PATH | vllm:PATH | openai:URL#MODEL")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--task-id")
    p.add_argument("--split", default="train", choices=["train", "test", "all"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", help="write trajectories to this JSONL file")
    p.add_argument("--quiet", action="store_true", help="print only the per-episode summary")
    _add_backend_args(p)
    _add_env_args(p)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser(
        "eval",
        help="evaluate a policy on held-out tasks (pass@k, reward, turns); `eval compare A B` compares two runs",
        epilog="To compare two runs: agentgym eval compare A_DIR B_DIR [--out DIR] "
        "(see `agentgym eval compare --help`).",
    )
    p.add_argument("env")
    p.add_argument("--policy", default="oracle")
    p.add_argument("--split", default="test", choices=["train", "test", "all"])
    p.add_argument("--tasks", type=int, default=None, help="number of tasks (default: all in the split)")
    p.add_argument("--samples", type=int, default=1, help="episodes per task")
    p.add_argument("-k", type=int, action="append", default=None, help="pass@k to report (repeatable; default 1)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        help="directory for metrics.json, summary.md, rewards.png and trajectories.jsonl (written as episodes finish)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the evaluation in --out: run only unfinished and infrastructure-failed episodes",
    )
    p.add_argument("--overwrite", action="store_true", help="start over in an --out that already holds an evaluation")
    _add_backend_args(p)
    p.add_argument(
        "--server",
        metavar="URL",
        help="make the environments on this `agentgym serve` server (ENV and --env-arg are sent to it)",
    )
    p.add_argument("--token", help="bearer token of --server (default: $AGENTGYM_SERVE_TOKEN)")
    _add_env_args(p)
    p.set_defaults(fn=cmd_eval)

    tasks = sub.add_parser("tasks", help="task-set tools").add_subparsers(dest="tasks_command", required=True)
    p = tasks.add_parser("validate", help="oracle must score 1 and do-nothing 0 on every task")
    p.add_argument("env")
    p.add_argument("--split", default="all", choices=["train", "test", "all"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="check only the first N tasks")
    p.add_argument("--task", action="append", default=[], metavar="ID", help="check only this task (repeatable)")
    _add_env_args(p)
    p.set_defaults(fn=cmd_validate)

    groups = {"root": sub, "tasks": tasks}
    for module, fn, group in _EXTENSIONS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue  # that part of agentgym is not installed/built
            raise
        getattr(mod, fn)(groups[group])
    return parser


def _delegated_parser(command: str) -> argparse.ArgumentParser | None:
    """The own parser of a command an extension delegates (its module loads only when it runs)."""
    try:
        mod = importlib.import_module("agentgym.trainer.cli")
    except ModuleNotFoundError:
        return None
    if command not in getattr(mod, "DELEGATED", {}):
        return None
    parser: argparse.ArgumentParser = mod.delegated_parser(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status.

    A user error prints ``agentgym: error: ...`` (one line) and returns 2;
    ``AGENTGYM_DEBUG=1`` shows its traceback instead.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    delegated = _delegated_parser(argv[0]) if argv else None
    if delegated is not None:
        args = delegated.parse_args(argv[1:])
    else:
        parser = _eval_compare_parser() if argv[:2] == ["eval", "compare"] else build_parser()
        args = parser.parse_args(argv[2:] if argv[:2] == ["eval", "compare"] else argv)
    if getattr(args, "k", None) is None and args.command == "eval":
        args.k = [1]
    try:
        _check_env(getattr(args, "env", None))
        return int(args.fn(args) or 0)
    except USER_ERRORS as e:
        if os.environ.get("AGENTGYM_DEBUG"):
            raise
        print(f"agentgym: error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
