"""The errors every layer shares, so that each layer can catch the others' by type.

agentgym tells two kinds of failure apart:

* **The model's mistakes** (a malformed tool call, a wrong argument, a failing test) are
  never exceptions that leave an environment: they become messages the model sees.
* **The machinery's failures** (a sandbox that died, a grader that could not run, a
  browser that crashed) are :class:`InfrastructureError`. An environment that catches one
  ends the episode with ``info["termination_reason"] = "infra_error"`` and
  ``info["infra_failure"] = True``; evaluation counts it apart from task failures and the
  trainer masks the episode instead of learning from a reward of 0.

A learned or AI reward (a judge, a reward model) that cannot score an episode raises
:class:`RewardError`: the environment ends the episode with
``termination_reason="reward_error"`` (and ``infra_failure``), so the trainer masks it and
counts it by that reason instead of training on a made-up 0 or 1.

Who raises what: sandbox backends raise :class:`SandboxError` (browsers its subclass
``BrowserCrashed``); graders raise :class:`GraderError` when they cannot reach a verdict
for reasons outside the model's control; a tool whose own machinery fails raises
:class:`InfrastructureError` (or lets a :class:`SandboxError` through). Catch them by type
(``except InfrastructureError``), never by class name: a subclass defined anywhere counts.

This module imports nothing, so ``agentgym.sandboxes`` (which may import nothing else of
the core) can raise these too; ``tests/test_architecture.py`` keeps it that way.
"""

from __future__ import annotations

__all__ = ["AgentGymError", "GraderError", "InfrastructureError", "RewardError", "SandboxError"]


class AgentGymError(Exception):
    """Base class of the errors agentgym raises on purpose."""


class InfrastructureError(AgentGymError, RuntimeError):
    """The environment's machinery failed, not the model.

    Raise it from a tool, a grader or a sandbox backend; the environment ends the episode
    with ``termination_reason="infra_error"`` instead of scoring the model for it.
    """


class SandboxError(InfrastructureError):
    """A sandbox itself failed (its helper died, its channel broke, it could not start).

    Not raised for the agent's command failing: a non-zero exit code or a timeout is an
    :class:`~agentgym.sandboxes.ExecResult`.
    """


class GraderError(InfrastructureError):
    """A grader could not produce a reward for reasons outside the model's control."""


class RewardError(InfrastructureError):
    """A reward function could not score (a judge's verdict unparseable after retries, a judge or reward model failed).

    The environment ends the episode with ``termination_reason="reward_error"``: the episode is masked and counted,
    never scored with a made-up value.
    """
