"""Terminal-v0 latency per backend: one shell command through each layer, episode resets, full episodes.

    python benchmarks/bench_terminal.py [--backends local docker] [--n-local 200] [--n-docker 100]
        [--tasks dedupe-lines find-commit] [--resets 10] [--episodes 5] [--out runs/bench_terminal.json]

**Command latency.** ``true``, and ``echo hi`` (whose output is checked), through four layers,
each one a baseline for the next: a bare host ``subprocess.run(["bash", "-c", cmd])`` (the
floor); ``sandbox.exec(["bash", "-c", cmd])`` on the episode's own sandbox; a
:class:`~agentgym.sandboxes.ShellSession` on that sandbox (what state persistence costs); and
``env.step(format_tool_call("run", {"command": cmd}))`` on a started episode (parsing, the tool,
the rubric's bookkeeping). The layers alternate in rounds (a fresh episode each round), so
machine load hits them alike; the ratios env/sandbox and env/subprocess are of medians.

**Episodes.** ``env.reset(options={"task_id": ...})`` back to back (the env's default warm pool
of one sandbox, so a reset may wait for the pool's refill), for a task whose Dockerfile only
copies files and one whose ``RUN`` steps build a git repository; and a full episode: reset, the
task's reference solution as one ``run``, and ``submit`` with the verifier in a fresh sandbox
(its reward must be 1).

The Docker backend is left out, with the reason printed, when its engine cannot be reached.
No pass/fail thresholds: the numbers and the machine they came from go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import agentgym
from agentgym.envs.terminal.env import TerminalEnv
from agentgym.parsing import format_tool_call
from agentgym.sandboxes import SandboxError, ShellSession

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"true": "", "echo hi": "hi\n"}
"""The command and the stdout it must print."""
LAYERS = ("subprocess", "sandbox.exec", "ShellSession.run", "env.step(run)")
LAYER_NAMES = {
    "subprocess": 'host subprocess.run(["bash","-c",cmd]) (floor)',
    "sandbox.exec": 'sandbox.exec(["bash","-c",cmd])',
    "ShellSession.run": "ShellSession.run(cmd)",
    "env.step(run)": 'env.step(run {"command": cmd})',
}


def stats(xs: list[float]) -> dict[str, Any]:
    """Median and p90 (nearest rank) in milliseconds."""
    s = sorted(xs)
    return {
        "n": len(s),
        "median_ms": statistics.median(s) * 1000,
        "p90_ms": s[min(len(s) - 1, max(0, -(-9 * len(s) // 10) - 1))] * 1000,
    }


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def layer_calls(env: TerminalEnv, shell: ShellSession) -> dict[str, Callable[[str], str]]:
    """Each layer as ``cmd -> the stdout it saw`` (raising when the command failed)."""

    def host(cmd: str) -> str:
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True).stdout

    def sandbox(cmd: str) -> str:
        result = env.sandbox.exec(["bash", "-c", cmd])
        if not result.ok:
            raise RuntimeError(f"sandbox.exec({cmd!r}) failed: {result}")
        return result.stdout

    def session(cmd: str) -> str:
        result = shell.run(cmd)
        if not result.ok:
            raise RuntimeError(f"ShellSession.run({cmd!r}) failed: {result}")
        return result.stdout

    def step(cmd: str) -> str:
        obs, _, terminated, truncated, _ = env.step(format_tool_call("run", {"command": cmd}))
        content = obs[-1]["content"]
        if terminated or truncated or not content.endswith("[exit code 0]"):
            raise RuntimeError(f"env.step(run {cmd!r}) ended the episode or failed: {content!r}")
        return str(content.removesuffix("[exit code 0]"))

    return {"subprocess": host, "sandbox.exec": sandbox, "ShellSession.run": session, "env.step(run)": step}


def command_latency(env: TerminalEnv, task_id: str, n: int, rounds: int) -> dict[str, Any]:
    """Per command and layer: median/p90 over ``n`` runs, interleaved in ``rounds`` (a fresh episode each)."""
    times: dict[str, dict[str, list[float]]] = {cmd: {layer: [] for layer in LAYERS} for cmd in COMMANDS}
    per_round = max(1, n // rounds)
    for _ in range(max(1, min(rounds, n))):
        env.reset(options={"task_id": task_id})
        shell = ShellSession(env.sandbox, cwd=env.task.setup["workdir"])
        calls = layer_calls(env, shell)
        for cmd, expected in COMMANDS.items():
            for layer, call in calls.items():
                call(cmd)  # warm: the first call after a reset pays for page faults and caches
                for _ in range(per_round):
                    seconds, out = timed(call, cmd)
                    if out != expected:
                        raise RuntimeError(f"{layer} ran {cmd!r} and printed {out!r}, not {expected!r}")
                    times[cmd][layer].append(seconds)
    result: dict[str, Any] = {}
    for cmd, by_layer in times.items():
        medians = {layer: statistics.median(xs) for layer, xs in by_layer.items()}
        result[cmd] = {
            "layers": {layer: stats(xs) for layer, xs in by_layer.items()},
            "ratios": {
                "env/sandbox": medians["env.step(run)"] / medians["sandbox.exec"],
                "env/subprocess": medians["env.step(run)"] / medians["subprocess"],
                "shell/sandbox": medians["ShellSession.run"] / medians["sandbox.exec"],
            },
        }
    return result


def resets(env: TerminalEnv, task_ids: list[str], m: int) -> dict[str, Any]:
    """``env.reset`` of each task ``m`` times, the tasks alternating."""
    for task_id in task_ids:  # warm: a Docker image built on first use, the pools started
        env.reset(options={"task_id": task_id})
    times: dict[str, list[float]] = {t: [] for t in task_ids}
    for _ in range(m):
        for task_id in task_ids:
            times[task_id].append(timed(env.reset, options={"task_id": task_id})[0])
    return {t: stats(xs) for t, xs in times.items()}


def episodes(env: TerminalEnv, task_ids: list[str], k: int) -> dict[str, Any]:
    """Reset + the reference solution as one ``run`` + ``submit`` (verified), ``k`` times per task."""
    parts: dict[str, dict[str, list[float]]] = {
        t: {"total": [], "reset": [], "run": [], "submit": []} for t in task_ids
    }
    for i in range(k + 1):  # the first round warms up and is not counted
        for task_id in task_ids:
            t_reset, _ = timed(env.reset, options={"task_id": task_id})
            run, submit = env.oracle_turns(env.task)
            t_run, (_, _, terminated, _, _) = timed(env.step, run)
            if terminated:
                raise RuntimeError(f"{task_id}: the episode ended on the solution's run")
            t_submit, (_, reward, terminated, _, info) = timed(env.step, submit)
            if not terminated or reward != 1.0:
                raise RuntimeError(f"{task_id}: the reference solution scored {reward}: {info.get('verifier')}")
            if i:
                for name, t in (("reset", t_reset), ("run", t_run), ("submit", t_submit)):
                    parts[task_id][name].append(t)
                parts[task_id]["total"].append(t_reset + t_run + t_submit)
    return {t: {name: stats(xs) for name, xs in p.items()} for t, p in parts.items()}


def docker_unreachable() -> str | None:
    """Why the Docker backend cannot run here (None when its engine answers)."""
    from agentgym.sandboxes.docker import docker_client

    try:
        docker_client()
    except SandboxError as e:
        return str(e)
    return None


def _version(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine(backends: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "agentgym": agentgym.__version__,
        "git_commit": _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "bubblewrap": _version(["bwrap", "--version"]),
        "load_average_1m": os.getloadavg()[0],
    }
    if "docker" in backends:
        from agentgym.sandboxes.docker import docker_client

        version = docker_client().version()
        info["docker_engine"] = version.get("Version")
        info["docker_api"] = version.get("ApiVersion")
    return info


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.n_local if backend == "local" else args.n_docker
    # Enough turns for a round of command runs on one episode; the tasks' own time budget stays.
    max_turns = 2 * len(COMMANDS) * (max(1, n // args.rounds) + 1) + 5
    env = TerminalEnv(sandbox=backend, split="all", max_turns=max_turns)
    try:
        missing = [t for t in args.tasks if t not in env.task_set.ids]
        if missing:
            raise SystemExit(f"{backend}: tasks not available: {missing} ({env.unusable or 'unknown ids'})")
        return {
            "pool_size": env.pool_size,
            "commands": command_latency(env, args.tasks[0], n, args.rounds),
            "resets": resets(env, args.tasks, args.resets),
            "episodes": episodes(env, args.tasks, args.episodes),
        }
    finally:
        env.close()


def print_table(results: dict[str, Any], skipped: dict[str, str], meta: dict[str, Any]) -> None:
    table = Table(
        title="agentgym/Terminal-v0 latency per backend (ms)",
        caption=(
            f"{meta['cpu_count']} CPUs, load average {meta['load_average_1m']:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after; layers interleaved in rounds; ratios are of medians"
        ),
    )
    for col in ("backend", "measure", "what", "n", "median ms", "p90 ms", "note"):
        table.add_column(col, justify="right" if col in ("n", "median ms", "p90 ms") else "left")

    def row(backend: str, measure: str, what: str, s: dict[str, Any], note: str = "") -> None:
        table.add_row(backend, measure, what, str(s["n"]), f"{s['median_ms']:.2f}", f"{s['p90_ms']:.2f}", note)

    for backend, res in results.items():
        for cmd, by in res["commands"].items():
            r = by["ratios"]
            notes = {
                "ShellSession.run": f"{r['shell/sandbox']:.2f}x sandbox",
                "env.step(run)": f"{r['env/sandbox']:.2f}x sandbox, {r['env/subprocess']:.1f}x subprocess",
            }
            for layer in LAYERS:
                row(backend, f"cmd `{cmd}`", LAYER_NAMES[layer], by["layers"][layer], notes.get(layer, ""))
        for task_id, s in res["resets"].items():
            row(backend, "reset", f"env.reset {task_id}", s, f"pool of {res['pool_size']}, back to back")
        for task_id, p in res["episodes"].items():
            note = (
                f"reset {p['reset']['median_ms']:.0f} + run {p['run']['median_ms']:.0f} "
                f"+ submit/verify {p['submit']['median_ms']:.0f}"
            )
            row(backend, "episode", f"reset+solve+submit {task_id}", p["total"], note)
        table.add_section()
    for backend, reason in skipped.items():
        table.add_row(backend, "skipped", reason, "", "", "", "")
    Console(width=170).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", choices=["local", "docker"], default=["local", "docker"])
    parser.add_argument("--n-local", type=int, default=200, help="runs of each command per layer, local backend")
    parser.add_argument("--n-docker", type=int, default=100, help="runs of each command per layer, docker backend")
    parser.add_argument("--rounds", type=int, default=10, help="rounds the layers alternate in (a fresh episode each)")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["dedupe-lines", "find-commit"],
        help="built-in task ids for resets and episodes (the first also for command latency)",
    )
    parser.add_argument("--resets", type=int, default=10, help="timed resets per task")
    parser.add_argument("--episodes", type=int, default=5, help="timed full episodes per task (after one warm-up)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_terminal.json"))
    args = parser.parse_args()

    skipped: dict[str, str] = {}
    if "docker" in args.backends and (reason := docker_unreachable()):
        skipped["docker"] = reason
        print(f"docker backend skipped: {reason}", file=sys.stderr)
    backends = [b for b in args.backends if b not in skipped]
    meta = machine(backends)
    started = time.perf_counter()
    results = {backend: bench_backend(backend, args) for backend in backends}
    out = {
        "benchmark": "bench_terminal",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - started,
        "machine": {**meta, "load_average_1m_after": os.getloadavg()[0]},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "backends": results,
        "skipped": skipped,
    }
    print_table(results, skipped, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
