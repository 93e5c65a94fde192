"""Env steps per second: ToolUse-v0 with the oracle policy vs a bare Gymnasium env.

The baseline is a minimal ``gymnasium.Env`` that does the same string work per step
(find the tool-call tag, json-decode it, compute the answer, build a tool message),
without agentgym's parsing, schema validation, rubric and bookkeeping. The ratio is
the price of the contract. Run: ``python benchmarks/bench_env.py [--episodes N]``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
from rich.console import Console
from rich.table import Table

import agentgym
from agentgym.envs.tooluse import format_number, safe_eval


class BareEnv(gym.Env):
    """Same string work as ToolUse's calculator + submit, nothing else."""

    def __init__(self, tasks: list):
        self.tasks = tasks
        self.i = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.task = self.tasks[self.i % len(self.tasks)]
        self.i += 1
        return [{"role": "user", "content": self.task.prompt}], {}

    def step(self, action: str):
        body = action[action.index("<tool_call>") + 11 : action.index("</tool_call>")]
        call = json.loads(body)
        if call["name"] == "submit":
            reward = float(call["arguments"]["answer"] == self.task.verifier["answer"])
            return [{"role": "tool", "content": "Answer submitted."}], reward, True, False, {}
        out = format_number(safe_eval(call["arguments"].get("expression", "0")))
        return [{"role": "tool", "content": out}], 0.0, False, False, {}


def run_episodes(make_env, n: int, oracle) -> int:
    env = make_env()
    steps = 0
    for k in range(n):
        env.reset(seed=k)
        for action in oracle(env):
            steps += 1
            _, _, term, trunc, _ = env.step(action)
            if term or trunc:
                break
    env.close()
    return steps


def measure(make_env, oracle, episodes: int, workers: int) -> float:
    start = time.perf_counter()
    if workers == 1:
        steps = run_episodes(make_env, episodes, oracle)
    else:
        with ThreadPoolExecutor(workers) as pool:
            steps = sum(pool.map(lambda _: run_episodes(make_env, episodes // workers, oracle), range(workers)))
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=2000)
    args = parser.parse_args()
    env_id = "agentgym/Calculator-v0"
    probe = agentgym.make(env_id)
    tasks = list(probe.tasks)
    probe.close()
    agent_oracle = lambda env: env.oracle_turns(env.task)  # noqa: E731
    bare_oracle = lambda env: [  # noqa: E731
        agentgym.format_tool_call("calculator", env.task.solution["calls"][0][1]),
        agentgym.format_tool_call("submit", {"answer": env.task.solution["answer"]}),
    ]
    rows = []
    for workers in (1, 2, 4):
        bare = measure(lambda: BareEnv(tasks), bare_oracle, args.episodes, workers)
        ours = measure(lambda: agentgym.make(env_id), agent_oracle, args.episodes, workers)
        rows.append((workers, bare, ours))
    # collect() end to end (threads, trajectories, progress bar off), oracle policy.
    start = time.perf_counter()
    trajs = agentgym.collect(
        env_id,
        "oracle",
        num_tasks=len(tasks),
        group_size=max(1, args.episodes // len(tasks)),
        num_workers=2,
        progress=False,
    )
    collect_rate = sum(t.num_turns for t in trajs) / (time.perf_counter() - start)

    table = Table(title=f"{env_id}, oracle policy: env steps per second ({args.episodes} episodes)")
    for col in ("threads", "bare gymnasium env (baseline)", "agentgym AgentEnv", "ratio"):
        table.add_column(col, justify="right")
    for workers, bare, ours in rows:
        table.add_row(str(workers), f"{bare:,.0f}", f"{ours:,.0f}", f"{ours / bare:.2f}x")
    table.add_row("collect(), 2", "—", f"{collect_rate:,.0f}", "—")
    Console().print(table)


if __name__ == "__main__":
    main()
