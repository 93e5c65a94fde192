"""``agentgym rm train``: fit a reward model (pairwise) or a process reward model (pointwise).

The method, the formulas and the references are in :mod:`agentgym.trainer.reward_model`; this
module is the loop: load the rows (:mod:`agentgym.trainer.rm_data`), hold out a stable-hash
split, measure the held-out loss and accuracy, run AdamW over shuffled batches (one
``metrics.jsonl`` record per optimizer step), measure again, and save a standard
``AutoModelForSequenceClassification`` directory with ``agentgym_rm.json`` and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.trainer.reward_model import (
    META_FILE,
    Renderer,
    bradley_terry_loss,
    load_reward_model,
    pair_accuracy,
    pointwise_loss,
    position_scores,
    sequence_scores,
)
from agentgym.trainer.rm_data import (
    LabelledTranscript,
    PreferencePair,
    data_files,
    load_pairs,
    load_turn_labels,
    split,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["RMConfig", "add_arguments", "config_from_args", "run", "train_reward_model"]


# ----- training --------------------------------------------------------------------------------


@dataclass
class RMConfig:
    """Every knob of ``agentgym rm train``; the docstring under each field is its ``--help`` text."""

    model: str = "tiny"
    """The starting model: a causal LM spec (tiny, smollm2, a path, a hub id) or a reward model directory."""
    data: str = ""
    """JSONL of preference pairs, TRL conversational rows, labelled turns or agentgym trajectories; several files
    comma-separated (trajectories of all of them are paired together)."""
    output_dir: str = "runs/rm"
    """Where the reward model (save_pretrained), agentgym_rm.json, metrics.jsonl and metrics.json go."""
    objective: Literal["pairwise", "pointwise"] = "pairwise"
    """pairwise: Bradley-Terry on preference pairs (a reward model); pointwise: BCE on per-turn labels (a PRM)."""
    epochs: int = 1
    """Passes over the training examples."""
    lr: float = 1e-5
    """AdamW learning rate (constant)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    batch_size: int = 8
    """Pairs (pairwise) or transcripts (pointwise) per optimizer step."""
    max_length: int = 1024
    """Tokens kept per transcript; longer ones lose their beginning (the end of an episode is what is scored)."""
    test_fraction: float = 0.1
    """Fraction of examples held out (a stable hash of each example's content and the seed)."""
    seed: int = 0
    """Seed of the head's initialisation, the split, pairing and batch order."""
    margin: float = 0.0
    """Bradley-Terry margin: the chosen side should win by at least this (a row's own 'margin' overrides)."""
    center_coef: float = 0.0
    """Reward centring: adds center_coef * mean((r_c + r_r)^2) to the loss (0: off)."""
    min_margin: float = 0.5
    """Trajectory rows: the least reward gap of a pair of episodes of one task."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: off)."""
    device: str = "cpu"
    """cpu, cuda or auto."""
    threads: int = 2
    """torch CPU threads (0: torch's default)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if min(self.epochs, self.batch_size) < 1 or self.max_length < 2:
            raise ValueError("epochs and batch_size must be >= 1 and max_length >= 2")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction={self.test_fraction}: must be in [0, 1)")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr}: must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready values."""
        return dataclasses.asdict(self)


@dataclass
class _Example:
    """One training example as token ids: a pair (ids, other, margin) or a labelled transcript (ids, positions)."""

    ids: list[int]
    other: list[int] | None = None
    margin: float = 0.0
    positions: list[int] | None = None
    labels: list[float] | None = None


def _pair_examples(pairs: Sequence[PreferencePair], renderer: Renderer, margin: float) -> list[_Example]:
    return [
        _Example(
            renderer.ids(p.chosen, p.tools), renderer.ids(p.rejected, p.tools), margin if p.margin is None else p.margin
        )
        for p in pairs
    ]


def _turn_examples(items: Sequence[LabelledTranscript], renderer: Renderer) -> list[_Example]:
    """Each transcript's ids (left-truncated) and the positions of its turn prefixes ``s_1..s_T`` left after the cut."""
    out = []
    for it in items:
        found = renderer.turn_positions(it.messages, it.tools, fit=False)
        if found is None:
            raise ValueError(
                f"{it.source}: the chat template re-renders earlier messages when the transcript grows; "
                "per-turn scores need each prefix's tokens to start the whole transcript's"
            )
        ids, positions = found
        cut = max(0, len(ids) - renderer.max_length)
        kept = [(p - cut, y) for p, y in zip(positions[1:], it.turn_labels, strict=True) if p >= cut]
        if kept:
            out.append(_Example(ids[cut:], positions=[p for p, _ in kept], labels=[y for _, y in kept]))
    return out


def _batch_loss(model: Any, batch: Sequence[_Example], c: RMConfig, pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss, a, b)``: pairwise a/b = chosen/rejected scores; pointwise a/b = turn scores/labels."""
    import torch

    if c.objective == "pairwise":
        scores = sequence_scores(model, [e.ids for e in batch] + [e.other or [] for e in batch], pad_id)  # (2B,)
        chosen, rejected = scores[: len(batch)], scores[len(batch) :]
        margins = torch.tensor([e.margin for e in batch], device=scores.device)
        return bradley_terry_loss(chosen, rejected, margins, c.center_coef), chosen, rejected
    scores = position_scores(model, [e.ids for e in batch], [e.positions or [] for e in batch], pad_id)
    labels = torch.tensor([y for e in batch for y in e.labels or []], device=scores.device)
    return pointwise_loss(scores, labels), scores, labels


def _accuracy(c: RMConfig, a: Tensor, b: Tensor) -> float:
    if c.objective == "pairwise":
        return pair_accuracy(a, b)
    return float(((a > 0).float() == (b >= 0.5).float()).float().mean()) if len(a) else math.nan


def _evaluate(model: Any, examples: Sequence[_Example], c: RMConfig, pad_id: int) -> dict[str, float]:
    """Loss and accuracy over ``examples`` (no gradient); NaN for none."""
    import torch

    if not examples:
        return {"loss": math.nan, "accuracy": math.nan}
    was_training = model.training
    model.eval()
    a_all, b_all, losses = [], [], []
    with torch.no_grad():
        for i in range(0, len(examples), 2 * c.batch_size):
            batch = examples[i : i + 2 * c.batch_size]
            loss, a, b = _batch_loss(model, batch, c, pad_id)
            losses.append(float(loss) * len(a))
            a_all.append(a.cpu())
            b_all.append(b.cpu())
    model.train(was_training)
    a, b = torch.cat(a_all), torch.cat(b_all)
    return {"loss": sum(losses) / len(a), "accuracy": _accuracy(c, a, b)}


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def train_reward_model(config: RMConfig) -> dict[str, Any]:
    """Train a reward model (``pairwise``) or a process reward model (``pointwise``) as configured.

    Writes into ``output_dir``: the model (``save_pretrained`` + tokenizer), ``agentgym_rm.json``,
    ``metrics.jsonl`` (one record per optimizer step, and the evaluations) and ``metrics.json``.

    Returns:
        ``output_dir``, ``metrics`` (what ``metrics.json`` holds: ``test_accuracy_before``,
        ``test_loss_before``, ``train_accuracy``, ``train_loss``, ``test_accuracy``, ``test_loss``,
        ``train_examples``, ``test_examples``, ``steps``, ``objective``, ``accuracy`` (``pair`` or
        ``turn``)) and ``metrics_file`` (the JSONL).

    Raises:
        FileNotFoundError, ValueError: no data file, a bad row, or no training example.
    """
    import torch

    from agentgym.trainer.metrics import MetricsLog

    c = config
    if not c.data:
        raise ValueError("data: name a JSONL of preference pairs, labelled turns or trajectories (--data)")
    items: Sequence[PreferencePair | LabelledTranscript] = (
        load_pairs(c.data, min_margin=c.min_margin, seed=c.seed)
        if c.objective == "pairwise"
        else load_turn_labels(c.data)
    )
    train_items, test_items = split(items, c.test_fraction, c.seed)  # type: ignore[type-var]
    if c.threads > 0:
        torch.set_num_threads(c.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if c.device == "auto" else c.device
    model, tokenizer = load_reward_model(c.model, seed=c.seed, device=device)
    pad_id = int(tokenizer.pad_token_id)
    renderer = Renderer(tokenizer, c.max_length)

    def encode(xs: Sequence[Any]) -> list[_Example]:
        return _pair_examples(xs, renderer, c.margin) if c.objective == "pairwise" else _turn_examples(xs, renderer)

    train, test = encode(train_items), encode(test_items)
    if not train:
        raise ValueError(f"{c.data}: no training example left after the held-out split; lower --test-fraction")
    out = Path(c.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out / "metrics.jsonl")
    before = _evaluate(model, test, c, pad_id)
    log.log(_json_safe({"kind": "eval", "split": "test", "step": 0, **before}))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=c.lr, weight_decay=c.weight_decay
    )
    steps_per_epoch = math.ceil(len(train) / c.batch_size)
    bar = tqdm(total=c.epochs * steps_per_epoch, desc=f"RM ({c.objective})", disable=not c.progress, dynamic_ncols=True)
    model.train()
    step = 0
    for epoch in range(c.epochs):
        order = np.random.default_rng([c.seed, epoch]).permutation(len(train))
        for start in range(0, len(train), c.batch_size):
            t0 = time.perf_counter()
            batch = [train[int(i)] for i in order[start : start + c.batch_size]]
            optimizer.zero_grad(set_to_none=True)
            loss, a, b = _batch_loss(model, batch, c, pad_id)
            loss.backward()  # type: ignore[no-untyped-call]  # torch: unannotated
            params = [p for p in model.parameters() if p.requires_grad]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm)) if c.max_grad_norm > 0 else 0.0
            optimizer.step()
            step += 1
            record = {
                "kind": "train",
                "step": step,
                "epoch": epoch,
                "examples": len(batch),
                "loss": float(loss.detach()),
                "accuracy": _accuracy(c, a.detach(), b.detach()),
                "grad_norm": grad_norm,
                "time_step": time.perf_counter() - t0,
            }
            log.log(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.2f}")
    bar.close()
    after_train, after_test = _evaluate(model, train, c, pad_id), _evaluate(model, test, c, pad_id)
    log.log(_json_safe({"kind": "eval", "split": "train", "step": step, **after_train}))
    log.log(_json_safe({"kind": "eval", "split": "test", "step": step, **after_test}))
    metrics = _json_safe(
        {
            "objective": c.objective,
            "accuracy": "pair" if c.objective == "pairwise" else "turn",
            "train_examples": len(train),
            "test_examples": len(test),
            "steps": step,
            "test_accuracy_before": before["accuracy"],
            "test_loss_before": before["loss"],
            "train_accuracy": after_train["accuracy"],
            "train_loss": after_train["loss"],
            "test_accuracy": after_test["accuracy"],
            "test_loss": after_test["loss"],
        }
    )
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {
        "format": "transformers AutoModelForSequenceClassification, num_labels=1",
        "objective": c.objective,
        "max_length": c.max_length,
        "rendering": "chat template, whole transcript, no generation prompt; score at the last token; left truncation",
        "base_model": c.model,
        "config": c.to_dict(),
        "metrics": metrics,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"output_dir": str(out), "metrics": metrics, "metrics_file": str(log.path)}


# ----- command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``agentgym rm train``: one flag per :class:`RMConfig` field (``max_length`` -> ``--max-length``)."""
    from agentgym.trainer.cli import add_config_arguments

    sub = parser.add_subparsers(dest="rm_command", metavar="{train}", required=True)
    train = sub.add_parser(
        "train",
        help="fit a reward model (Bradley-Terry on pairs) or a process reward model (BCE on per-turn labels)",
        description="Every flag is an RMConfig field. The output directory loads with "
        "AutoModelForSequenceClassification.from_pretrained and as a RewardModelReward / ProcessRewardModel.",
    )
    add_config_arguments(train, RMConfig)


def config_from_args(args: argparse.Namespace) -> RMConfig:
    """The config the flags of :func:`add_arguments` describe."""
    from agentgym.trainer.cli import config_fields

    return RMConfig(**config_fields(args, RMConfig))


def _cell(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def run(args: argparse.Namespace) -> int:
    """``agentgym rm train``: check the inputs, train, print the held-out accuracy table and the output directory."""
    from agentgym.trainer.models import check_spec

    config = config_from_args(args)
    check_spec(config.model)
    missing = [str(p) for p in data_files(config.data or "")] if config.data else ["(none given)"]
    missing = [p for p in missing if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--data: no such file {', '.join(missing)} (JSONL of preference pairs or trajectories)"
        )
    result = train_reward_model(config)
    m = result["metrics"]
    what = f"{m['accuracy']} accuracy"
    print(f"{'':24}{'before':>8}{'after':>8}")
    print(f"{'held-out ' + what:24}{_cell(m['test_accuracy_before']):>8}{_cell(m['test_accuracy']):>8}")
    print(f"{'held-out loss':24}{_cell(m['test_loss_before']):>8}{_cell(m['test_loss']):>8}")
    print(f"{'train ' + what:24}{'-':>8}{_cell(m['train_accuracy']):>8}")
    print(f"{m['train_examples']} train / {m['test_examples']} held-out examples, {m['steps']} optimizer steps")
    print(
        f"reward model: {result['output_dir']} (AutoModelForSequenceClassification); metrics: {result['metrics_file']}"
    )
    return 0
