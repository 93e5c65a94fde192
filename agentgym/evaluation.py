"""Evaluation on held-out tasks: pass@k, reward, turns and why episodes ended.

``evaluate(...)`` runs ``samples`` episodes per task and returns an :class:`EvalReport`;
with ``out_dir`` it writes each episode to ``trajectories.jsonl`` as it finishes (one
``write`` per line on an ``O_APPEND`` descriptor), and at the end ``metrics.json``,
``summary.md`` and ``rewards.png``. ``resume=True`` keeps the finished episodes of an
interrupted or partly failed run in the same directory (same env, policy, tasks, samples
and seed) and runs only the missing and infrastructure-failed ones; the final files are
the same as those of an uninterrupted run.

Rules a user can check:

* pass@k uses the unbiased estimator over the tasks with at least k *valid* samples
  (an infrastructure failure is not a sample); the tasks left out are reported by id.
  Asking for k > samples is an error, not a silent pass@1.
* ``mean_*`` metrics are over valid episodes; infrastructure failures are counted apart.

Not covered: two processes evaluating into one directory at once; episodes whose outcome
depends on wall-clock time (a resumed run then differs as a rerun would).
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentgym.policies import Policy
from agentgym.rollout import AnyEnvSource, Backend, Job, collect, select_tasks
from agentgym.trajectory import Trajectory

if TYPE_CHECKING:
    import gymnasium as gym

RUN_FILE = "eval.json"
TRAJECTORIES = "trajectories.jsonl"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021, "Evaluating LLMs trained on code")."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def reward_component_means(trajs: Sequence[Trajectory]) -> dict[str, float]:
    """Each reward component's per-episode sum (over turns), averaged over the episodes that report it.

    Verifier, judge, reward-model and process components stay apart, so an evaluation shows what each source gave.
    """
    sums: dict[str, list[float]] = defaultdict(list)
    for t in trajs:
        totals: dict[str, float] = defaultdict(float)
        for s in t.steps:
            for name, v in s.reward_components.items():
                totals[name] += float(v)
        for name, v in totals.items():
            sums[name].append(v)
    return {name: float(sum(vs) / len(vs)) for name, vs in sorted(sums.items())}


@dataclass
class EvalReport:
    """Metrics of a set of evaluation episodes (``tasks``: every task asked for, in order)."""

    env_id: str
    policy: str
    trajectories: list[Trajectory]
    ks: Sequence[int] = (1,)
    tasks: Sequence[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tasks is None:
            self.tasks = list(dict.fromkeys(t.task_id for t in self.trajectories))
        self.valid: dict[str, list[Trajectory]] = {task: [] for task in self.tasks}
        for t in self.trajectories:
            if not t.infra_failure:
                self.valid.setdefault(t.task_id, []).append(t)

    def pass_at(self, k: int) -> dict[str, Any]:
        """pass@k over the tasks with >= k valid samples: value (None when no task has), used and dropped tasks."""
        used = {task: ts for task, ts in self.valid.items() if len(ts) >= k}
        dropped = [{"task_id": task, "valid_samples": len(ts)} for task, ts in self.valid.items() if len(ts) < k]
        scores = [pass_at_k(len(ts), sum(t.success for t in ts), k) for ts in used.values()]
        return {"value": _mean(scores), "tasks": len(used), "dropped": len(dropped), "dropped_tasks": dropped}

    def per_task(self) -> dict[str, dict[str, Any]]:
        """Episodes, valid samples, successes and mean rewards of each task."""
        all_by_task: dict[str, list[Trajectory]] = defaultdict(list)
        for t in self.trajectories:
            all_by_task[t.task_id].append(t)
        out = {}
        for task, ts in self.valid.items():
            out[task] = {
                "episodes": len(all_by_task.get(task, [])),
                "valid": len(ts),
                "successes": sum(t.success for t in ts),
                "mean_reward": _mean([t.reward for t in ts]),
                "mean_outcome": _mean([t.outcome_reward or 0.0 for t in ts]),
            }
        return out

    def metrics(self) -> dict[str, Any]:
        """Everything ``metrics.json`` holds: plain JSON, no timings (a rerun gives the same)."""
        ts = self.trajectories
        valid = [t for task_ts in self.valid.values() for t in task_ts]
        pass_at = {str(k): self.pass_at(k) for k in self.ks}
        errors: Counter[str] = Counter()
        for t in ts:
            if t.steps:
                errors.update(t.steps[-1].info.get("error_counts", {}))
        return {
            "env": self.env_id,
            "policy": self.policy,
            "config": self.config,
            "tasks": len(self.valid),
            "episodes": len(ts),
            "valid_episodes": len(valid),
            "infra_failures": sum(t.infra_failure for t in ts),
            **{f"pass@{k}": v["value"] for k, v in pass_at.items()},
            "pass_at": pass_at,
            "success_rate": _mean([float(t.success) for t in valid]),
            "mean_reward": _mean([t.reward for t in valid]),
            "mean_outcome": _mean([t.outcome_reward or 0.0 for t in valid]),
            "mean_turns": _mean([t.num_turns for t in valid]),
            "reward_components": reward_component_means(valid),
            "termination_reasons": dict(sorted(Counter(str(t.termination_reason) for t in ts).items())),
            "tool_errors": dict(sorted(errors.items())),
            "per_task": self.per_task(),
        }

    def to_markdown(self) -> str:
        """``summary.md``: the headline metrics as a table, then pass@k and why episodes ended."""
        m = self.metrics()
        rows = [f"# Evaluation: {m['env']} with {m['policy']}", "", "| metric | value |", "|---|---|"]
        for key in (
            "tasks",
            "episodes",
            "valid_episodes",
            "infra_failures",
            *[f"pass@{k}" for k in self.ks],
            "success_rate",
            "mean_reward",
            "mean_outcome",
            "mean_turns",
        ):
            rows.append(f"| {key} | {_fmt(m[key])} |")
        notes = []
        for k, p in m["pass_at"].items():
            if p["dropped"]:
                ids = ", ".join(f"{d['task_id']} ({d['valid_samples']})" for d in p["dropped_tasks"][:20])
                more = f", ... ({p['dropped'] - 20} more)" if p["dropped"] > 20 else ""
                notes.append(
                    f"- pass@{k} is over {p['tasks']} tasks; {p['dropped']} dropped with fewer than {k} valid "
                    f"samples (task (valid samples)): {ids}{more}"
                )
        if notes:
            rows += ["", *notes]
        if m["reward_components"]:
            rows += ["", "| reward component (episode sum, mean) | value |", "|---|---|"]
            rows += [f"| {name} | {_fmt(v)} |" for name, v in m["reward_components"].items()]
        rows += ["", "| termination reason | episodes |", "|---|---|"]
        rows += [f"| {r} | {n} |" for r, n in sorted(m["termination_reasons"].items(), key=lambda x: (-x[1], x[0]))]
        if m["tool_errors"]:
            rows += ["", "| tool error | count |", "|---|---|"] + [
                f"| {e} | {n} |" for e, n in m["tool_errors"].items()
            ]
        rows += ["", "| task | valid / episodes | successes | mean reward |", "|---|---|---|---|"]
        rows += [
            f"| {task} | {s['valid']} / {s['episodes']} | {s['successes']} | {_fmt(s['mean_reward'])} |"
            for task, s in m["per_task"].items()
        ]
        return "\n".join(rows) + "\n"

    def save(self, out_dir: str | Path) -> Path:
        """Write trajectories.jsonl (in job order), metrics.json, summary.md and rewards.png into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_write(out / TRAJECTORIES, "".join(t.to_json() + "\n" for t in self.trajectories))
        _atomic_write(out / "metrics.json", json.dumps(self.metrics(), indent=2, allow_nan=False) + "\n")
        _atomic_write(out / "summary.md", self.to_markdown())
        self._plot(out / "rewards.png")
        return out

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        axes[0].hist([t.reward for t in self.trajectories if not t.infra_failure], bins=20, color="#4472c4")
        axes[0].set(title="episode reward (valid episodes)", xlabel="reward", ylabel="episodes")
        reasons = Counter(str(t.termination_reason) for t in self.trajectories)
        axes[1].barh(list(reasons), list(reasons.values()), color="#ed7d31")
        axes[1].set(title="termination reason")
        p1 = self.pass_at(1)["value"]
        fig.suptitle(f"{self.env_id} — {self.policy} — pass@1 {_fmt(p1)}")
        fig.tight_layout()
        tmp = path.with_name(path.name + ".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class EpisodeLog:
    """``trajectories.jsonl`` of a run directory, appended one whole line per finished episode."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> list[Trajectory]:
        """The complete episodes on file; a line cut by a crash (the last one) is ignored."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # the writer died mid-line
            try:
                out.append(Trajectory.from_json(line))
            except (ValueError, TypeError, KeyError):
                continue
        return out

    def rewrite(self, trajectories: Sequence[Trajectory]) -> None:
        """Replace the file with ``trajectories``, atomically."""
        _atomic_write(self.path, "".join(t.to_json() + "\n" for t in trajectories))

    def append(self, traj: Trajectory) -> None:
        """Add one episode as a single ``write`` of a whole line, synced to disk."""
        data = (traj.to_json() + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def _job_key(job: Job) -> list[int | str]:
    return [job.index, job.task_id, job.seed]


def evaluate(
    env: AnyEnvSource,
    policy: Policy | str,
    *,
    split: str = "test",
    num_tasks: int | None = None,
    tasks: Sequence[str] | None = None,
    samples: int = 1,
    ks: Sequence[int] = (1,),
    num_workers: int = 4,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    backend: Backend = "thread",
    address: str | None = None,
    server: str | None = None,
    token: str | None = None,
) -> EvalReport:
    """Run ``samples`` episodes per held-out task and compute pass@k for each k.

    With ``out_dir``, episodes are saved as they finish and the report is written there;
    ``resume`` continues a run in ``out_dir`` (see the module docstring); ``overwrite``
    starts over in a directory that already holds episodes.

    ``backend``/``address``: where episodes run, as for :func:`~agentgym.rollout.collect`
    (threads here, or Ray actors); the report is the same either way. ``server``: the URL of
    an ``agentgym serve`` server that makes the environments (``env`` is then an id, made
    there with its ``env_kwargs``; ``token`` is the server's bearer token); the task list
    comes from the server's environment, or from the id's local registration when the
    server does not list its tasks.
    """
    ks = tuple(sorted({int(k) for k in ks})) or (1,)
    if samples < 1:
        raise ValueError(f"--samples must be at least 1, got {samples}")
    if min(ks) < 1:
        raise ValueError(f"k must be at least 1, got {min(ks)}")
    if max(ks) > samples:
        raise ValueError(
            f"pass@{max(ks)} needs at least {max(ks)} samples per task but --samples is {samples}; "
            f"run with --samples {max(ks)} or more, or drop -k {max(ks)}"
        )
    if resume and out_dir is None:
        raise ValueError("--resume needs --out DIR: the directory of the evaluation to continue")
    env_id = env if isinstance(env, str) else "custom"
    name = policy if isinstance(policy, str) else getattr(policy, "name", type(policy).__name__)
    kwargs = {"split": split, **(env_kwargs or {})}
    source: AnyEnvSource = env
    if server is not None:
        if not isinstance(env, str):
            raise ValueError("server= makes the environments on the server: pass the environment id, not a factory")
        source = functools.partial(_remote_env, server, env, token, kwargs)
    if tasks is None:
        tasks = _task_list(env, source, kwargs, num_tasks, seed)
    tasks = list(tasks)
    config = {
        "env": env_id,
        "policy": name,
        "split": split,
        "env_kwargs": env_kwargs or {},
        "samples": samples,
        "seed": seed,
        "tasks": tasks,
    }
    config = json.loads(json.dumps(config, default=repr))  # plain JSON, as it is compared when resuming

    done: dict[int, Trajectory] = {}
    log: EpisodeLog | None = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        log = EpisodeLog(out / TRAJECTORIES)
        previous = _read_config(out / RUN_FILE)
        has_episodes = (out / TRAJECTORIES).exists() and (out / TRAJECTORIES).stat().st_size > 0
        if resume and previous is not None:
            _check_same_run(previous, config, out)
            for t in log.read():
                key = t.metadata.get("eval_job")
                if key is not None and not t.infra_failure:
                    done[key[0]] = t
        elif resume and has_episodes:
            raise ValueError(
                f"--resume: {out} has episodes but no readable {RUN_FILE}, so they cannot be matched to this "
                f"run; use --overwrite or another --out"
            )
        elif has_episodes and not overwrite:
            raise ValueError(
                f"{out} already holds an evaluation; pass --resume to continue it, --overwrite to start "
                f"over, or choose another --out"
            )
        _atomic_write(out / RUN_FILE, json.dumps(config, indent=2) + "\n")
        log.rewrite([done[i] for i in sorted(done)])  # drops cut lines, failed and stale episodes

    new: dict[int, Trajectory] = {}

    def finished(job: Job, traj: Trajectory) -> None:
        traj.metadata["eval_job"] = _job_key(job)
        new[job.index] = traj
        if log is not None:
            log.append(traj)

    collect(
        source,
        policy,
        tasks=tasks,
        group_size=samples,
        num_workers=num_workers,
        seed=seed,
        env_kwargs=kwargs if isinstance(source, str) else None,
        progress=progress,
        desc=f"eval {split}",
        skip=lambda job: job.index in done and done[job.index].metadata["eval_job"] == _job_key(job),
        on_result=finished,
        backend=backend,
        address=address,
    )
    merged = {**done, **new}
    report = EvalReport(env_id, name, [merged[i] for i in sorted(merged)], ks=ks, tasks=tasks, config=config)
    if out_dir is not None:
        report.save(out_dir)
    return report


def _remote_env(url: str, env_id: str, token: str | None, kwargs: dict[str, Any]) -> gym.Env[Any, Any]:
    """A :class:`~agentgym.server.RemoteEnv` of ``env_id`` on ``url`` (module level, so a partial of it pickles)."""
    from agentgym.server import RemoteEnv

    make_remote: Callable[..., Any] = RemoteEnv  # RemoteEnv(url, env_id, *, token=None, timeout=..., **kwargs)
    auth = {"token": token} if token is not None else {}
    env = make_remote(url, env_id, **auth, **kwargs)
    if not getattr(env, "env_id", None):
        env.env_id = env_id  # trajectories name the environment, not the proxy class
    remote: gym.Env[Any, Any] = env
    return remote


def _task_list(
    env: AnyEnvSource, source: AnyEnvSource, kwargs: dict[str, Any], num_tasks: int | None, seed: int
) -> list[str]:
    """The tasks to evaluate: drawn from ``source``'s split, or from the id's local registration if it lists none."""
    from agentgym.registry import make

    probe = make(source, **kwargs) if isinstance(source, str) else source()
    try:
        return select_tasks(probe, num_tasks, seed)
    except ValueError:
        if source is env or not isinstance(env, str):
            raise
    finally:
        probe.close()
    local = make(env, **kwargs)
    try:
        return select_tasks(local, num_tasks, seed)
    finally:
        local.close()


def _read_config(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text())
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def _check_same_run(previous: dict[str, Any], config: dict[str, Any], out: Path) -> None:
    """A resumed run must be the same evaluation, or its report would mix two."""
    diffs = [
        f"{k}: {previous.get(k)!r} on file, {v!r} now"
        for k, v in config.items()
        if k != "tasks" and previous.get(k) != v
    ]
    if previous.get("tasks") != config["tasks"]:
        diffs.append("the task list differs (check --tasks, --split and --seed)")
    if diffs:
        raise ValueError(
            f"--resume: {out} holds another evaluation ({'; '.join(diffs)}); use the same arguments, "
            f"or --overwrite / another --out to start a new one"
        )
