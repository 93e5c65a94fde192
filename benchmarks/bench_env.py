"""The price of the environment contract and of rollouts: agentgym against its peers, in one run.

    python benchmarks/bench_env.py [--only step|throughput|idle ...] [--episodes 1000] [--rounds 3]
        [--before REV] [--peers-venv build/bench-peers] [--out runs/bench_env]

**step** (about a minute): microseconds per ``step`` on the same calculator task for every
contender: each episode is one ``<tool_call>`` to a calculator (``a * b + c``, evaluated by the
same AST walker) and one to ``submit``, the same action strings, the same tasks in the same
order (the training split of ``agentgym/Calculator-v0``), every episode checked to score 1.

* ``agentgym``: ``agentgym.make("agentgym/Calculator-v0")``, the registered ToolUse env (its
  tools are ``inline``: no timeout thread);
* ``agentgym, timed tools``: the same env with every tool given a 30 s timeout, so each call
  hops to the env's tool thread (what every call paid before tools could be inline);
* ``agentgym @REV`` (``--before REV``): the package as it was at git revision ``REV``;
* ``skyrl-gym``: a ``BaseTextEnv`` with a ``ToolGroup`` holding the calculator, built per
  episode as SkyRL's generator does (``skyrl_gym.make`` + ``init``);
* ``GEM``: a ``gem.Env`` (``submit``) wrapped in ``ToolEnvWrapper`` with a calculator ``BaseTool``;
* ``bare gymnasium.Env``: the string work alone (find the tag, decode the JSON, evaluate, build
  a message), no validation, transcript or rewards.

The peers are installed in their own venv (``--peers-venv``, from
``benchmarks/requirements-peers.txt``; created when missing), never in the project's: each
contender runs in its own subprocess (``--worker NAME``), the rounds interleaved so machine load
hits all alike; the table shows the median over rounds, µs per step (``step`` alone) and per
episode (reset or construction plus both steps), and agentgym's cost as a multiple of each.

**throughput**: oracle episodes per minute through ``agentgym.collect`` with
``backend="thread"`` and ``backend="ray"`` (a local Ray cluster), ``--workers`` at a time, for
``agentgym/ToolUse-v0`` and ``agentgym/CodeRepair-v0`` (curated tasks, ``--sandbox`` local
(bubblewrap) or docker), after one warm-up call each (its seconds are shown: Ray starts the
``--workers`` actors on every ``collect`` call, in one local cluster started for the section).

**idle**: the share of wall time the generator (the tiny model of ``agentgym.trainer.models``,
on the CPU) is idle in trainer rollouts, ``mode="lockstep"`` vs ``mode="overlap"``
(``agentgym.trainer.rollout.rollout`` and ``RolloutStats``), on the same jobs and seeds:
CodeRepair episodes (curated tasks, ``--sandbox``) of two lengths (``--idle-turns``), so the
short ones are graded while the long ones still need the generator; and ToolUse episodes whose
every reset and step waits 0 to 2x ``--idle-latency`` seconds (per episode) without using this machine's CPU, as
environments on another host do (``RemoteEnv``, ``RayEnv`` on a cluster). On a 2-core machine the
CodeRepair case measures little: the sandboxed test runs and the model compete for the same cores.

Results go to ``--out`` as ``results.json`` and ``RESULTS.md``. No thresholds: the issue's
target (agentgym within 3x skyrl-gym's and GEM's step cost) is stated next to the table.
This file imports only the standard library at module level: the peers' venv runs it too.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import operator
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS_REQUIREMENTS = ROOT / "benchmarks" / "requirements-peers.txt"
ENV_ID = "agentgym/Calculator-v0"
TARGET = 3.0
"""The issue's bar: agentgym's step cost within this multiple of skyrl-gym's and GEM's."""

# ----- the task, for the contenders that cannot import agentgym ----------------------------------------

_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def calculate(expression: str) -> str:
    """``agentgym.envs.tooluse``'s calculator (``safe_eval`` + ``format_number``), line for line."""
    if len(expression) > 200:
        raise ValueError("expression longer than 200 characters")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and (abs(b) > 64 or abs(a) > 10**6):
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](a, b)
        raise ValueError(f"unsupported syntax: {ast.dump(node)[:60]}")

    x = ev(ast.parse(expression, mode="eval"))
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        raise ValueError("result is not a finite number")
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}" if isinstance(x, float) else str(x)


def read_call(action: str) -> dict[str, Any]:
    """The first ``<tool_call>`` JSON object of a turn (the peers' own parsers are regex-based too)."""
    match = _CALL.search(action)
    if match is None:
        raise ValueError("no <tool_call> in the action")
    call: dict[str, Any] = json.loads(match.group(1))
    return call


# ----- contenders (each runs in its own subprocess: ``--worker NAME``) ----------------------------------

Episode = Callable[[dict[str, Any]], tuple[float, float, int, float]]
"""Plays one task: (seconds in step calls, seconds for the whole episode, steps, reward)."""


def _episodes_gymnasium_style(env: Any, reset: Callable[[dict[str, Any]], Any]) -> Episode:
    """For envs with Gymnasium's ``step -> (obs, reward, terminated, truncated, info)``."""

    def play(task: dict[str, Any]) -> tuple[float, float, int, float]:
        start = time.perf_counter()
        reset(task)
        in_step, total, steps = 0.0, 0.0, 0
        for action in task["actions"]:
            t0 = time.perf_counter()
            _, reward, terminated, truncated, _ = env.step(action)
            in_step += time.perf_counter() - t0
            steps += 1
            total += float(reward)
            if terminated or truncated:
                break
        return in_step, time.perf_counter() - start, steps, total

    return play


def _agentgym(timed: bool) -> Episode:
    import dataclasses

    import agentgym
    from agentgym.envs.tooluse import ToolUseEnv

    class TimedToolUse(ToolUseEnv):
        """Calculator-v0 with a 30 s timeout on every tool: each call runs on the env's tool thread."""

        def get_tools(self) -> list[Any]:
            return [dataclasses.replace(t, inline=False, timeout=30.0) for t in super().get_tools()]

    env = TimedToolUse(kinds=("arithmetic",), max_turns=4) if timed else agentgym.make(ENV_ID)
    return _episodes_gymnasium_style(env, lambda task: env.reset(options={"task_id": task["id"]}))


def _bare() -> Episode:
    import gymnasium as gym

    class BareCalculator(gym.Env[Any, str]):
        """The string work of the task alone: no validation, transcript or rewards beyond the answer."""

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[Any, dict[str, Any]]:
            super().reset(seed=seed)
            self.task = (options or {})["task"]
            return [{"role": "user", "content": self.task["prompt"]}], {}

        def step(self, action: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
            call = read_call(action)
            if call["name"] == "submit":
                reward = float(call["arguments"]["answer"] == self.task["answer"])
                return [{"role": "tool", "content": "Answer submitted."}], reward, True, False, {}
            out = calculate(call["arguments"]["expression"])
            return [{"role": "tool", "content": out}], 0.0, False, False, {}

    env = BareCalculator()
    return _episodes_gymnasium_style(env, lambda task: env.reset(options={"task": task}))


def _skyrl() -> Episode:
    import skyrl_gym
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
    from skyrl_gym.tools.core import ToolGroup, tool

    class CalculatorToolGroup(ToolGroup):
        def __init__(self) -> None:
            super().__init__(name="CalculatorToolGroup")

        @tool
        def calculator(self, expression: str) -> str:
            return calculate(expression)

    class CalculatorEnv(BaseTextEnv):
        """SkyRL's shape of a tool env (as its SQL env): parse, ``_execute_tool``, reward when done."""

        def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
            super().__init__()
            self.answer = (extras or {})["answer"]
            self.max_turns = 4
            self.tool_group = CalculatorToolGroup()
            self.init_tool_groups([self.tool_group])
            self.chat_history: list[dict[str, str]] = []

        def step(self, action: str) -> BaseTextEnvStepOutput:
            self.turns += 1
            self.chat_history.append({"role": "assistant", "content": action})
            call = read_call(action)
            if call["name"] == "submit" or self.turns >= self.max_turns:
                reward = float(call["arguments"].get("answer") == self.answer)
                return BaseTextEnvStepOutput(observations=[], reward=reward, done=True, metadata={})
            try:
                observation = self._execute_tool(
                    self.tool_group.get_name(), call["name"], [call["arguments"]["expression"]]
                )
            except Exception as e:
                observation = str(e)
            new_obs = {"role": "user", "content": observation}
            self.chat_history.append(new_obs)
            return BaseTextEnvStepOutput(
                observations=[new_obs], reward=0.0, done=False, metadata={"tool_name": call["name"]}
            )

    skyrl_gym.register(id="bench-calculator", entry_point=CalculatorEnv)

    def play(task: dict[str, Any]) -> tuple[float, float, int, float]:
        start = time.perf_counter()
        env = skyrl_gym.make("bench-calculator", env_config={}, extras={"answer": task["answer"]})
        env.init([{"role": "user", "content": task["prompt"]}])
        in_step, total, steps = 0.0, 0.0, 0
        for action in task["actions"]:
            t0 = time.perf_counter()
            out = env.step(action)
            in_step += time.perf_counter() - t0
            steps += 1
            total += float(out["reward"])
            if out["done"]:
                break
        env.close()
        return in_step, time.perf_counter() - start, steps, total

    return play


def _gem() -> Episode:
    from gem.core import Env
    from gem.tools.base_tool import BaseTool
    from gem.tools.tool_env_wrapper import ToolEnvWrapper

    class CalculatorTool(BaseTool):
        tool_type = "calculator"

        def instruction_string(self) -> str:
            return 'Call <tool_call>{"name": "calculator", "arguments": {"expression": ...}}</tool_call>.'

        def execute_action(self, action: str) -> tuple[bool, bool, str, str]:
            try:
                call = read_call(action)
            except ValueError:
                return False, True, "", action
            if call.get("name") != "calculator":
                return False, True, "", action
            try:
                return True, False, calculate(call["arguments"]["expression"]), action
            except Exception as e:
                return True, True, str(e), action

    class SubmitEnv(Env):
        """The task: the answer is submitted by the action the tools do not take."""

        def __init__(self) -> None:
            super().__init__()
            self.task: dict[str, Any] = {}

        def reset(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
            super().reset(seed)
            return self.task["prompt"], {}

        def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
            call = read_call(action)
            reward = float(call["name"] == "submit" and call["arguments"]["answer"] == self.task["answer"])
            return "Answer submitted.", reward, True, False, {}

    base = SubmitEnv()
    env = ToolEnvWrapper(base, tools=[CalculatorTool()])

    def reset(task: dict[str, Any]) -> Any:
        base.task = task
        return env.reset()

    return _episodes_gymnasium_style(env, reset)


WORKERS: dict[str, Callable[[], Episode]] = {
    "agentgym": lambda: _agentgym(timed=False),
    "agentgym-timed": lambda: _agentgym(timed=True),
    "bare": _bare,
    "skyrl": _skyrl,
    "gem": _gem,
}


def run_worker(name: str, tasks_file: Path, episodes: int, warmup: int) -> dict[str, Any]:
    """Play ``warmup`` then ``episodes`` episodes (cycling over the tasks); the timed totals."""
    tasks = json.loads(tasks_file.read_text())
    play = WORKERS[name]()

    def cycle(n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield tasks[i % len(tasks)]

    for task in cycle(warmup):
        play(task)
    in_step = in_episode = 0.0
    steps = solved = 0
    for task in cycle(episodes):
        s, e, n, reward = play(task)
        in_step += s
        in_episode += e
        steps += n
        solved += reward == 1.0
    return {
        "step_us": in_step / steps * 1e6,
        "episode_us": in_episode / episodes * 1e6,
        "steps": steps,
        "episodes": episodes,
        "solved": solved,
    }


# ----- step section ------------------------------------------------------------------------------


def write_tasks(path: Path) -> int:
    """The contenders' shared task list: Calculator-v0's training split and its oracle turns."""
    import agentgym
    from agentgym.envs.tooluse import format_number, safe_eval

    env = agentgym.make(ENV_ID)
    rows = []
    for task in env.tasks:
        (_, args), *_ = task.solution["calls"]
        expression = args["expression"]
        if calculate(expression) != format_number(safe_eval(expression)):
            raise AssertionError(f"the benchmark's calculator differs from ToolUse's on {expression!r}")
        actions = [str(a) for a in env.oracle_turns(task)]
        rows.append({"id": task.id, "prompt": task.prompt, "answer": task.verifier["answer"], "actions": actions})
    env.close()
    path.write_text(json.dumps(rows))
    return len(rows)


def ensure_peers_venv(venv: Path) -> str | None:
    """Create ``venv`` from ``requirements-peers.txt`` when missing; None when ready, else why not."""
    python = venv / "bin" / "python"
    if python.exists():
        return None
    base = getattr(sys, "_base_executable", sys.executable)
    commands = [
        [base, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(PEERS_REQUIREMENTS)],
    ]
    print("creating the peers' venv:", " && ".join(" ".join(c) for c in commands), flush=True)
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"{' '.join(command[:4])} failed: {(done.stderr or done.stdout).strip()[-400:]}"
    return None


def extract_revision(rev: str, into: Path) -> Path:
    """The ``agentgym`` package at git revision ``rev``, in a folder to put first on ``PYTHONPATH``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "agentgym"], capture_output=True, check=True)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def step_section(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Interleaved rounds of every contender's worker; the medians per contender."""
    tasks_file = scratch / "tasks.json"
    n_tasks = write_tasks(tasks_file)
    me = [sys.executable, str(Path(__file__).resolve())]
    contenders: dict[str, tuple[list[str], dict[str, str]]] = {
        "agentgym": ([*me, "--worker", "agentgym"], {}),
        "agentgym, timed tools": ([*me, "--worker", "agentgym-timed"], {}),
    }
    if args.before:
        old = extract_revision(args.before, scratch / "before")
        contenders[f"agentgym @{args.before}"] = ([*me, "--worker", "agentgym"], {"PYTHONPATH": str(old)})
    missing: dict[str, str] = {}
    problem = ensure_peers_venv(args.peers_venv)
    if problem is None:
        peer = [str(args.peers_venv / "bin" / "python"), str(Path(__file__).resolve())]
        contenders["skyrl-gym"] = ([*peer, "--worker", "skyrl"], {})
        contenders["GEM"] = ([*peer, "--worker", "gem"], {})
    else:
        missing["skyrl-gym"] = missing["GEM"] = problem
    contenders["bare gymnasium.Env"] = ([*me, "--worker", "bare"], {})

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, (command, extra_env) in contenders.items():
            full = [*command, "--tasks", str(tasks_file), "--episodes", str(args.episodes)]
            env = {**os.environ, "PYTHONWARNINGS": "ignore", **extra_env}
            done = subprocess.run(full, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                missing[name] = f"worker failed: {done.stderr.strip()[-400:]}"
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["solved"] != result["episodes"]:
                raise RuntimeError(f"{name}: {result['solved']}/{result['episodes']} episodes scored 1")
            runs[name].append(result)
            print(f"round {r + 1}/{args.rounds} {name}: {result['step_us']:.1f} µs/step", flush=True)
    rows = []
    for name, results in runs.items():
        if not results:
            continue
        rows.append(
            {
                "contender": name,
                "step_us": statistics.median(x["step_us"] for x in results),
                "episode_us": statistics.median(x["episode_us"] for x in results),
                "rounds": len(results),
            }
        )
    ours = next((r for r in rows if r["contender"] == "agentgym"), None)
    for row in rows:
        row["agentgym_x_step"] = ours["step_us"] / row["step_us"] if ours else None
        row["agentgym_x_episode"] = ours["episode_us"] / row["episode_us"] if ours else None
    return {
        "tasks": n_tasks,
        "episodes_per_round": args.episodes,
        "rounds": args.rounds,
        "rows": rows,
        "not_available": {k: v for k, v in missing.items() if k not in {r["contender"] for r in rows}},
    }


def step_table(result: dict[str, Any]) -> tuple[Any, list[str]]:
    from rich.table import Table

    table = Table(
        title=f"{ENV_ID}: µs per env step, oracle calculator + submit, {result['tasks']} tasks, "
        f"{result['episodes_per_round']} episodes x {result['rounds']} rounds (median)"
    )
    cols = ("contender", "µs/step", "µs/episode", "agentgym ÷ this (step)", "agentgym ÷ this (episode)")
    for col in cols:
        table.add_column(col, justify="left" if col == "contender" else "right")
    md = [f"| {' | '.join(cols)} |", "|---|---:|---:|---:|---:|"]
    for row in result["rows"]:
        cells = (
            row["contender"],
            f"{row['step_us']:.1f}",
            f"{row['episode_us']:.1f}",
            f"{row['agentgym_x_step']:.2f}x" if row["agentgym_x_step"] else "—",
            f"{row['agentgym_x_episode']:.2f}x" if row["agentgym_x_episode"] else "—",
        )
        table.add_row(*cells)
        md.append(f"| {' | '.join(cells)} |")
    for name, why in result["not_available"].items():
        table.add_row(name, "not available", why[:80], "", "")
        md.append(f"| {name} | not available: {why} | | | |")
    return table, md


# ----- throughput section --------------------------------------------------------------------------


def throughput_section(args: argparse.Namespace) -> dict[str, Any]:
    """Oracle episodes per minute through ``collect``, thread vs Ray backend."""
    import contextlib

    import agentgym

    rows: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    envs: list[tuple[str, dict[str, Any], list[str] | None]] = [("agentgym/ToolUse-v0", {}, None)]
    sandbox_problem = _sandbox_problem(args.sandbox)
    if sandbox_problem is None:
        coding = {"source": "curated", "sandbox": args.sandbox, "split": "all"}
        probe = agentgym.make("agentgym/CodeRepair-v0", **coding)
        envs.append(("agentgym/CodeRepair-v0", coding, probe.unwrapped.tasks.ids[: args.coding_tasks]))  # type: ignore[attr-defined]
        probe.close()
    else:
        unavailable["agentgym/CodeRepair-v0"] = sandbox_problem
    cluster: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    backends = ["thread"]
    try:
        from agentgym.distributed import ray_init

        cluster = ray_init()  # one local cluster (loopback) for every Ray run; actors start per collect call
        backends.append("ray")
    except ImportError as e:
        unavailable["ray"] = f"not available: {e}"
    with cluster:
        for env_id, env_kwargs, task_ids in envs:
            selection: dict[str, Any] = {"tasks": task_ids} if task_ids else {"num_tasks": args.tooluse_episodes}
            warm: dict[str, Any] = {"tasks": task_ids[: args.workers]} if task_ids else {"num_tasks": args.workers}
            for backend in backends:
                kwargs: dict[str, Any] = {
                    "num_workers": args.workers,
                    "env_kwargs": env_kwargs,
                    "progress": False,
                    "backend": backend,
                }
                try:
                    start = time.perf_counter()
                    agentgym.collect(env_id, "oracle", **warm, **kwargs)  # imports, sandbox image, Ray actors
                    first_call = time.perf_counter() - start
                    start = time.perf_counter()
                    trajs = agentgym.collect(env_id, "oracle", **selection, **kwargs)
                    elapsed = time.perf_counter() - start
                except Exception as e:  # one backend failing must not hide the others' numbers
                    unavailable[f"{env_id} ({backend})"] = f"{type(e).__name__}: {e}"[:300]
                    continue
                rows.append(
                    {
                        "env": env_id,
                        "backend": backend,
                        "workers": args.workers,
                        "episodes": len(trajs),
                        "seconds": elapsed,
                        "episodes_per_min": len(trajs) / elapsed * 60.0,
                        "warmup_call_s": first_call,
                        "solved": sum(t.outcome_reward == 1.0 for t in trajs),
                    }
                )
                print(f"{env_id} {backend}: {rows[-1]['episodes_per_min']:.0f} episodes/min", flush=True)
    return {"rows": rows, "not_available": unavailable}


def _sandbox_problem(sandbox: str) -> str | None:
    import shutil

    if sandbox == "docker":
        from agentgym.testing import docker_problem

        return docker_problem()
    if shutil.which("bwrap") is None or not os.path.exists("/usr/bin/python3"):
        return "LocalSandbox needs bubblewrap and /usr/bin/python3 (scripts/setup-system.sh)"
    return None


def throughput_table(result: dict[str, Any]) -> tuple[Any, list[str]]:
    from rich.table import Table

    table = Table(title="Oracle rollouts through agentgym.collect: episodes per minute")
    cols = ("env", "backend", "workers", "episodes", "seconds", "episodes/min", "solved", "warm-up call s")
    for col in cols:
        table.add_column(col, justify="left" if col in ("env", "backend") else "right")
    md = [f"| {' | '.join(cols)} |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        cells = (
            r["env"],
            r["backend"],
            str(r["workers"]),
            str(r["episodes"]),
            f"{r['seconds']:.1f}",
            f"{r['episodes_per_min']:.0f}",
            f"{r['solved']}/{r['episodes']}",
            f"{r['warmup_call_s']:.1f}",
        )
        table.add_row(*cells)
        md.append(f"| {' | '.join(cells)} |")
    for name, why in result["not_available"].items():
        table.add_row(name, "not available", why[:90], "", "", "", "", "")
        md.append(f"| {name} | not available: {why} | | | | | | |")
    return table, md


# ----- idle section ---------------------------------------------------------------------------------


def idle_section(args: argparse.Namespace) -> dict[str, Any]:
    """Generator idle share of trainer rollouts, lockstep vs overlap, same jobs and seeds."""
    try:
        from agentgym.trainer import rollout as trainer_rollout
    except ImportError as e:
        return {"rows": [], "not_available": f"agentgym.trainer cannot be imported ({e})"}
    if not hasattr(trainer_rollout, "RolloutStats") or "mode" not in _parameters(trainer_rollout.rollout):
        return {"rows": [], "not_available": "agentgym.trainer.rollout has no mode= / RolloutStats in this checkout"}
    import agentgym
    from agentgym.rollout import plan_jobs
    from agentgym.trainer.engines.hf import HFEngine
    from agentgym.trainer.models import ensure_tiny, load_model
    from agentgym.trainer.tokens import ChatTokens

    model, tokenizer = load_model(str(ensure_tiny()))
    engine, chat = HFEngine(model, tokenizer), ChatTokens(tokenizer)
    # CodeRepair: the sandbox set up in reset and the grader's test run when an episode ends are
    # the env work. Episodes of different lengths (``--idle-turns``, cycled over the jobs), as a
    # real batch ends at different turns: the short ones are graded while the long ones still
    # need the generator. Without a sandbox, ToolUse (almost no env work) stands in.
    cases: list[tuple[str, str, dict[str, Any], float]] = []
    if (problem := _sandbox_problem(args.sandbox)) is not None:
        print(f"idle: CodeRepair unavailable ({problem}); ToolUse instead", flush=True)
        cases.append(("agentgym/ToolUse-v0", "agentgym/ToolUse-v0", {}, 0.0))
    else:
        coding = {"source": "curated", "sandbox": args.sandbox, "split": "all"}
        cases.append(("agentgym/CodeRepair-v0", "agentgym/CodeRepair-v0", coding, 0.0))
    if args.idle_latency > 0:
        top = args.idle_latency * max(_SPREAD)
        label = f"agentgym/ToolUse-v0, env waits 0-{top:g} s"
        cases.append((label, "agentgym/ToolUse-v0", {}, args.idle_latency))
    limits = trainer_rollout.RolloutLimits(max_turn_tokens=32, max_total_tokens=8192)
    rows = []
    for label, env_id, env_kwargs, latency in cases:
        probe = agentgym.make(env_id, **env_kwargs)
        task_ids = probe.unwrapped.tasks.ids[: args.idle_tasks]  # type: ignore[attr-defined]
        probe.close()
        jobs = plan_jobs(task_ids, args.idle_group, seed=0)
        for mode in ("warm-up", "lockstep", "overlap"):  # the warm-up pays torch's and the sandbox's first calls
            turns = [args.idle_turns[i % len(args.idle_turns)] for i in range(len(jobs))]
            envs = [
                _Waiting(agentgym.make(env_id, **env_kwargs, max_turns=t), latency * _SPREAD[i % len(_SPREAD)])
                for i, t in enumerate(turns)
            ]
            stats = trainer_rollout.RolloutStats()
            try:
                trajs = trainer_rollout.rollout(
                    envs[:2] if mode == "warm-up" else envs,
                    jobs[:2] if mode == "warm-up" else jobs,
                    engine,
                    chat,
                    limits,
                    seed=0,
                    env_id=env_id,
                    env_workers=args.workers if latency == 0 else len(jobs),
                    stats=stats,
                    mode="overlap" if mode == "warm-up" else mode,
                )
            finally:
                for env in envs:
                    env.close()
            if mode == "warm-up":
                continue
            rows.append(
                {
                    "mode": mode,
                    "env": label,
                    "episodes": len(trajs),
                    "max_turns": args.idle_turns,
                    "env_workers": args.workers if latency == 0 else len(jobs),
                    "wall_s": stats.wall_s,
                    "generation_s": stats.generation_s,
                    "generate_calls": stats.generate_calls,
                    "idle_share": stats.generator_idle_share,
                }
            )
            idle = stats.generator_idle_share
            print(f"{label} {mode}: generator idle {idle:.1%} of {stats.wall_s:.1f} s", flush=True)
    return {"rows": rows, "not_available": None}


_SPREAD = (0.0, 0.5, 1.0, 2.0)
"""Each remote-like episode's wait, in units of ``--idle-latency``: hosts and test runs differ."""


class _Waiting:
    """An environment on another host, as the generator sees it: each call waits ``latency`` s, off this CPU."""

    def __init__(self, env: Any, latency: float):
        self.env, self.latency = env, latency

    def _wait(self) -> None:
        if self.latency > 0:
            time.sleep(self.latency)

    def reset(self, **kwargs: Any) -> Any:
        self._wait()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        self._wait()
        return self.env.step(action)

    def finish(self, reason: str = "stopped") -> Any:
        return self.env.finish(reason)

    def close(self) -> None:
        self.env.close()


def _parameters(fn: Callable[..., Any]) -> list[str]:
    import inspect

    return list(inspect.signature(fn).parameters)


def idle_table(result: dict[str, Any]) -> tuple[Any, list[str]]:
    from rich.table import Table

    table = Table(title="Trainer rollouts with the tiny model (CPU): share of wall time the generator is idle")
    cols = ("mode", "env", "episodes", "max_turns", "env workers", "wall s", "generating s", "generate calls", "idle")
    for col in cols:
        table.add_column(col, justify="left" if col in ("mode", "env") else "right")
    md = [f"| {' | '.join(cols)} |", "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        cells = (
            r["mode"],
            r["env"],
            str(r["episodes"]),
            " / ".join(map(str, r["max_turns"])),
            str(r["env_workers"]),
            f"{r['wall_s']:.1f}",
            f"{r['generation_s']:.1f}",
            str(r["generate_calls"]),
            f"{r['idle_share']:.1%}",
        )
        table.add_row(*cells)
        md.append(f"| {' | '.join(cells)} |")
    if result["not_available"]:
        table.add_row("not available", result["not_available"][:100], "", "", "", "", "", "", "")
        md.append(f"not available: {result['not_available']}")
    return table, md


# ----- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print their tables and write ``results.json`` and ``RESULTS.md``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=["step", "throughput", "idle"], default=["step", "throughput", "idle"])
    p.add_argument("--episodes", type=int, default=1000, help="step: timed episodes per contender and round")
    p.add_argument("--rounds", type=int, default=3, help="step: rounds (each contender once per round)")
    p.add_argument("--before", default="", help="step: also time agentgym as it was at this git revision")
    p.add_argument("--peers-venv", type=Path, default=ROOT / "build" / "bench-peers")
    p.add_argument("--workers", type=int, default=2, help="throughput, idle: episodes at a time")
    p.add_argument("--tooluse-episodes", type=int, default=400, help="throughput: ToolUse episodes per run")
    p.add_argument("--coding-tasks", type=int, default=6, help="throughput: CodeRepair episodes per run")
    p.add_argument("--sandbox", default="local", choices=["local", "docker"], help="CodeRepair's sandbox")
    p.add_argument("--idle-tasks", type=int, default=4, help="idle: tasks per rollout")
    p.add_argument("--idle-group", type=int, default=2, help="idle: episodes per task")
    p.add_argument("--idle-turns", type=int, nargs="+", default=[1, 4], help="idle: max_turns, cycled over episodes")
    p.add_argument(
        "--idle-latency", type=float, default=0.2, help="idle: remote-like case, steps wait 0-2x this many s (0: off)"
    )
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_env")
    # Worker mode: one contender, in whichever venv runs this file; prints one JSON line.
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--tasks", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=200, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.tasks, args.episodes, args.warmup)))
        return 0

    from rich.console import Console

    console = Console(width=160)
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "git": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    md = [f"# bench_env ({results['date']}, {results['machine']}, git {results['git']})", ""]
    with tempfile.TemporaryDirectory(prefix="agentgym-bench-env-") as tmp:
        sections: list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], tuple[Any, list[str]]]]] = [
            ("step", lambda: step_section(args, Path(tmp)), step_table),
            ("throughput", lambda: throughput_section(args), throughput_table),
            ("idle", lambda: idle_section(args), idle_table),
        ]
        for name, run, render in sections:
            if name not in args.only:
                continue
            results[name] = run()
            table, lines = render(results[name])
            console.print(table)
            md += [f"## {name}", "", *lines, ""]
    if "step" in results:
        verdict = _verdict(results["step"])
        console.print(verdict)
        md += [verdict, ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "RESULTS.md").write_text("\n".join(md))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'}")
    return 0


def _verdict(step: dict[str, Any]) -> str:
    rows = {r["contender"]: r for r in step["rows"]}
    parts = []
    for peer in ("skyrl-gym", "GEM"):
        if peer in rows and "agentgym" in rows:
            x = rows[peer]["agentgym_x_step"]
            parts.append(f"{x:.2f}x {peer}'s ({'within' if x <= TARGET else 'OVER'} {TARGET:g}x)")
    return f"agentgym's step cost is {', '.join(parts)}." if parts else "no peer measured: no verdict."


if __name__ == "__main__":
    sys.exit(main())
