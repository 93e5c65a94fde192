"""Metrics: one JSON line per step, a reward-curve PNG and a Markdown summary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable


class MetricsLog:
    """Appends ``{"step": ..., ...}`` records to ``metrics.jsonl``; on resume drops records past the resumed step."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [r for r in self.read() if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif resume_step is None and self.path.exists():
            self.path.unlink()

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(clean) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


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
        ax.plot([r["step"] for r in evals], [r["success"] for r in evals], marker="o", label=f"held-out success ({evals[-1].get('tasks')} tasks)")
    ax.set_xlabel("step")
    ax.set_ylabel("reward / success")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
