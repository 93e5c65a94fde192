"""Rollouts: run episodes, alone or many at once in groups for GRPO."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal, cast

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.env import AgentEnv
from agentgym.messages import Action, Message
from agentgym.policies import Generation, Policy, PolicyContext, make_policy
from agentgym.registry import make
from agentgym.tasks import Task
from agentgym.trajectory import Step, Trajectory

AnyEnvSource = str | Callable[[], gym.Env[Any, Any]]
"""An environment id (``agentgym/ToolUse-v0``) or a zero-argument factory of any ``gymnasium.Env``
that keeps agentgym's contract (a ``RemoteEnv``, a ``RayEnv``): what rollouts and evaluation take."""
EnvSource = str | Callable[[], AgentEnv]
"""An environment id or a zero-argument factory of a local ``AgentEnv`` (for code that needs its attributes)."""


def episode_task(env: Any) -> Task | None:
    """The current episode's task where the environment exposes one (a local ``AgentEnv``), else None.

    The one place rollouts look past the Gymnasium API, for policies that need the task
    (the oracle); a remote environment has none, and rollouts work without it.
    """
    try:
        task = getattr(env, "task", None)
    except RuntimeError:  # an AgentEnv between episodes
        return None
    return task if isinstance(task, Task) else None


def env_name(env: Any) -> str:
    """A name for trajectories: ``env.env_id`` (remote and Ray envs), the Gymnasium spec's id, or the class name."""
    env_id = getattr(env, "env_id", None)
    if isinstance(env_id, str) and env_id:
        return env_id
    spec = getattr(env, "spec", None)
    return str(spec.id) if spec is not None else type(env).__name__


def run_episode(
    env: gym.Env[Any, Any],
    policy: Policy,
    *,
    task_id: str | None = None,
    seed: int | None = None,
    env_id: str = "",
    group_id: str | None = None,
) -> Trajectory:
    """Play one episode of ``policy`` in ``env`` and return its trajectory.

    Only the Gymnasium API is used (``reset``/``step`` and their ``info``), so any
    environment that keeps agentgym's contract works, a :class:`~agentgym.server.RemoteEnv`
    or a Ray one included: the transcript is reset's observation, then per step
    ``info["assistant_message"]`` and the step's observation. ``env_id`` names the
    environment in the trajectory (default: :func:`env_name`). A policy with a ``tool_format``
    (the call format its model was shown, e.g. ``hf:``) asks the env for it in ``reset``'s options.

    A policy that raises (a server down, an engine crash) ends the episode as an
    infrastructure failure (``termination_reason="policy_error"``), and so does an
    exception escaping ``env.reset``/``env.step`` (``"env_error"``: the environment broke
    its contract; model mistakes never raise), instead of raising, so one bad episode does
    not lose a whole batch. ``metadata["error"]`` says what was raised; the transcript then
    ends with the last turn the environment completed.
    """
    name = getattr(policy, "name", type(policy).__name__)
    options: dict[str, Any] = {}
    if task_id is not None:
        options["task_id"] = task_id
    if getattr(policy, "tool_format", None):
        options["tool_format"] = policy.tool_format  # type: ignore[attr-defined]  # optional on Policy
    try:
        obs, info = env.reset(seed=seed, options=options or None)
    except Exception as e:
        traj = Trajectory(
            env_id=env_id or env_name(env), task_id=str(task_id), seed=seed, group_id=group_id, policy=name
        )
        _fail(traj, "env_error", e)
        return traj
    messages: list[Message] = list(obs)
    ctx = PolicyContext(
        env=env,
        task=episode_task(env),
        messages=list(messages),
        new_messages=obs,
        tools=info["tools"],
        rng=np.random.default_rng(seed),
    )
    traj = Trajectory(
        env_id=env_id or env_name(env),
        task_id=info["task_id"],
        seed=seed,
        group_id=group_id,
        policy=name,
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
            said = info.get("assistant_message")
            if not isinstance(said, dict):
                raise ValueError(
                    f"{type(env).__name__}.step() returned no info['assistant_message'] (the message it recorded "
                    f"for the action); an agentgym environment returns it on every step"
                )
        except Exception as e:
            _fail(traj, "env_error", e)
            break
        messages += [cast(Message, said), *obs]
        traj.steps.append(Step(action, obs, float(reward), info["reward_components"], info, finish))
        if terminated or truncated:
            traj.terminated, traj.truncated = terminated, truncated
            traj.termination_reason = info.get("termination_reason")
            traj.infra_failure = bool(info.get("infra_failure"))
            traj.outcome_reward = info.get("outcome_reward")
            break
        ctx.turn += 1
        ctx.new_messages = obs
        ctx.messages = list(messages)
    traj.messages = messages
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


def task_ids_of(env: Any) -> list[str]:
    """The ids of the tasks ``env`` draws from (its split): ``env.tasks.ids`` or ``env.task_ids``.

    Raises ValueError for an environment that lists neither (pass the task ids yourself).
    """
    tasks = getattr(env, "tasks", None)
    ids = getattr(tasks, "ids", None) if tasks is not None else getattr(env, "task_ids", None)
    if callable(ids):
        ids = ids()
    if not isinstance(ids, list | tuple):
        raise ValueError(f"{type(env).__name__} does not list its tasks; pass the task ids (tasks=[...])")
    return [str(i) for i in ids]


def select_tasks(env: Any, num_tasks: int | None, seed: int) -> list[str]:
    """``num_tasks`` task ids of ``env`` drawn without replacement (seeded); all of them when None."""
    ids = task_ids_of(env)
    if num_tasks is None or num_tasks >= len(ids):
        return ids
    order = np.random.default_rng(seed).permutation(len(ids))[:num_tasks]
    return [ids[i] for i in order]


Backend = Literal["thread", "ray"]


def collect(
    env: AnyEnvSource,
    policy: Policy | str,
    *,
    tasks: Sequence[str] | None = None,
    num_tasks: int | None = None,
    group_size: int = 1,
    num_workers: int = 4,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    policy_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    desc: str = "episodes",
    skip: Callable[[Job], bool] | None = None,
    on_result: Callable[[Job, Trajectory], None] | None = None,
    backend: Backend = "thread",
    address: str | None = None,
) -> list[Trajectory]:
    """Run ``group_size`` episodes for each task, ``num_workers`` at a time.

    ``env`` is an id (``agentgym/ToolUse-v0``, made with ``env_kwargs``) or a zero-argument
    factory of any ``gymnasium.Env`` that keeps agentgym's contract (a
    :class:`~agentgym.server.RemoteEnv` too); each worker gets its own environment. ``policy``
    is a :class:`~agentgym.policies.Policy` or a spec for :func:`~agentgym.policies.make_policy`
    (built with ``policy_kwargs``). Tasks default to ``num_tasks`` tasks drawn (seeded) from
    the environment's split. Results come back in job order, whatever order they finished
    in, so a run is reproducible.

    ``backend="thread"`` runs the episodes in threads of this process; ``backend="ray"``
    runs them on ``num_workers`` Ray actors, each owning its environment, its sandboxes and
    its policy, connected to ``address`` (or ``RAY_ADDRESS``, else a local cluster started
    for the call): see :func:`agentgym.distributed.collect_ray`. The same seeds give the
    same trajectories on both.

    ``skip(job)`` true leaves a job out (its result is not returned: a resumed run).
    ``on_result(job, traj)`` is called in the calling thread as each episode finishes.
    On an interrupt (``KeyboardInterrupt``) jobs not yet started are cancelled and the
    environments closed before the interrupt propagates.
    """
    if backend == "ray":
        from agentgym.distributed import collect_ray

        return collect_ray(
            env,
            policy,
            tasks=tasks,
            num_tasks=num_tasks,
            group_size=group_size,
            num_workers=num_workers,
            seed=seed,
            env_kwargs=env_kwargs,
            policy_kwargs=policy_kwargs,
            progress=progress,
            desc=desc,
            skip=skip,
            on_result=on_result,
            address=address,
        )
    if backend != "thread":
        raise ValueError(f"unknown rollout backend {backend!r}; use 'thread' or 'ray'")
    if address is not None:
        raise ValueError("address= is the Ray cluster to use: pass it with backend='ray'")
    policy = make_policy(policy, **(policy_kwargs or {}))
    env_id = env if isinstance(env, str) else ""

    def new_env() -> gym.Env[Any, Any]:
        return make(env, **(env_kwargs or {})) if isinstance(env, str) else env()

    local = threading.local()
    created: list[gym.Env[Any, Any]] = []
    lock = threading.Lock()

    def worker_env() -> gym.Env[Any, Any]:
        if not hasattr(local, "env"):
            local.env = new_env()
            with lock:
                created.append(local.env)
        env_of_thread: gym.Env[Any, Any] = local.env
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
