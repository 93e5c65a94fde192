"""Task validation: the oracle must score 1 and doing nothing must score 0, on every task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentgym.rollout import EnvSource, collect
from agentgym.trajectory import Trajectory


@dataclass
class TaskCheck:
    """The oracle's and the no-op policy's outcome on one task, and what is wrong with them."""

    task_id: str
    oracle: float | None
    noop: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the task has no problem."""
        return not self.problems


@dataclass
class ValidationReport:
    """The checks of every task validated."""

    checks: list[TaskCheck]

    @property
    def ok(self) -> bool:
        """Whether every task passed."""
        return all(c.ok for c in self.checks)

    @property
    def broken(self) -> list[TaskCheck]:
        """The checks with problems."""
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str:
        """A count line, then one line per broken task (the first 50)."""
        lines = [f"{len(self.checks)} tasks checked, {len(self.broken)} broken"]
        for c in self.broken[:50]:
            lines.append(f"  BROKEN {c.task_id}: " + "; ".join(c.problems))
        return "\n".join(lines)


def _check(oracle: Trajectory, noop: Trajectory) -> TaskCheck:
    check = TaskCheck(oracle.task_id, oracle.outcome_reward, noop.outcome_reward)
    for name, traj, want in (("oracle", oracle, 1.0), ("noop", noop, 0.0)):
        if traj.infra_failure:
            error = traj.metadata.get("error") or (traj.steps[-1].info.get("infra_error") if traj.steps else "")
            check.problems.append(f"{name} hit an infrastructure failure ({traj.termination_reason}: {error})")
        elif traj.outcome_reward is None or abs(traj.outcome_reward - want) > 1e-9:
            check.problems.append(
                f"{name} scored {traj.outcome_reward} (expected {want:g}, ended by {traj.termination_reason})"
            )
    return check


def validate(
    env: EnvSource,
    *,
    split: str = "all",
    task_ids: Sequence[str] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    num_workers: int = 2,
    limit: int | None = None,
    progress: bool = True,
) -> ValidationReport:
    """Run the ``oracle`` and ``noop`` policies once on every task of ``split``."""
    kwargs = {"split": split, **(env_kwargs or {})}
    if task_ids is None:
        from agentgym.registry import make

        probe = make(env, **kwargs) if isinstance(env, str) else env()
        try:
            task_ids = probe.tasks.ids
        finally:
            probe.close()
    task_ids = list(task_ids)[:limit] if limit else list(task_ids)
    runs = {}
    for policy in ("oracle", "noop"):
        runs[policy] = collect(
            env,
            policy,
            tasks=task_ids,
            num_workers=num_workers,
            env_kwargs=kwargs if isinstance(env, str) else None,
            progress=progress,
            desc=f"validate ({policy})",
        )
    return ValidationReport([_check(o, n) for o, n in zip(runs["oracle"], runs["noop"], strict=True)])
