"""Lockstep batched rollouts: many episodes stepped together, one ``generate`` per turn.

Each turn, every episode still running contributes its token context (the concatenation
of its segments) to one batched ``engine.generate`` call; the environments then step (in a
thread pool, since tools may wait on subprocesses or containers) and their new messages
become ``env`` segments. The result is the same :class:`~agentgym.Trajectory` that
``agentgym.collect`` produces, with token segments.

Limits, each recorded as the stop reason (``trajectory.termination_reason``):
the environment's turn limit (``max_turns``), ``max_turn_tokens`` per turn (the turn ends
with finish reason ``length``; the env sees the text so far) and ``max_total_tokens`` per
episode (``token_budget``: the episode is truncated and graded as the env grades
truncations).

One bad episode never ends the batch. Any exception inside one episode ends that episode
alone as an infrastructure failure (``infra_failure=True``, masked in training), with the
reason as its ``termination_reason`` and the exception in ``metadata["error"]``:

* ``reset_error``: ``env.reset`` raised;
* ``template_error``: the chat template or tokenizer raised, or changed already-rendered text;
* ``engine_error``: generation raised (the batch is retried one episode at a time, so only
  the episodes that fail on their own are masked) or returned non-finite log-probs;
* ``env_error``: ``env.step`` raised (a tool, the grader, the env's own code) or returned
  something that is not a step result;
* ``grader_error``: grading a token-budget truncation raised;
* ``nonfinite_reward``: the env returned a NaN or infinite reward (kept as 0.0, original in
  ``metadata["nonfinite_rewards"]``, so trajectories stay valid JSON).

The environment's own ``infra_error`` (a tool or sandbox failure it caught) is masked too.
Not covered: an engine or environment that hangs (use the env's ``tool_timeout``/``time_limit``)
and exceptions that are not ``Exception`` (``KeyboardInterrupt``, ``SystemExit``), which stop the run.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from agentgym.env import AgentEnv
from agentgym.messages import Message
from agentgym.parsing import get_parser
from agentgym.rollout import Job
from agentgym.trainer.engines.base import Completion, Engine, SamplingParams
from agentgym.trainer.tokens import ChatTokens, EpisodeTokens
from agentgym.trajectory import Step, Trajectory

StepResult = tuple[list[Message], float, bool, bool, dict[str, Any]]
"""What ``env.step`` returns: observation, reward, terminated, truncated, info."""


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
    """Seconds in ``engine.generate``."""
    env_s: float = 0.0
    """Seconds in ``env.reset``/``env.step`` and tokenizing their messages."""
    sampled_tokens: int = 0
    turns: int = 0
    """Episode turns played (one per active episode per lockstep turn)."""


@dataclass
class _Episode:
    job: Job
    env: AgentEnv
    traj: Trajectory
    tokens: EpisodeTokens | None = None
    done: bool = False
    reset_failed: bool = False

    @property
    def context(self) -> EpisodeTokens:
        """The token segments of an episode that started (every episode still playing has them)."""
        if self.tokens is None:
            raise RuntimeError(f"episode {self.job.index} has no token context: its reset failed")
        return self.tokens


class EnvPool:
    """Environments reused across batches (one per concurrent episode), closed together."""

    def __init__(self, factory: Callable[[], AgentEnv]):
        self.factory = factory
        self.envs: list[AgentEnv] = []

    def take(self, n: int) -> list[AgentEnv]:
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


def _stop_for_budget(ep: _Episode) -> None:
    """End an episode that ran out of tokens, graded the way its env grades truncations."""
    outcome: float | None = None
    reason = "token_budget"
    if ep.env.grade_on_truncation:
        try:
            outcome, _ = ep.env.rubric.score_outcome(ep.env)
        except Exception as e:
            reason = "grader_error"
            ep.traj.metadata["error"] = _error_text(e)
    info = {"termination_reason": reason, "infra_failure": reason == "grader_error", "outcome_reward": outcome}
    if ep.traj.steps:
        last = ep.traj.steps[-1]
        last.reward += float(outcome or 0.0)
        last.info.update(info)
    _finish(ep, info, False, True)


def _step_env(ep: _Episode, text: str) -> StepResult | BaseException:
    try:
        return ep.env.step(text)
    except Exception as e:
        return e


def _reset(ep: _Episode, chat: ChatTokens, limits: RolloutLimits) -> None:
    """Start one episode; a failure ends it alone (``reset_error`` / ``template_error``)."""
    job = ep.job
    try:
        obs, info = ep.env.reset(seed=job.seed, options={"task_id": job.task_id})
        ep.traj.task_id = str(info.get("task_id", job.task_id))
        ep.traj.tools = list(info.get("tools") or [])
        ep.traj.metadata["split"] = info.get("split")
    except Exception as e:
        ep.reset_failed = True
        return _fail(ep, "reset_error", e)
    try:
        ep.tokens = EpisodeTokens(chat, obs, ep.traj.tools)  # tools through the model's template when it renders them
        parser = getattr(ep.tokens, "tool_parser", None)  # the env reads the format the model was shown (as HFPolicy)
        if parser and hasattr(ep.env, "parser"):
            ep.env.parser = get_parser(parser)
    except Exception as e:
        return _fail(ep, "template_error", e)
    if ep.tokens.length >= limits.max_total_tokens:
        _stop_for_budget(ep)


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
    results: list[Completion | BaseException] = []
    for i, (prompt, limit) in enumerate(zip(prompts, limits, strict=True)):
        try:
            results.append(
                engine.generate([prompt], replace(params, max_tokens=[limit], seed=params.seed + 104_729 * (i + 1)))[0]
            )
        except Exception as e:
            results.append(e)
    return results


def _apply_step(ep: _Episode, c: Completion, text: str, result: Any, limits: RolloutLimits, turn: int) -> None:
    """Record one env step (or its failure) and append the env's tokens.

    ``result`` is what ``env.step`` returned (a malformed one ends the episode) or what it raised.
    """
    if isinstance(result, BaseException):
        return _fail(ep, "env_error", result)
    try:
        obs, reward, terminated, truncated, info = result
        ep.traj.steps.append(
            Step(text, obs, float(reward), dict(info.get("reward_components") or {}), info, c.finish_reason)
        )
    except Exception as e:
        return _fail(ep, "env_error", f"env.step returned a malformed result: {_error_text(e)}")
    if terminated or truncated:
        return _finish(ep, info, bool(terminated), bool(truncated))
    try:
        ep.context.add_env(ep.env.messages, turn)
    except Exception as e:
        return _fail(ep, "template_error", e)
    if ep.context.length >= limits.max_total_tokens:
        _stop_for_budget(ep)


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


def rollout(
    envs: Sequence[AgentEnv],
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
) -> list[Trajectory]:
    """Play ``jobs`` (one env each from ``envs``) in lockstep; trajectories come back in job order."""
    if len(envs) < len(jobs):
        raise ValueError(f"{len(jobs)} jobs but only {len(envs)} environments")
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
    for ep in episodes:
        _reset(ep, chat, limits)
    stats.env_s += time.perf_counter() - t0

    turn = 0
    with ThreadPoolExecutor(max_workers=max(1, env_workers), thread_name_prefix="agentgym-env") as pool:
        while True:
            active = [ep for ep in episodes if not ep.done]
            if not active:
                break
            turn += 1
            budgets = [min(limits.max_turn_tokens, limits.max_total_tokens - ep.context.length) for ep in active]
            t0 = time.perf_counter()
            params = SamplingParams(
                max_tokens=budgets,
                temperature=limits.temperature,
                top_k=limits.top_k,
                seed=seed * 7919 + turn,
                stop_ids=tuple(sorted(chat.stop_ids)),
            )
            completions = _generate(engine, [ep.context.ids() for ep in active], params)
            stats.generation_s += time.perf_counter() - t0
            stats.turns += len(active)

            t0 = time.perf_counter()
            stepping: list[tuple[_Episode, Completion, str]] = []
            for ep, c in zip(active, completions, strict=True):
                if isinstance(c, BaseException):
                    _fail(ep, "engine_error", c)
                    continue
                trainable = limits.temperature > 0  # greedy (evaluation) logprobs are never trained on
                if not c.ids or (
                    trainable and (len(c.logprobs) != len(c.ids) or not all(math.isfinite(x) for x in c.logprobs))
                ):
                    _fail(
                        ep,
                        "engine_error",
                        f"the engine returned {len(c.ids)} ids with {len(c.logprobs)} log-probs, "
                        f"not all finite; sampling with temperature > 0 gives finite log-probs",
                    )
                    continue
                try:
                    ep.context.add_sampled(c.ids, c.logprobs, turn)
                    text = chat.decode(c.ids)
                except Exception as e:
                    _fail(ep, "template_error", e)
                    continue
                stats.sampled_tokens += len(c.ids)
                stepping.append((ep, c, text))
            texts = [t for _, _, t in stepping]
            eps = [ep for ep, _, _ in stepping]
            results = (
                list(pool.map(_step_env, eps, texts))
                if env_workers > 1
                else [_step_env(e, t) for e, t in zip(eps, texts, strict=True)]
            )
            for (ep, c, text), result in zip(stepping, results, strict=True):
                _apply_step(ep, c, text, result, limits, turn)
            stats.env_s += time.perf_counter() - t0

    for ep in episodes:
        try:
            ep.traj.messages = [] if ep.reset_failed else ep.env.messages
        except Exception:
            ep.traj.messages = []
        ep.traj.segments = ep.tokens.segments if ep.tokens else []
        ep.traj.metadata["finish_reasons"] = [s.finish_reason for s in ep.traj.steps]
        ep.traj.metadata["num_tokens"] = ep.tokens.length if ep.tokens else 0
        _check_rewards(ep.traj)
    return [ep.traj for ep in episodes]
