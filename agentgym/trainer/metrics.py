"""Metrics: one JSON line per step, a reward-curve PNG and a Markdown summary."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends ``{"step": ..., ...}`` records to ``metrics.jsonl``; on resume drops records past the resumed step."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            truncate_jsonl(self.path, lambda r: r.get("step", 0) <= resume_step)
        elif self.path.exists():
            self.path.unlink()

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (non-finite floats as ``null``, so the file stays valid JSON)."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(clean) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record on file, in order."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def truncate_jsonl(path: str | Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Rewrite a JSONL log with only the records ``keep`` accepts (atomically); returns how many were dropped.

    A torn last line (a crash mid-append) is dropped too. A missing file is left missing.
    """
    path = Path(path)
    if not path.exists():
        return 0
    kept: list[str] = []
    dropped = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if keep(record):
            kept.append(line)
        else:
            dropped += 1
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in kept))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return dropped


# Every log a run appends to, with the records that belong to steps 1..N: metrics records carry the
# number of steps done (``step``), trajectories the 0-based index of the step that sampled them.
APPENDED_LOGS: dict[str, Callable[[dict[str, Any], int], bool]] = {
    "metrics.jsonl": lambda r, n: r.get("step", 0) <= n,
    "trajectories.jsonl": lambda r, n: (r.get("metadata") or {}).get("step", 0) < n,
}


def resume_logs(output_dir: str | Path, resume_step: int | None) -> None:
    """Before a run appends: on resume at step N drop every record past N; on a fresh run remove the logs."""
    for name, belongs in APPENDED_LOGS.items():
        path = Path(output_dir) / name
        if resume_step is None:
            path.unlink(missing_ok=True)
        else:
            truncate_jsonl(path, _up_to(belongs, resume_step))


def _up_to(belongs: Callable[[dict[str, Any], int], bool], step: int) -> Callable[[dict[str, Any]], bool]:
    return lambda record: belongs(record, step)


def plot_rewards(records: Iterable[dict[str, Any]], path: str | Path, title: str = "GRPO") -> Path:
    """Reward per step (and held-out success at evaluations) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["reward"] for r in train], marker=".", label="train reward (mean)")
    if evals:
        ax.plot(
            [r["step"] for r in evals],
            [r["success"] for r in evals],
            marker="o",
            label=f"held-out success ({evals[-1].get('tasks')} tasks)",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("reward / success")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
