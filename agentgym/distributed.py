"""Rollouts on Ray: actors own the environments, their sandboxes and the policy; only trajectories travel back.

Ray is the engine: agentgym adds no cluster code of its own. :func:`collect_ray` (what
``collect(..., backend="ray")`` and ``agentgym eval --backend ray`` run) starts
``num_workers`` actors; each builds its environment (from the env id and ``env_kwargs``, or a
picklable factory) and its policy (a spec built with ``make_policy``, or a picklable policy
object) in its own process, and plays one episode per job with the same
:func:`~agentgym.rollout.run_episode` the thread backend uses. The same seeds therefore give
the same trajectories on both backends, for a deterministic policy and for a seeded model
policy alike (``hf:`` samples each turn with a seed drawn from the episode's seeded RNG).

A worker that dies mid-episode (killed, out of memory, its node gone) loses nothing: the
episode is replayed from its start on a fresh actor, logged as a warning, and its trajectory
says so (``metadata["ray_retries"]``). After ``max_attempts`` lost workers the episode ends as
an infrastructure failure (``termination_reason="worker_lost"``) instead of raising, like any
other infrastructure failure (evaluation counts it apart; the trainer masks it).

:class:`RayEnv` is one environment on its own actor behind the Gymnasium API, for callers that
keep generation in their own process (the trainer) while environments and sandboxes live on
the cluster.

:func:`ray_init` connects to a cluster (``address`` or ``RAY_ADDRESS``) or starts a local one
on the loopback interface, without the dashboard, with a small object store. Not covered:
a process that imported ``ray`` before :func:`ray_init` gets Ray's default local cluster on
the machine's routable address (a warning says so); and the single-machine switch that keeps
a local cluster on loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, inherited by child
processes) stays on in that process, which should therefore not join a multi-machine cluster
later. Start Ray yourself and pass its ``address`` when you need another network policy.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.errors import InfrastructureError
from agentgym.messages import Action, Message
from agentgym.policies import Policy, make_policy
from agentgym.registry import make
from agentgym.rollout import AnyEnvSource, Job, plan_jobs, run_episode, select_tasks, task_ids_of
from agentgym.trajectory import Trajectory

__all__ = ["RayCluster", "RayEnv", "collect_ray", "ray_init"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'agentgym[distributed]'"
OBJECT_STORE_BYTES = 256 * 1024**2
"""Object store of a local cluster: only trajectories travel, so a small one is plenty."""
MAX_ATTEMPTS = 3
"""Workers an episode may lose before it ends as ``worker_lost``."""
CLOSE_TIMEOUT_S = 30.0
START_TIMEOUT_S = 300.0
"""Seconds a worker may take to start (be scheduled, build its environment and policy) before it counts as lost:
an actor no node can host (resources nobody has, a node gone with its resources) would otherwise wait forever."""
_POLL_S = 1.0
INTERRUPT_CLOSE_S = 5.0
"""The same on an interrupt or error: actors still in an episode are killed after it."""
_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""How long closing the workers' environments may take before the actors are killed."""


def _ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"the Ray backend needs Ray: {INSTALL_HINT} ({e})") from e
    return ray


def _lost_errors() -> tuple[type[BaseException], ...]:
    """What Ray raises for a task whose worker process or actor is gone, or whose result was lost with its node."""
    from ray.exceptions import ObjectLostError, RayActorError, WorkerCrashedError

    return (RayActorError, WorkerCrashedError, ObjectLostError)


class RayCluster:
    """This process's connection to Ray, from :func:`ray_init`; a context manager.

    ``address`` is the cluster's GCS address (what another process passes as ``address`` to
    join it). ``owned`` is true when :func:`ray_init` made the connection (and started the
    cluster when no address was given): :meth:`shutdown` then disconnects (and stops that
    local cluster); otherwise Ray was already initialized by someone else and it does nothing.
    """

    def __init__(self, owned: bool):
        self.owned = owned
        self.address: str = _ray().get_runtime_context().gcs_address
        self._done = False

    def shutdown(self) -> None:
        """Disconnect from the cluster (stopping a local one) if :func:`ray_init` connected; idempotent."""
        if self.owned and not self._done:
            self._done = True
            _ray().shutdown()

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()


def ray_init(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int = OBJECT_STORE_BYTES,
    log_to_driver: bool | None = None,
) -> RayCluster:
    """Connect to Ray: the initialized one, ``address``, ``RAY_ADDRESS``, or a new local cluster.

    A local cluster lives on the loopback interface (node and GCS address ``127.0.0.1``, its
    servers listening there only), without the dashboard, with an ``object_store_memory``
    object store and ``num_cpus`` CPUs (default: this machine's). Workers' output reaches
    this terminal only with ``log_to_driver`` (default: when ``AGENTGYM_DEBUG`` is set).
    Usage statistics are off unless ``RAY_USAGE_STATS_ENABLED`` says otherwise. Use the
    result as a context manager (or call ``shutdown()``) to disconnect, and to stop the
    cluster if this call started it.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None and "ray" not in sys.modules:
        # Ray resolves a node address of 127.0.0.1 to the machine's routable one on Linux
        # unless its single-machine mode is on (the mode it uses on macOS and Windows); it
        # reads the switch when ``ray`` is first imported, and binds its servers to loopback.
        os.environ.setdefault(_LOOPBACK_SWITCH, "0")
    ray = _ray()
    if ray.is_initialized():
        return RayCluster(owned=False)
    debug = bool(os.environ.get("AGENTGYM_DEBUG"))
    quiet = {
        "log_to_driver": debug if log_to_driver is None else log_to_driver,
        "logging_level": logging.INFO if debug else logging.ERROR,
    }
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home from a rollout
    if address is not None:
        ray.init(address=address, **quiet)
        return RayCluster(owned=True)
    ray.init(
        address="local",
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        object_store_memory=object_store_memory,
        num_cpus=num_cpus or os.cpu_count() or 1,
        **quiet,
    )
    cluster = RayCluster(owned=True)
    if not cluster.address.startswith("127.0.0.1:"):
        log.warning(
            "ray: the local cluster is on %s, not loopback: ray was imported before agentgym.distributed.ray_init "
            "(set %s=0 before importing ray, or start Ray yourself and pass its address)",
            cluster.address,
            _LOOPBACK_SWITCH,
        )
    return cluster


@functools.cache
def _remote(cls: type) -> Any:
    """``cls`` as a Ray actor class (made once per process)."""
    return _ray().remote(cls)


def _actor_options(extra: dict[str, Any] | None) -> dict[str, Any]:
    # Ray must not restart an actor or retry its task on its own: a restarted actor would
    # replay an episode we cannot see was replayed; collect_ray retries and reports instead.
    return {"max_restarts": 0, "max_task_retries": 0, **(extra or {})}


class _RolloutWorker:
    """The body of a rollout actor: one environment and one policy, one episode at a time."""

    def __init__(
        self,
        env: AnyEnvSource,
        env_kwargs: dict[str, Any] | None,
        policy: Policy | str,
        policy_kwargs: dict[str, Any] | None,
    ):
        self.env_id = env if isinstance(env, str) else ""
        self.env = make(env, **(env_kwargs or {})) if isinstance(env, str) else env()
        self.policy = make_policy(policy, **(policy_kwargs or {}))

    def pid(self) -> int:
        """The actor's process id (it is ready once this answers)."""
        return os.getpid()

    def task_ids(self, num_tasks: int | None, seed: int) -> list[str]:
        """``num_tasks`` task ids of the environment's split, drawn as the thread backend draws them."""
        return select_tasks(self.env, num_tasks, seed)

    def run(self, job: Job) -> Trajectory:
        """Play the episode of ``job``."""
        return run_episode(
            self.env, self.policy, task_id=job.task_id, seed=job.seed, env_id=self.env_id, group_id=job.group_id
        )

    def close(self) -> None:
        """Close the environment (its sandboxes)."""
        self.env.close()


class _Workers:
    """The rollout actors of one :func:`collect_ray` call; a dead one is replaced by a fresh one."""

    def __init__(self, args: tuple[Any, ...], actor_options: dict[str, Any] | None, start_timeout: float):
        self.ray = _ray()
        self.options = _actor_options(actor_options)
        self.cls = _remote(_RolloutWorker).options(**self.options)
        self.args = args
        self.start_timeout = start_timeout
        self.actors: list[Any] = []
        self.starting: dict[Any, tuple[Any, float]] = {}
        """Replacement actors not yet known to be up: actor -> (its ``pid`` call, when it was asked for)."""

    def start(self, n: int) -> list[Any]:
        """``n`` new actors, once each has built its environment and policy (within ``start_timeout``)."""
        new = [self.cls.remote(*self.args) for _ in range(n)]
        self.actors += new
        refs = [a.pid.remote() for a in new]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        if len(ready) < len(refs):
            raise RuntimeError(
                f"{len(refs) - len(ready)} of {len(refs)} Ray workers did not start within {self.start_timeout:g} s: "
                f"no node can host an actor with {self._asks()} (see `ray status`), or building the environment "
                f"hangs; lower num_workers or the actor options, or raise start_timeout"
            )
        try:
            self.ray.get(refs)
        except _lost_errors() as e:
            raise RuntimeError(f"the Ray workers could not build the environment or the policy: {e}") from e
        return new

    def replace(self, dead: Any) -> Any:
        """A fresh actor in place of ``dead`` (not waited for: its first episode queues behind its start)."""
        self.ray.kill(dead, no_restart=True)
        self.actors.remove(dead)
        self.starting.pop(dead, None)
        actor = self.cls.remote(*self.args)
        self.actors.append(actor)
        self.starting[actor] = (actor.pid.remote(), time.monotonic())
        return actor

    def stuck(self, actors: Iterable[Any]) -> list[Any]:
        """Those of ``actors`` still starting after ``start_timeout`` (the others' starts are checked off)."""
        stuck = []
        for actor in actors:
            if actor not in self.starting:
                continue
            ref, since = self.starting[actor]
            done, _ = self.ray.wait([ref], timeout=0)
            if done:
                del self.starting[actor]
            elif time.monotonic() - since > self.start_timeout:
                stuck.append(actor)
        return stuck

    def _asks(self) -> str:
        asks = {k: v for k, v in self.options.items() if k in ("num_cpus", "num_gpus", "memory", "resources")}
        return ", ".join(f"{k}={v}" for k, v in asks.items()) or "the default resources (1 CPU)"

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Close every environment (an actor in an episode closes after it, within ``timeout``); end the actors."""
        refs = [a.close.remote() for a in self.actors]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for a in self.actors:
            self.ray.kill(a, no_restart=True)
        self.actors.clear()


def collect_ray(
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
    address: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    actor_options: dict[str, Any] | None = None,
    start_timeout: float = START_TIMEOUT_S,
) -> list[Trajectory]:
    """:func:`~agentgym.rollout.collect` on ``num_workers`` Ray actors (see the module docstring).

    The arguments shared with ``collect`` mean the same: jobs are planned alike, results come
    back in job order, ``skip`` and ``on_result`` (called in this process) work the same.
    ``env`` (an id, or a factory) and ``policy`` (a spec, or a policy object) must pickle; an
    env id must be registered in the workers too (built-in and plugin ids are).
    ``address``: the cluster (default ``RAY_ADDRESS``, else a local cluster for this call);
    ``max_attempts``: workers an episode may lose before it ends as ``worker_lost``;
    ``actor_options``: Ray options of each actor (``num_cpus``, ``num_gpus``, ``resources``...);
    ``start_timeout``: seconds a worker may take to start; the first workers not up by then are
    an error (no node can host them), and a replacement that is not up by then is a lost
    worker (the episode is replayed on another, or ends as ``worker_lost``), never a hang.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    with ray_init(address):  # disconnects (and stops a local cluster) when this call started it
        ray = _ray()
        payload = policy if isinstance(policy, str) else ray.put(policy)
        workers = _Workers((env, env_kwargs, payload, policy_kwargs), actor_options, start_timeout)
        try:
            idle = workers.start(1)
            task_ids = list(tasks) if tasks is not None else ray.get(idle[0].task_ids.remote(num_tasks, seed))
            jobs = [j for j in plan_jobs(task_ids, group_size, seed) if skip is None or not skip(j)]
            if len(jobs) > 1 and num_workers > 1:
                idle += workers.start(min(num_workers, len(jobs)) - 1)
            names = {"env_id": env if isinstance(env, str) else "custom", "policy": _policy_name(policy)}
            trajectories = _schedule(workers, idle, jobs, max_attempts, names, progress, desc, on_result)
        except BaseException:
            workers.close(timeout=INTERRUPT_CLOSE_S)  # interrupted: do not wait for running episodes to end
            raise
        workers.close()
        return trajectories


def _schedule(
    workers: _Workers,
    idle: list[Any],
    jobs: list[Job],
    max_attempts: int,
    names: dict[str, str],
    progress: bool,
    desc: str,
    on_result: Callable[[Job, Trajectory], None] | None,
) -> list[Trajectory]:
    """Run ``jobs`` on the actors, one episode per idle actor; replay an episode whose actor died."""
    ray = workers.ray
    lost_errors = _lost_errors()
    pending = deque(jobs)
    running: dict[Any, tuple[Any, Job]] = {}
    lost_workers: Counter[int] = Counter()
    results: dict[int, Trajectory] = {}
    with tqdm(total=len(jobs), desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        while pending or running:
            while idle and pending:
                actor, job = idle.pop(), pending.popleft()
                running[actor.run.remote(job)] = (actor, job)
            done, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
            if done:
                [ref] = done
                actor, job = running.pop(ref)
                try:
                    traj: Trajectory = ray.get(ref)
                    lost = None
                except lost_errors as e:
                    lost = " ".join(str(e).split())[:300]
            else:
                stuck = workers.stuck(a for a, _job in running.values())
                if not stuck:
                    continue
                ref = next(r for r, (a, _job) in running.items() if a is stuck[0])
                actor, job = running.pop(ref)
                lost = (
                    f"a fresh worker did not start within {workers.start_timeout:g} s "
                    f"(no node can host an actor with {workers._asks()}?)"
                )
            if lost is not None:
                idle.append(workers.replace(actor))
                lost_workers[job.index] += 1
                cause = lost
                if lost_workers[job.index] < max_attempts:
                    log.warning(
                        "ray: the worker playing task %s (job %d, seed %d) was lost; replaying the episode on a "
                        "fresh worker (attempt %d of %d): %s",
                        job.task_id,
                        job.index,
                        job.seed,
                        lost_workers[job.index] + 1,
                        max_attempts,
                        cause,
                    )
                    pending.appendleft(job)
                    continue
                traj = _worker_lost(job, names, max_attempts, cause)
            else:
                idle.append(actor)
                names = {"env_id": traj.env_id, "policy": traj.policy}
            if lost_workers[job.index]:
                traj.metadata["ray_retries"] = min(lost_workers[job.index], max_attempts - 1)
            results[job.index] = traj
            if on_result is not None:
                on_result(job, traj)
            bar.update(1)
            bar.set_postfix(reward=f"{np.mean([t.reward for t in results.values()]):.3f}", retries=lost_workers.total())
    _summarize(lost_workers, results, max_attempts)
    return [results[i] for i in sorted(results)]


def _policy_name(policy: Policy | str) -> str:
    return policy if isinstance(policy, str) else str(getattr(policy, "name", type(policy).__name__))


def _worker_lost(job: Job, names: dict[str, str], max_attempts: int, cause: str) -> Trajectory:
    """The infrastructure-failure trajectory of an episode that lost ``max_attempts`` workers."""
    return Trajectory(
        env_id=names["env_id"],
        task_id=job.task_id,
        seed=job.seed,
        group_id=job.group_id,
        policy=names["policy"],
        truncated=True,
        infra_failure=True,
        termination_reason="worker_lost",
        metadata={"error": f"the Ray worker playing this episode was lost {max_attempts} times; last: {cause}"},
    )


def _summarize(lost_workers: Counter[int], results: dict[int, Trajectory], max_attempts: int) -> None:
    if not lost_workers:
        return
    lost = sum(results[i].termination_reason == "worker_lost" for i in lost_workers)
    log.warning(
        "ray: %d worker(s) lost during the run; %d episode(s) replayed on fresh workers and completed, "
        "%d ended as worker_lost after %d attempts",
        lost_workers.total(),
        len(lost_workers) - lost,
        lost,
        max_attempts,
    )


class _EnvHost:
    """The body of a :class:`RayEnv` actor: one environment."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any]):
        self.env = make(env_id, **env_kwargs)

    def spaces(self) -> tuple[gym.Space[Any], gym.Space[Any]]:
        return self.env.observation_space, self.env.action_space

    def task_ids(self) -> list[str]:
        return task_ids_of(self.env)

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[list[Message], dict[str, Any]]:
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Action) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        return self.env.step(action)

    def finish(self, reason: str) -> dict[str, Any]:
        return self.env.finish(reason)

    def close(self) -> None:
        self.env.close()


class RayEnv(gym.Env[list[Message], Action]):
    """An agentgym environment on its own Ray actor, behind the Gymnasium API.

    ``reset``, ``step``, ``finish`` and ``close`` run on the actor, where the environment
    and its sandboxes live; observations, rewards and ``info`` come back. ``messages`` is the
    transcript rebuilt from what came back (reset's observation, then per step
    ``info["assistant_message"]`` and the observation), as ``env.messages`` is for a local
    env. A lost actor raises :class:`~agentgym.errors.InfrastructureError`. Ray is
    initialized with :func:`ray_init` when it is not yet (and then stays up until the
    process exits).

    Args:
        env_id: a registered id (``agentgym/CodeRepair-v0``), made on the actor.
        env_kwargs: keyword arguments of the environment.
        actor_options: Ray options of the actor (``num_cpus``, ``resources``, ``runtime_env``...).
    """

    def __init__(
        self, env_id: str, env_kwargs: dict[str, Any] | None = None, *, actor_options: dict[str, Any] | None = None
    ):
        ray = _ray()
        if not ray.is_initialized():
            ray_init()
        self.env_id = env_id
        self.messages: list[Message] = []
        self._closed = False
        self._actor = _remote(_EnvHost).options(**_actor_options(actor_options)).remote(env_id, env_kwargs or {})
        self.observation_space, self.action_space = self._call("spaces")

    def _call(self, method: str, *args: Any) -> Any:
        ray = _ray()
        try:
            return ray.get(getattr(self._actor, method).remote(*args))
        except _lost_errors() as e:
            raise InfrastructureError(f"the Ray actor of {self.env_id} was lost: {' '.join(str(e).split())}") from e

    def task_ids(self) -> list[str]:
        """The ids of the tasks the environment draws from (its split)."""
        ids: list[str] = self._call("task_ids")
        return ids

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start an episode on the actor; Gymnasium's ``reset``."""
        super().reset(seed=seed)
        obs, info = self._call("reset", seed, options)
        self.messages = list(obs)
        return obs, info

    def step(self, action: Action) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Play one assistant turn on the actor; Gymnasium's ``step``."""
        obs, reward, terminated, truncated, info = self._call("step", action)
        self.messages += [info["assistant_message"], *obs]
        return obs, reward, terminated, truncated, info

    def finish(self, reason: str = "stopped") -> dict[str, Any]:
        """End the running episode from outside (see ``AgentEnv.finish``)."""
        info: dict[str, Any] = self._call("finish", reason)
        return info

    def close(self) -> None:
        """Close the environment and end its actor; idempotent (a lost actor is not an error)."""
        if self._closed:
            return
        self._closed = True
        ray = _ray()
        try:
            ray.get(self._actor.close.remote(), timeout=CLOSE_TIMEOUT_S)
        except (*_lost_errors(), ray.exceptions.GetTimeoutError):
            pass
        finally:
            ray.kill(self._actor, no_restart=True)
