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
truncations). An environment that raises ends its episode as ``env_error``, an
infrastructure failure (masked in training).
"""

from __future__ import annotations

import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from agentgym.env import AgentEnv
from agentgym.rollout import Job
from agentgym.trajectory import Step, Trajectory
from agentgym.trainer.engines.base import Engine, SamplingParams
from agentgym.trainer.tokens import ChatTokens, EpisodeTokens


@dataclass
class RolloutLimits:
    max_turn_tokens: int = 128
    max_total_tokens: int = 2048
    temperature: float = 1.0
    top_k: int = 0


@dataclass
class RolloutStats:
    generation_s: float = 0.0
    env_s: float = 0.0
    sampled_tokens: int = 0
    turns: int = 0


@dataclass
class _Episode:
    job: Job
    env: AgentEnv
    traj: Trajectory
    tokens: EpisodeTokens | None = None
    done: bool = False


class EnvPool:
    """Environments reused across batches (one per concurrent episode), closed together."""

    def __init__(self, factory: Callable[[], AgentEnv]):
        self.factory = factory
        self.envs: list[AgentEnv] = []

    def take(self, n: int) -> list[AgentEnv]:
        while len(self.envs) < n:
            self.envs.append(self.factory())
        return self.envs[:n]

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _finish(ep: _Episode, info: dict, terminated: bool, truncated: bool) -> None:
    ep.done = True
    ep.traj.terminated, ep.traj.truncated = terminated, truncated
    ep.traj.termination_reason = info.get("termination_reason")
    ep.traj.infra_failure = bool(info.get("infra_failure"))
    ep.traj.outcome_reward = info.get("outcome_reward")


def _stop_for_budget(ep: _Episode) -> None:
    """End an episode that ran out of tokens, graded the way its env grades truncations."""
    outcome: float | None = None
    infra = False
    if ep.env.grade_on_truncation:
        try:
            outcome, _ = ep.env.rubric.score_outcome(ep.env)
        except Exception as e:  # noqa: BLE001 - a grader failing is an infrastructure failure
            infra = True
            ep.traj.metadata["error"] = f"{type(e).__name__}: {e}"
    info = {"termination_reason": "token_budget", "infra_failure": infra, "outcome_reward": outcome}
    if ep.traj.steps:
        last = ep.traj.steps[-1]
        last.reward += float(outcome or 0.0)
        last.info.update(info)
    _finish(ep, info, False, True)


def _step_env(ep: _Episode, text: str) -> tuple[list, float, bool, bool, dict] | BaseException:
    try:
        return ep.env.step(text)
    except Exception as e:  # noqa: BLE001 - an env bug must not lose the whole batch
        return e


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
    stats = stats if stats is not None else RolloutStats()
    episodes: list[_Episode] = []
    t0 = time.perf_counter()
    for job, env in zip(jobs, envs, strict=False):
        obs, info = env.reset(seed=job.seed, options={"task_id": job.task_id})
        traj = Trajectory(env_id=env_id, task_id=info["task_id"], seed=job.seed, group_id=job.group_id, policy=policy_name,
                          tools=info["tools"], metadata={"split": info.get("split")})
        ep = _Episode(job, env, traj, EpisodeTokens(chat, obs))
        if ep.tokens.length >= limits.max_total_tokens:
            _stop_for_budget(ep)
        episodes.append(ep)
    if len(episodes) < len(jobs):
        raise ValueError(f"{len(jobs)} jobs but only {len(envs)} environments")
    stats.env_s += time.perf_counter() - t0

    turn = 0
    with ThreadPoolExecutor(max_workers=max(1, env_workers), thread_name_prefix="agentgym-env") as pool:
        while True:
            active = [ep for ep in episodes if not ep.done]
            if not active:
                break
            turn += 1
            budgets = [min(limits.max_turn_tokens, limits.max_total_tokens - ep.tokens.length) for ep in active]
            t0 = time.perf_counter()
            params = SamplingParams(max_tokens=budgets, temperature=limits.temperature, top_k=limits.top_k,
                                    seed=seed * 7919 + turn, stop_ids=tuple(sorted(chat.stop_ids)))
            completions = engine.generate([ep.tokens.ids() for ep in active], params)
            stats.generation_s += time.perf_counter() - t0
            stats.turns += len(active)

            t0 = time.perf_counter()
            texts = []
            for ep, c in zip(active, completions):
                ep.tokens.add_sampled(c.ids, c.logprobs, turn)
                stats.sampled_tokens += len(c.ids)
                texts.append(chat.decode(c.ids))
            results = list(pool.map(_step_env, active, texts)) if env_workers > 1 else [_step_env(e, t) for e, t in zip(active, texts)]
            for ep, c, text, result in zip(active, completions, texts, results):
                if isinstance(result, BaseException):
                    ep.traj.metadata["error"] = "".join(traceback.format_exception_only(type(result), result)).strip()
                    _finish(ep, {"termination_reason": "env_error", "infra_failure": True, "outcome_reward": None}, False, True)
                    continue
                obs, reward, terminated, truncated, info = result
                ep.traj.steps.append(Step(text, obs, reward, info["reward_components"], info, c.finish_reason))
                if terminated or truncated:
                    _finish(ep, info, terminated, truncated)
                    continue
                ep.tokens.add_env(ep.env.messages, turn)
                if ep.tokens.length >= limits.max_total_tokens:
                    _stop_for_budget(ep)
            stats.env_s += time.perf_counter() - t0

    for ep in episodes:
        ep.traj.messages = ep.env.messages
        ep.traj.segments = ep.tokens.segments if ep.tokens else []
        ep.traj.metadata["finish_reasons"] = [s.finish_reason for s in ep.traj.steps]
        ep.traj.metadata["num_tokens"] = ep.tokens.length if ep.tokens else 0
    return [ep.traj for ep in episodes]
