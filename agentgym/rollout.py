"""Rollouts: run episodes, alone or many at once in groups for GRPO."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.env import AgentEnv
from agentgym.messages import Action, answer_pending_calls
from agentgym.policies import Generation, Policy, PolicyContext, make_policy
from agentgym.registry import make
from agentgym.trajectory import Step, Trajectory

EnvSource = str | Callable[[], AgentEnv]


def run_episode(
    env: AgentEnv,
    policy: Policy,
    *,
    task_id: str | None = None,
    seed: int | None = None,
    env_id: str = "",
    group_id: str | None = None,
) -> Trajectory:
    """Play one episode of ``policy`` in ``env`` and return its trajectory.

    A policy that raises (a server down, an engine crash) ends the episode as an
    infrastructure failure (``termination_reason="policy_error"``), and so does an
    exception escaping ``env.reset``/``env.step`` (``"env_error"``: the environment broke
    its contract; model mistakes never raise), instead of raising, so one bad episode does
    not lose a whole batch. ``metadata["error"]`` says what was raised.
    """
    try:
        obs, info = env.reset(seed=seed, options={"task_id": task_id} if task_id is not None else None)
    except Exception as e:
        traj = Trajectory(
            env_id=env_id or type(env).__name__,
            task_id=str(task_id),
            seed=seed,
            group_id=group_id,
            policy=getattr(policy, "name", type(policy).__name__),
        )
        _fail(traj, "env_error", e)
        return traj
    ctx = PolicyContext(
        env=env,
        task=env.task,
        messages=env.messages,
        new_messages=obs,
        tools=info["tools"],
        rng=np.random.default_rng(seed),
    )
    traj = Trajectory(
        env_id=env_id or (env.spec.id if env.spec else type(env).__name__),
        task_id=info["task_id"],
        seed=seed,
        group_id=group_id,
        policy=getattr(policy, "name", type(policy).__name__),
        tools=info["tools"],
        metadata={"split": info.get("split")},
    )
    while True:
        try:
            out = policy.act(ctx)
        except Exception as e:
            _fail(traj, "policy_error", e)
            break
        finish = None
        action: Action
        if isinstance(out, Generation):
            action, finish = out.text, out.finish_reason
        else:
            action = out
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except Exception as e:
            _fail(traj, "env_error", e)
            traj.messages = answer_pending_calls(env.messages, "Not run: the environment failed (not your fault).")
            traj.segments = ctx.segments
            return traj
        traj.steps.append(Step(action, obs, reward, info["reward_components"], info, finish))
        if terminated or truncated:
            traj.terminated, traj.truncated = terminated, truncated
            traj.termination_reason = info.get("termination_reason")
            traj.infra_failure = bool(info.get("infra_failure"))
            traj.outcome_reward = info.get("outcome_reward")
            break
        ctx.turn += 1
        ctx.new_messages = obs
        ctx.messages = env.messages
    traj.messages = env.messages
    traj.segments = ctx.segments
    return traj


def _fail(traj: Trajectory, reason: str, e: BaseException) -> None:
    traj.truncated, traj.infra_failure, traj.termination_reason = True, True, reason
    traj.metadata["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()


@dataclass(frozen=True)
class Job:
    """One episode to run: which task, with which seed, in which GRPO group."""

    index: int
    task_id: str
    seed: int
    group_id: str


def plan_jobs(task_ids: Sequence[str], group_size: int, seed: int) -> list[Job]:
    """``group_size`` episodes per task, each with its own deterministic seed."""
    jobs: list[Job] = []
    for t, task_id in enumerate(task_ids):
        for g in range(group_size):
            jobs.append(Job(len(jobs), task_id, seed * 1_000_003 + t * 1009 + g, f"{t}:{task_id}"))
    return jobs


def select_tasks(env: AgentEnv, num_tasks: int | None, seed: int) -> list[str]:
    """``num_tasks`` task ids of ``env`` drawn without replacement (seeded); all of them when None."""
    ids = env.tasks.ids
    if num_tasks is None or num_tasks >= len(ids):
        return ids
    order = np.random.default_rng(seed).permutation(len(ids))[:num_tasks]
    return [ids[i] for i in order]


def collect(
    env: EnvSource,
    policy: Policy | str,
    *,
    tasks: Sequence[str] | None = None,
    num_tasks: int | None = None,
    group_size: int = 1,
    num_workers: int = 4,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    desc: str = "episodes",
    skip: Callable[[Job], bool] | None = None,
    on_result: Callable[[Job, Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run ``group_size`` episodes for each task, ``num_workers`` at a time, in threads.

    ``env`` is an id (``agentgym/ToolUse-v0``) or a zero-argument factory; each worker
    thread gets its own environment. Tasks default to ``num_tasks`` tasks drawn (seeded)
    from the environment's split. Results come back in job order, whatever order they
    finished in, so a run is reproducible.

    ``skip(job)`` true leaves a job out (its result is not returned: a resumed run).
    ``on_result(job, traj)`` is called in the calling thread as each episode finishes.
    On an interrupt (``KeyboardInterrupt``) jobs not yet started are cancelled and the
    environments closed before the interrupt propagates.
    """
    policy = make_policy(policy)
    env_id = env if isinstance(env, str) else ""

    def new_env() -> AgentEnv:
        return make(env, **(env_kwargs or {})) if isinstance(env, str) else env()

    local = threading.local()
    created: list[AgentEnv] = []
    lock = threading.Lock()

    def worker_env() -> AgentEnv:
        if not hasattr(local, "env"):
            local.env = new_env()
            with lock:
                created.append(local.env)
        env_of_thread: AgentEnv = local.env
        return env_of_thread

    first = worker_env()
    try:
        task_ids = list(tasks) if tasks is not None else select_tasks(first, num_tasks, seed)
        jobs = [j for j in plan_jobs(task_ids, group_size, seed) if skip is None or not skip(j)]
        results: dict[int, Trajectory] = {}

        def run(job: Job) -> tuple[Job, Trajectory]:
            return job, run_episode(
                worker_env(), policy, task_id=job.task_id, seed=job.seed, env_id=env_id, group_id=job.group_id
            )

        def done(job: Job, traj: Trajectory) -> None:
            results[job.index] = traj
            if on_result is not None:
                on_result(job, traj)
            bar.update(1)

        bar = tqdm(total=len(jobs), desc=desc, disable=not progress, dynamic_ncols=True)
        if num_workers <= 1:
            for job in jobs:
                done(*run(job))
        else:
            pool = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="agentgym-rollout")
            try:
                futures = [pool.submit(run, job) for job in jobs]
                for fut in as_completed(futures):
                    done(*fut.result())
                    bar.set_postfix(reward=f"{np.mean([r.reward for r in results.values()]):.3f}")
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # on an interrupt: only the running episodes finish
        bar.close()
        return [results[i] for i in sorted(results)]
    finally:
        for e in created:
            e.close()
