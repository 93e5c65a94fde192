"""Evaluation on held-out tasks: pass@k, reward, turns and why episodes ended."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agentgym.policies import Policy
from agentgym.rollout import EnvSource, collect
from agentgym.trajectory import Trajectory, save_jsonl


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021, "Evaluating LLMs trained on code")."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass
class EvalReport:
    env_id: str
    policy: str
    trajectories: list[Trajectory]
    ks: Sequence[int] = (1,)
    pass_at: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_task: dict[str, list[Trajectory]] = defaultdict(list)
        for t in self.trajectories:
            if not t.infra_failure:
                by_task[t.task_id].append(t)
        for k in self.ks:
            scores = [pass_at_k(len(ts), sum(t.success for t in ts), k) for ts in by_task.values() if len(ts) >= k]
            self.pass_at[k] = float(np.mean(scores)) if scores else 0.0

    @property
    def num_tasks(self) -> int:
        return len({t.task_id for t in self.trajectories})

    def metrics(self) -> dict[str, Any]:
        ts = self.trajectories
        return {
            "env": self.env_id,
            "policy": self.policy,
            "tasks": self.num_tasks,
            "episodes": len(ts),
            **{f"pass@{k}": v for k, v in self.pass_at.items()},
            "mean_reward": float(np.mean([t.reward for t in ts])) if ts else 0.0,
            "mean_outcome": float(np.mean([t.outcome_reward or 0.0 for t in ts])) if ts else 0.0,
            "mean_turns": float(np.mean([t.num_turns for t in ts])) if ts else 0.0,
            "infra_failures": sum(t.infra_failure for t in ts),
            "termination_reasons": dict(Counter(t.termination_reason for t in ts)),
            "tool_errors": dict(sum((Counter(t.steps[-1].info.get("error_counts", {})) for t in ts if t.steps), Counter())),
        }

    def to_markdown(self) -> str:
        m = self.metrics()
        rows = [f"# Evaluation: {m['env']} with {m['policy']}", "", "| metric | value |", "|---|---|"]
        for key in ("tasks", "episodes", *[f"pass@{k}" for k in self.ks], "mean_reward", "mean_outcome", "mean_turns", "infra_failures"):
            v = m[key]
            rows.append(f"| {key} | {v:.3f} |" if isinstance(v, float) else f"| {key} | {v} |")
        rows += ["", "| termination reason | episodes |", "|---|---|"]
        rows += [f"| {r} | {n} |" for r, n in sorted(m["termination_reasons"].items(), key=lambda x: -x[1])]
        if m["tool_errors"]:
            rows += ["", "| tool error | count |", "|---|---|"] + [f"| {e} | {n} |" for e, n in sorted(m["tool_errors"].items())]
        return "\n".join(rows) + "\n"

    def save(self, out_dir: str | Path) -> Path:
        """Write trajectories.jsonl, summary.md and rewards.png into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_jsonl(self.trajectories, out / "trajectories.jsonl")
        (out / "summary.md").write_text(self.to_markdown())
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        axes[0].hist([t.reward for t in self.trajectories], bins=20, color="#4472c4")
        axes[0].set(title="episode reward", xlabel="reward", ylabel="episodes")
        reasons = Counter(t.termination_reason for t in self.trajectories)
        axes[1].barh(list(map(str, reasons)), list(reasons.values()), color="#ed7d31")
        axes[1].set(title="termination reason")
        fig.suptitle(f"{self.env_id} — {self.policy} — pass@1 {self.pass_at.get(1, 0):.3f}")
        fig.tight_layout()
        fig.savefig(out / "rewards.png", dpi=100)
        plt.close(fig)
        return out


def evaluate(
    env: EnvSource,
    policy: Policy | str,
    *,
    split: str = "test",
    num_tasks: int | None = None,
    samples: int = 1,
    ks: Sequence[int] = (1,),
    num_workers: int = 4,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> EvalReport:
    """Run ``samples`` episodes per held-out task and compute pass@k for each k."""
    kwargs = {"split": split, **(env_kwargs or {})}
    trajs = collect(env, policy, num_tasks=num_tasks, group_size=samples, num_workers=num_workers, seed=seed,
                    env_kwargs=kwargs if isinstance(env, str) else None, progress=progress, desc=f"eval {split}")
    name = policy if isinstance(policy, str) else getattr(policy, "name", type(policy).__name__)
    return EvalReport(env if isinstance(env, str) else "custom", name, trajs, ks=tuple(k for k in ks if k <= samples) or (1,))
