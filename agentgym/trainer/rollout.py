"""Trainer rollouts: many episodes played at once, token-exact, through the Gymnasium API alone.

Episodes advance independently (``mode="overlap"``, the default): the generator (one batched
``engine.generate`` call at a time, on the calling thread) is fed whichever episodes are ready
for their next turn, while the others are inside ``env.reset``/``env.step`` in a thread pool
(tools and tests wait on subprocesses, containers or a remote server). After the first episode
becomes ready the generator waits a little for more (at most ``gather`` times its last call's
duration, or until every episode is ready), so fast environments still share batches and a
slow test run never holds up the rest. ``mode="lockstep"`` is the old schedule, kept for
comparison: one generate per turn over every running episode, then every env step. Both give
the same trajectories for the same seeds: each episode's turn is sampled with its own seed
(:func:`turn_seed`, passed per prompt in ``SamplingParams.seeds``), so a sample does not depend
on the batch it lands in (the HF engine; batched kernels can still move a log-prob in its last
bits). :class:`RolloutStats` records the generator's idle share of the wall time.

The environments are any ``gymnasium.Env`` that follows agentgym's contract (a local
:class:`~agentgym.env.AgentEnv`, a :class:`~agentgym.server.RemoteEnv`, a Ray actor env):
``reset(seed, options={"task_id", "tool_format"})`` (the tool-call format the model's chat
template shows, when it shows the tools itself), ``step(text)``, the transcript rebuilt from
reset's observation and each step's ``info["assistant_message"]`` plus observation, and
``finish(reason)`` when the token budget ends an episode (an env without ``finish``: no
outcome). The result is the same :class:`~agentgym.Trajectory` that ``agentgym.collect``
produces, with token segments, in job order.

Limits, each recorded as the stop reason (``trajectory.termination_reason``):
the environment's turn limit (``max_turns``), ``max_turn_tokens`` per turn (the turn ends
with finish reason ``length``; the env sees the text so far) and ``max_total_tokens`` per
episode (``token_budget``: the episode is ended with ``env.finish`` and graded as the env
grades truncations).

One bad episode never ends the batch. Any exception inside one episode ends that episode
alone as an infrastructure failure (``infra_failure=True``, masked in training), with the
reason as its ``termination_reason`` and the exception in ``metadata["error"]``:

* ``reset_error``: ``env.reset`` raised or returned something that is not ``(obs, info)``;
* ``template_error``: the chat template or tokenizer raised, or changed already-rendered text;
* ``engine_error``: generation raised (the batch is retried one episode at a time, so only
  the episodes that fail on their own are masked) or returned non-finite log-probs;
* ``env_error``: ``env.step`` raised (a tool, the grader, the env's own code) or returned
  something that is not a step result;
* ``grader_error``: ``env.finish`` (grading a token-budget stop) raised; an env that reports
  an infrastructure failure there keeps its own reason (``infra_error``);
* ``nonfinite_reward``: the env returned a NaN or infinite reward (kept as 0.0, original in
  ``metadata["nonfinite_rewards"]``, so trajectories stay valid JSON).

The environment's own ``infra_error`` (a tool or sandbox failure it caught) is masked too.
The transcript (``trajectory.messages``) holds what the env confirmed: a step that raised adds
no message. Not covered: an engine or environment that hangs (use the env's
``tool_timeout``/``time_limit``, a remote env's ``timeout``) and exceptions that are not
``Exception`` (``KeyboardInterrupt``, ``SystemExit``), which stop the run (after the env calls
in flight return).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import gymnasium as gym
import numpy as np

import agentgym
from agentgym.messages import Message, assistant
from agentgym.rollout import Job
from agentgym.trainer.engines.base import Completion, Engine, SamplingParams
from agentgym.trainer.tokens import ChatTokens, EpisodeTokens
from agentgym.trajectory import Step, Trajectory

StepResult = tuple[list[Message], float, bool, bool, dict[str, Any]]
"""What ``env.step`` returns: observation, reward, terminated, truncated, info."""
RolloutMode = Literal["overlap", "lockstep"]
"""How episodes share the generator: independently (``overlap``) or turn by turn (``lockstep``)."""
EnvBackend = Literal["local", "ray", "server"]
"""Where the trainer's environments run: this process, Ray actors, an ``agentgym serve`` server."""


@dataclass
class RolloutLimits:
    """How long episodes may run and how turns are sampled."""

    max_turn_tokens: int = 128
    """Tokens one turn may sample (finish reason ``length`` beyond)."""
    max_total_tokens: int = 2048
    """Tokens of a whole episode; beyond it the episode stops with ``token_budget``."""
    temperature: float = 1.0
    """Sampling temperature (0: greedy)."""
    top_k: int = 0
    """Sample from the k most likely tokens only (0: off)."""


@dataclass
class RolloutStats:
    """Where the time of a rollout went, accumulated over calls."""

    generation_s: float = 0.0
    """Seconds in ``engine.generate`` (the generator busy)."""
    env_s: float = 0.0
    """Seconds in ``env.reset``/``env.step``/``env.finish``, summed over calls (concurrent calls overlap)."""
    wall_s: float = 0.0
    """Wall-clock seconds of the ``rollout`` calls."""
    sampled_tokens: int = 0
    turns: int = 0
    """Episode turns played (sampled)."""
    generate_calls: int = 0
    """``engine.generate`` calls (batches); ``turns / generate_calls`` is the mean batch."""

    @property
    def generator_idle_share(self) -> float:
        """Fraction of the rollout wall time the generator was not generating (0 when nothing ran)."""
        if self.wall_s <= 0:
            return 0.0
        return min(max(1.0 - self.generation_s / self.wall_s, 0.0), 1.0)


def turn_seed(seed: int, job: Job, turn: int) -> int:
    """The sampling seed of one episode's turn: a function of the rollout seed, the job and the turn alone."""
    entropy = [seed % 2**64, job.seed % 2**64, job.index, turn]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


@dataclass
class _Episode:
    job: Job
    env: gym.Env[Any, Any]
    traj: Trajectory
    tokens: EpisodeTokens | None = None
    messages: list[Message] = field(default_factory=list)
    """The transcript, rebuilt from what ``reset`` and ``step`` returned."""
    turn: int = 0
    """Turns sampled so far."""
    finish_reason: str = ""
    """The finish reason of the turn being stepped."""
    done: bool = False

    @property
    def context(self) -> EpisodeTokens:
        """The token segments of an episode that started (every episode still playing has them)."""
        if self.tokens is None:
            raise RuntimeError(f"episode {self.job.index} has no token context: its reset failed")
        return self.tokens


EnvFactory = Callable[[], gym.Env[Any, Any]]
"""Makes one environment (called once per concurrent episode)."""


class EnvPool:
    """Environments reused across batches (one per concurrent episode), closed together."""

    def __init__(self, factory: EnvFactory):
        self.factory = factory
        self.envs: list[gym.Env[Any, Any]] = []

    def take(self, n: int) -> list[gym.Env[Any, Any]]:
        """The first ``n`` environments, made as needed."""
        while len(self.envs) < n:
            self.envs.append(self.factory())
        return self.envs[:n]

    def close(self) -> None:
        """Close every environment made so far."""
        for env in self.envs:
            env.close()
        self.envs = []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def env_factory(
    backend: EnvBackend,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    ray_address: str | None = None,
    server_url: str | None = None,
    server_token: str | None = None,
) -> EnvFactory:
    """A factory of ``env_id`` environments on ``backend``.

    Args:
        backend: ``local`` (``agentgym.make`` in this process), ``ray`` (an
            ``agentgym.distributed.RayEnv`` actor per environment, on the cluster at
            ``ray_address``, or a local one when None) or ``server`` (a
            :class:`~agentgym.server.RemoteEnv` session on the ``agentgym serve`` at ``server_url``).
        env_id: the registered environment id.
        env_kwargs: constructor arguments of the environment (sent to the actor or the server).
        ray_address: the Ray cluster (``ray`` backend).
        server_url: the server's base URL (``server`` backend).
        server_token: the server's bearer token (``server`` backend), if it requires one.
    """
    kwargs = dict(env_kwargs or {})
    if backend == "local":
        return lambda: agentgym.make(env_id, **kwargs)
    if backend == "server":
        if not server_url:
            raise ValueError("env_backend='server' needs env_server_url (the URL of an `agentgym serve`)")
        from agentgym.server import RemoteEnv

        url = server_url
        return lambda: RemoteEnv(url, env_id, token=server_token, **kwargs)
    if backend == "ray":
        from agentgym.distributed import RayEnv, ray_init  # lazily: Ray is the optional `distributed` extra

        ray_init(ray_address)  # the running Ray, the cluster at the address, or a new local one (on loopback)
        return lambda: RayEnv(env_id, kwargs)
    raise ValueError(f"env_backend must be local, ray or server; got {backend!r}")


def _finish(ep: _Episode, info: dict[str, Any], terminated: bool, truncated: bool) -> None:
    ep.done = True
    ep.traj.terminated, ep.traj.truncated = terminated, truncated
    ep.traj.termination_reason = info.get("termination_reason")
    ep.traj.infra_failure = bool(info.get("infra_failure"))
    ep.traj.outcome_reward = info.get("outcome_reward")


def _error_text(e: BaseException) -> str:
    return " ".join("".join(traceback.format_exception_only(type(e), e)).split())[:500]


def _fail(ep: _Episode, reason: str, e: BaseException | str) -> None:
    """End one episode as a masked infrastructure failure with ``reason``."""
    ep.traj.metadata["error"] = e if isinstance(e, str) else _error_text(e)
    _finish(ep, {"termination_reason": reason, "infra_failure": True, "outcome_reward": None}, False, True)


# ----- environment work (runs in the thread pool; returns its result or exception, and its seconds) ------


_Work = tuple[str, Any, float]
"""What a pool task returns: its kind (``reset``/``step``/``finish``), the result or exception, seconds."""


def _reset_env(env: gym.Env[Any, Any], job: Job, tool_format: str | None) -> _Work:
    t0 = time.perf_counter()
    options: dict[str, Any] = {"task_id": job.task_id}
    if tool_format:
        options["tool_format"] = tool_format
    try:
        result: Any = env.reset(seed=job.seed, options=options)
    except Exception as e:
        result = e
    return "reset", result, time.perf_counter() - t0


def _step_env(env: gym.Env[Any, Any], text: str) -> _Work:
    t0 = time.perf_counter()
    try:
        result: Any = env.step(text)
    except Exception as e:
        result = e
    return "step", result, time.perf_counter() - t0


def _finish_env(env: gym.Env[Any, Any], reason: str) -> _Work:
    t0 = time.perf_counter()
    finish = getattr(env, "finish", None)
    try:
        result: Any = finish(reason) if callable(finish) else None
    except Exception as e:
        result = e
    return "finish", result, time.perf_counter() - t0


# ----- what the generator thread does with the results ----------------------------------------------------


def _start(ep: _Episode, result: Any, chat: ChatTokens) -> None:
    """Record a reset; a failure ends the episode alone (``reset_error`` / ``template_error``)."""
    if isinstance(result, BaseException):
        return _fail(ep, "reset_error", result)
    try:
        obs, info = result
        ep.messages = list(obs)
        ep.traj.task_id = str(info.get("task_id", ep.job.task_id))
        ep.traj.tools = list(info.get("tools") or [])
        ep.traj.metadata["split"] = info.get("split")
    except Exception as e:
        ep.messages = []
        return _fail(ep, "reset_error", f"env.reset returned a malformed result: {_error_text(e)}")
    try:
        ep.tokens = EpisodeTokens(chat, ep.messages, ep.traj.tools)  # tools through the template when it shows them
    except Exception as e:
        return _fail(ep, "template_error", e)


def _sampled_text(ep: _Episode, c: Completion | BaseException, chat: ChatTokens, greedy: bool) -> str | None:
    """Append one sampled turn to the episode; its text for ``env.step``, or None when the turn failed."""
    if isinstance(c, BaseException):
        _fail(ep, "engine_error", c)
        return None
    if not c.ids or (not greedy and (len(c.logprobs) != len(c.ids) or not all(math.isfinite(x) for x in c.logprobs))):
        # greedy (evaluation) logprobs are never trained on, so only sampled turns need them
        _fail(
            ep,
            "engine_error",
            f"the engine returned {len(c.ids)} ids with {len(c.logprobs)} log-probs, "
            f"not all finite; sampling with temperature > 0 gives finite log-probs",
        )
        return None
    try:
        ep.context.add_sampled(c.ids, c.logprobs, ep.turn)
        text = chat.decode(c.ids)
    except Exception as e:
        _fail(ep, "template_error", e)
        return None
    return text


def _apply_step(ep: _Episode, text: str, finish_reason: str, result: Any) -> bool:
    """Record one env step (or its failure) and append the env's tokens; True when the episode goes on.

    ``result`` is what ``env.step`` returned (a malformed one ends the episode) or what it raised.
    """
    if isinstance(result, BaseException):
        _fail(ep, "env_error", result)
        return False
    try:
        obs, reward, terminated, truncated, info = result
        said: Message = info.get("assistant_message") or assistant(text)  # the env's record, else the raw text
        step = Step(text, list(obs), float(reward), dict(info.get("reward_components") or {}), info, finish_reason)
    except Exception as e:
        _fail(ep, "env_error", f"env.step returned a malformed result: {_error_text(e)}")
        return False
    ep.traj.steps.append(step)
    ep.messages += [said, *step.observation]
    if terminated or truncated:
        _finish(ep, info, bool(terminated), bool(truncated))
        return False
    try:
        ep.context.add_env(ep.messages, ep.turn)
    except Exception as e:
        _fail(ep, "template_error", e)
        return False
    return True


def _apply_finish(ep: _Episode, result: Any) -> None:
    """End an episode out of tokens with what ``env.finish`` returned (graded as the env grades truncations)."""
    info: dict[str, Any] = {"termination_reason": "token_budget", "infra_failure": False, "outcome_reward": None}
    components: dict[str, float] = {}
    if isinstance(result, BaseException):
        info.update(termination_reason="grader_error", infra_failure=True)
        ep.traj.metadata["error"] = _error_text(result)
    elif isinstance(result, dict):
        info.update({k: v for k, v in result.items() if k != "reward_components"})
        info["infra_failure"] = bool(info.get("infra_failure"))
        components = dict(result.get("reward_components") or {})
        if info["infra_failure"] and info.get("infra_error"):
            ep.traj.metadata["error"] = str(info["infra_error"])
    if ep.traj.steps:
        last = ep.traj.steps[-1]
        outcome = info.get("outcome_reward")
        last.reward += float(outcome) if isinstance(outcome, (int, float)) else 0.0
        last.reward_components.update(components)
        last.info.update(info)
        last.info["reward_components"] = dict(last.reward_components)
    _finish(ep, info, False, True)


def _generate(engine: Engine, prompts: list[list[int]], params: SamplingParams) -> list[Completion | BaseException]:
    """One batched call; if it raises, one call per prompt, so that only the failing prompts fail."""
    out: list[Completion | BaseException]
    try:
        out = list(engine.generate(prompts, params))
    except Exception:
        out = []
    if len(out) == len(prompts):
        return out
    limits = params.limits(len(prompts))
    seeds = params.prompt_seeds(len(prompts))
    results: list[Completion | BaseException] = []
    for i, (prompt, limit) in enumerate(zip(prompts, limits, strict=True)):
        one = replace(
            params, max_tokens=[limit], seed=params.seed + 104_729 * (i + 1), seeds=[seeds[i]] if seeds else None
        )
        try:
            results.append(engine.generate([prompt], one)[0])
        except Exception as e:
            results.append(e)
    return results


def _finite(x: object) -> bool:
    return x is None or (isinstance(x, (int, float)) and math.isfinite(x))


def _check_rewards(traj: Trajectory) -> None:
    """Mask an episode whose env produced a NaN/inf reward; store 0.0 in its place (keeps JSON valid)."""
    bad: list[str] = []
    if not _finite(traj.outcome_reward):
        bad.append(f"outcome={traj.outcome_reward!r}")
        traj.outcome_reward = 0.0
    for t, s in enumerate(traj.steps, 1):
        for key in ("process_reward", "outcome_reward"):
            if not _finite(s.info.get(key)):
                bad.append(f"turn {t} {key}={s.info[key]!r}")
                s.info[key] = 0.0
        if not _finite(s.reward):
            bad.append(f"turn {t} reward={s.reward!r}")
            s.reward = 0.0
        for k, v in list(s.reward_components.items()):
            if not _finite(v):
                bad.append(f"turn {t} {k}={v!r}")
                s.reward_components[k] = 0.0
    if bad:
        traj.metadata["nonfinite_rewards"] = bad
        if not traj.infra_failure:
            traj.infra_failure = True
            traj.termination_reason = "nonfinite_reward"
            traj.metadata["error"] = "the environment returned non-finite rewards: " + ", ".join(bad[:5])


class _Scheduler:
    """Feeds the generator the episodes that are ready while the others are in the env thread pool."""

    def __init__(
        self,
        episodes: list[_Episode],
        engine: Engine,
        chat: ChatTokens,
        limits: RolloutLimits,
        seed: int,
        stats: RolloutStats,
        pool: ThreadPoolExecutor,
    ):
        self.episodes, self.engine, self.chat, self.limits = episodes, engine, chat, limits
        self.seed, self.stats, self.pool = seed, stats, pool
        self.pending: dict[Future[_Work], tuple[_Episode, Any]] = {}
        self.ready: list[_Episode] = []
        self.ready_since = 0.0  # when the oldest ready episode became ready (or the generator free)
        self.tool_format = chat.parser if chat.native_tools else None  # the format the template shows the model

    def run(self, mode: RolloutMode, max_batch: int, gather: float) -> None:
        """Play every episode to its end."""
        for ep in self.episodes:
            self._submit(ep, _reset_env, ep.env, ep.job, self.tool_format)
        last_generate_s: float | None = None
        while self.pending or self.ready:
            if not self.ready:
                self._collect(wait(self.pending, return_when=FIRST_COMPLETED).done)
                continue
            cap = max_batch if max_batch > 0 else len(self.episodes)
            if self.pending and len(self.ready) < cap:
                if mode == "lockstep" or last_generate_s is None:
                    window = math.inf  # every running episode joins the batch (the first batch, or lockstep)
                else:
                    window = gather * last_generate_s
                left = self.ready_since + window - time.perf_counter()
                if left > 0:
                    done = wait(self.pending, timeout=None if math.isinf(left) else left, return_when=FIRST_COMPLETED)
                    if done.done:
                        self._collect(done.done)
                        continue
            self.ready.sort(key=lambda e: e.job.index)
            batch, self.ready = self.ready[:cap], self.ready[cap:]
            last_generate_s = self._generate(batch)
            self.ready_since = time.perf_counter()

    def _submit(self, ep: _Episode, fn: Callable[..., _Work], *args: Any) -> None:
        self.pending[self.pool.submit(fn, *args)] = (ep, args[-1])

    def _collect(self, done: set[Future[_Work]]) -> None:
        """Apply finished env work (in job order, for reproducible batches); ready episodes join the queue."""
        for fut in sorted(done, key=lambda f: self.pending[f][0].job.index):
            ep, arg = self.pending.pop(fut)
            kind, result, seconds = fut.result()
            self.stats.env_s += seconds
            if kind == "finish":
                _apply_finish(ep, result)
                continue
            if kind == "reset":
                _start(ep, result, self.chat)
                goes_on = not ep.done
            else:
                goes_on = _apply_step(ep, arg, ep.finish_reason, result)
            if not goes_on:
                continue
            if ep.context.length >= self.limits.max_total_tokens:
                self._submit(ep, _finish_env, ep.env, "token_budget")
                continue
            if not self.ready:
                self.ready_since = time.perf_counter()
            self.ready.append(ep)

    def _generate(self, batch: list[_Episode]) -> float:
        """One batched ``generate`` for ``batch``; the sampled turns go to the env pool. Returns its seconds."""
        limits = self.limits
        for ep in batch:
            ep.turn += 1
        seeds = [turn_seed(self.seed, ep.job, ep.turn) for ep in batch]
        params = SamplingParams(
            max_tokens=[min(limits.max_turn_tokens, limits.max_total_tokens - ep.context.length) for ep in batch],
            temperature=limits.temperature,
            top_k=limits.top_k,
            seed=seeds[0] % 2**31,  # engines without per-prompt seeds still vary between calls
            seeds=seeds,
            stop_ids=tuple(sorted(self.chat.stop_ids)),
        )
        t0 = time.perf_counter()
        completions = _generate(self.engine, [ep.context.ids() for ep in batch], params)
        seconds = time.perf_counter() - t0
        self.stats.generation_s += seconds
        self.stats.generate_calls += 1
        self.stats.turns += len(batch)
        for ep, c in zip(batch, completions, strict=True):
            text = _sampled_text(ep, c, self.chat, greedy=limits.temperature <= 0)
            if text is None:
                continue
            assert isinstance(c, Completion)
            self.stats.sampled_tokens += len(c.ids)
            ep.finish_reason = c.finish_reason
            self._submit(ep, _step_env, ep.env, text)
        return seconds


def rollout(
    envs: Sequence[gym.Env[Any, Any]],
    jobs: Sequence[Job],
    engine: Engine,
    chat: ChatTokens,
    limits: RolloutLimits,
    *,
    seed: int = 0,
    env_id: str = "",
    policy_name: str = "",
    env_workers: int = 4,
    stats: RolloutStats | None = None,
    mode: RolloutMode = "overlap",
    max_batch: int = 0,
    gather: float = 0.25,
    metadata: dict[str, Any] | None = None,
) -> list[Trajectory]:
    """Play ``jobs`` (one env each from ``envs``); trajectories come back in job order.

    Args:
        envs: at least one environment per job (any Gymnasium env following agentgym's contract).
        jobs: the episodes to play (task, seed, group).
        engine: samples the turns.
        chat: the model's chat template (token-exact segments).
        limits: token limits and sampling temperature.
        seed: the rollout seed; turn t of job j is sampled with ``turn_seed(seed, j, t)``.
        env_id: recorded in each trajectory.
        policy_name: recorded in each trajectory.
        env_workers: threads running ``env.reset``/``env.step``/``env.finish`` concurrently.
        stats: accumulates time, tokens and the generator's idle share.
        mode: ``overlap`` (episodes advance independently) or ``lockstep`` (one generate per turn).
        max_batch: most prompts per ``generate`` call (0: every ready episode).
        gather: ``overlap``: once an episode is ready, wait up to this fraction of the last
            generate call's duration for more to join the batch (0: generate at once).
        metadata: added to every trajectory's ``metadata`` (e.g. the policy version).
    """
    if len(envs) < len(jobs):
        raise ValueError(f"{len(jobs)} jobs but only {len(envs)} environments")
    if mode not in ("overlap", "lockstep"):
        raise ValueError(f"mode must be overlap or lockstep; got {mode!r}")
    stats = stats if stats is not None else RolloutStats()
    t0 = time.perf_counter()
    episodes = [
        _Episode(
            job,
            env,
            Trajectory(env_id=env_id, task_id=job.task_id, seed=job.seed, group_id=job.group_id, policy=policy_name),
        )
        for job, env in zip(jobs, envs, strict=False)  # more environments than jobs is fine
    ]
    with ThreadPoolExecutor(max_workers=max(1, env_workers), thread_name_prefix="agentgym-env") as pool:
        _Scheduler(episodes, engine, chat, limits, seed, stats, pool).run(mode, max_batch, gather)
    for ep in episodes:
        ep.traj.messages = ep.messages
        ep.traj.segments = ep.tokens.segments if ep.tokens else []
        ep.traj.metadata["finish_reasons"] = [s.finish_reason for s in ep.traj.steps]
        ep.traj.metadata["num_tokens"] = ep.tokens.length if ep.tokens else 0
        ep.traj.metadata.update(metadata or {})
        _check_rewards(ep.traj)
    stats.wall_s += time.perf_counter() - t0
    return [ep.traj for ep in episodes]
