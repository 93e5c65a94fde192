"""``train_sft(config)``: supervised fine-tuning on whole episodes, with expert-iteration rounds.

The algorithm. Round 0 collects ``episodes`` training episodes from ``source``:

* ``oracle``: the environment's reference solutions (``env.oracle_turns``), text only;
* ``rollouts``: the current model's own episodes, ``samples_per_task`` per task, sampled at
  ``rollout_temperature``.

Every later round (``rounds`` > 1) is a round of rejection-sampling fine-tuning / expert
iteration (Yuan et al. 2023, "Scaling relationship on learning mathematical reasoning with
large language models"; Anthony et al. 2017, "Thinking fast and slow with deep learning and
tree search"): the model of the previous round plays fresh training tasks and its episodes
with ``reward >= min_reward`` become the data. Episodes of any round are kept only when their
reward reaches ``min_reward``, are not infrastructure failures and fit ``max_total_tokens``.
With ``keep_data`` a round trains on the data of every round so far, else on its own.

Each round then makes ``epochs`` passes over its data in seeded random order, ``batch_size``
episodes per optimizer step (AdamW), minimising :func:`sft_loss`: the mean negative
log-likelihood of the assistant tokens (the sequences of
:func:`agentgym.trainer.sequences.trajectory_sequence`, token-exact as the policy sees them).

Deviations and choices, on purpose:

* the loss is normalised per token over the whole optimizer step (every assistant token
  weighs the same, as in the GRPO loss), not per sequence; micro-batching does not change it;
* the end-of-turn token of each assistant turn is trained on (the model must learn to stop);
* rejection keeps every distinct successful episode of a task, not only the best one;
* the model, engine, environments and held-out evaluation are the GRPO trainer's
  (:class:`agentgym.trainer.loop.Trainer`), so a before/after evaluation here is the same
  measurement as a GRPO run's with the same seed and ``eval_tasks``.

Checkpoints are the GRPO trainer's (:mod:`agentgym.trainer.checkpoint`): a full run's
``checkpoints/step_N`` loads as ``GRPOConfig(model=...)``; a LoRA run also writes
``merged/``, the adapter merged into the base weights, and returns that.
A crashed run resumes from its latest checkpoint (``resume="auto"``): the data of each round is
saved before the round trains (``data/round_R.jsonl``; every episode played, rejected ones
included, in ``data/round_R.played.jsonl``) and reused, so the resumed run sees the same batches.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.rollout import collect, plan_jobs
from agentgym.trainer import checkpoint as ckpt
from agentgym.trainer.config import GRPOConfig
from agentgym.trainer.loop import Trainer, tasks_for_step
from agentgym.trainer.metrics import MetricsLog, resume_logs
from agentgym.trainer.rollout import RolloutStats
from agentgym.trainer.sequences import trajectory_sequence, turn_texts
from agentgym.trainer.tokens import Sequence1D
from agentgym.trajectory import Trajectory, load_jsonl, save_jsonl

__all__ = [
    "SFTConfig",
    "SFTTrainer",
    "add_arguments",
    "keep_episodes",
    "run",
    "sft_loss",
    "train_sft",
    "well_formed_rate",
]


@dataclass
class SFTConfig:
    """Every knob of an SFT run; the docstring under each field is its ``--help`` text."""

    # ----- what to train on ---------------------------------------------------------
    env: str = "agentgym/ToolUse-v0"
    """Environment id (any registered agentgym env with oracle turns for ``source=oracle``)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``agentgym.make`` (JSON on the CLI)."""
    model: str = "tiny"
    """Model: ``tiny``, ``smollm2`` (SmolLM2-135M-Instruct from the local GGUF), a local path or a hub id."""
    output_dir: str = "runs/sft"
    """Where metrics, round data, checkpoints and the merged model go."""
    seed: int = 0
    """Seed of task choice, data order and sampling; a run is a function of it."""

    # ----- data -----------------------------------------------------------------------
    source: Literal["oracle", "rollouts"] = "oracle"
    """Round 0's data: the environment's reference solutions, or the model's own rollouts filtered by reward."""
    episodes: int = 64
    """Episodes collected per round (training-split tasks, new ones each round)."""
    rounds: int = 1
    """Rounds of collect-then-train; rounds after the first are expert iteration on the model's own rollouts."""
    min_reward: float = 1.0
    """Keep only episodes whose total reward reaches this (rejection sampling)."""
    samples_per_task: int = 4
    """Rollouts per task in rollout rounds (``episodes`` is split into groups of this size)."""
    rollout_temperature: float = 1.0
    """Sampling temperature of rollout rounds, > 0."""
    keep_data: bool = True
    """Train each round on the data of all rounds so far (else on its own round's data only)."""

    # ----- optimisation ---------------------------------------------------------------
    epochs: int = 2
    """Passes over a round's data."""
    batch_size: int = 8
    """Episodes per optimizer step."""
    micro_batch_size: int = 4
    """Episodes per forward/backward pass; the gradient is identical for any value (memory knob only)."""
    lr: float = 1e-4
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: off)."""
    lora_rank: int = 0
    """LoRA rank (0: train all parameters). Needs ``peft``."""
    lora_alpha: int = 32
    """LoRA alpha."""
    lora_targets: str = "all-linear"
    """LoRA target modules (comma-separated names or ``all-linear``)."""

    # ----- episodes -------------------------------------------------------------------
    max_turns: int | None = None
    """Assistant turns per episode (None: the environment's own limit)."""
    max_turn_tokens: int = 128
    """Tokens the policy may sample in one turn, in rollouts and evaluations."""
    max_total_tokens: int = 2048
    """Tokens of a whole episode; longer training sequences are left out."""

    # ----- run ------------------------------------------------------------------------
    device: str = "auto"
    """``cpu``, ``cuda`` or ``auto``."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training dtype."""
    threads: int = 2
    """torch CPU threads."""
    eval_tasks: int = 32
    """Held-out (``test`` split) tasks per evaluation (the GRPO trainer's choice for the same seed)."""
    eval_temperature: float = 0.0
    """Sampling temperature at evaluation (0: greedy)."""
    eval_before: bool = True
    """Evaluate before training as well (after every round always)."""
    save_every: int = 0
    """Save a checkpoint every N optimizer steps, and at the end of every round (0: only at round ends)."""
    resume: str | None = None
    """Resume from a checkpoint directory, or ``auto`` for the latest one in output_dir."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.source not in ("oracle", "rollouts"):
            raise ValueError(f"source must be oracle or rollouts; got {self.source!r}")
        if min(self.episodes, self.rounds, self.epochs, self.batch_size, self.micro_batch_size) < 1:
            raise ValueError("episodes, rounds, epochs, batch_size and micro_batch_size must be at least 1")
        if self.samples_per_task < 1 or not self.rollout_temperature > 0:
            raise ValueError(
                "samples_per_task must be >= 1 and rollout_temperature > 0 (greedy rollouts of one task are identical)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready values."""
        return dataclasses.asdict(self)

    def grpo_config(self) -> GRPOConfig:
        """The GRPO trainer's config for the same model, environment, limits and evaluation."""
        return GRPOConfig(
            env=self.env,
            env_kwargs=dict(self.env_kwargs),
            model=self.model,
            output_dir=self.output_dir,
            seed=self.seed,
            micro_batch_size=self.micro_batch_size,
            max_turns=self.max_turns,
            max_turn_tokens=self.max_turn_tokens,
            max_total_tokens=self.max_total_tokens,
            temperature=self.rollout_temperature,
            lr=self.lr,
            weight_decay=self.weight_decay,
            max_grad_norm=self.max_grad_norm,
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_targets=self.lora_targets,
            device=self.device,
            dtype=self.dtype,
            threads=self.threads,
            eval_tasks=self.eval_tasks,
            eval_temperature=self.eval_temperature,
            progress=self.progress,
        )


def sft_loss(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, n_tokens: float | None = None
) -> torch.Tensor:
    """Mean negative log-likelihood of the assistant tokens: ``sum(-log p(target) * mask) / n_tokens``.

    Normalised per token (not per sequence): every assistant token of the optimizer step
    weighs the same. Positions where ``mask`` is 0 (prompt, tool results, padding) take no
    part, whatever their logits.

    Args:
        logits: (B, T, V) next-token logits; ``logits[:, p]`` predicts ``targets[:, p]``.
        targets: (B, T) the next token ids.
        mask: (B, T) 1 on assistant target tokens, 0 elsewhere.
        n_tokens: the normaliser; default ``mask.sum()`` (pass the optimizer step's assistant
            tokens when summing over micro-batches).

    Returns:
        The scalar loss.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    nll = -torch.gather(logp, -1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    denom = float(mask.sum()) if n_tokens is None else float(n_tokens)
    return (nll * mask).sum() / max(denom, 1.0)


def keep_episodes(trajs: list[Trajectory], min_reward: float) -> list[Trajectory]:
    """The episodes rejection sampling keeps: ``reward >= min_reward``, no infrastructure failure, distinct texts.

    Of several episodes of one task with the same turn texts only the first is kept.
    """
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out: list[Trajectory] = []
    for t in trajs:
        if t.infra_failure or not t.steps or not t.reward >= min_reward:
            continue
        key = (t.task_id, tuple(turn_texts(t)))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def well_formed_rate(trajs: list[Trajectory]) -> float:
    """Fraction of assistant turns that made at least one tool call and no malformed one (NaN without turns).

    Read from each step's ``info`` (``tool_calls`` and ``tool_errors["malformed"]``), the same
    rule as the ``well_formed`` reward metric of :func:`agentgym.rewards.well_formed_calls`.
    """
    turns = [s for t in trajs for s in t.steps]
    if not turns:
        return float("nan")
    good = [
        int(s.info.get("tool_calls", 0)) > 0 and not (s.info.get("tool_errors") or {}).get("malformed") for s in turns
    ]
    return float(np.mean(good))


@dataclass
class _Example:
    """One training sequence, next-token aligned."""

    ids: torch.Tensor  # (L,)
    mask: torch.Tensor  # (L-1,) float, 1 where ids[p+1] is an assistant token

    @classmethod
    def of(cls, seq: Sequence1D) -> _Example:
        return cls(torch.from_numpy(seq.ids), torch.from_numpy(seq.trainable[1:].astype(np.float32)))


class SFTTrainer(Trainer):
    """The GRPO trainer's model, engine, environments and evaluation, trained by supervised steps."""

    def __init__(self, config: SFTConfig):
        self.sft = config
        super().__init__(config.grpo_config())
        self.out = Path(config.output_dir)

    # ----- data ---------------------------------------------------------------------------

    def round_tasks(self, round_index: int, n: int) -> list[str]:
        """``n`` training tasks for a round: consecutive slices of seeded permutations, new ones each round."""
        return tasks_for_step(self.train_ids, self.sft.seed, round_index, n)

    def collect_round(self, round_index: int) -> tuple[list[Trajectory], list[Trajectory]]:
        """Play the round's episodes; returns ``(all played, kept)``."""
        c = self.sft
        if round_index == 0 and c.source == "oracle":
            if self.chat.native_tools and self.chat.parser != "hermes":
                raise ValueError(
                    f"oracle turns are written as Hermes <tool_call> blocks, but {c.model}'s chat template asks for "
                    f"{self.chat.parser!r} calls; train from source='rollouts' or give the model a template "
                    "without tools= support"
                )
            played = collect(
                c.env,
                "oracle",
                tasks=self.round_tasks(round_index, c.episodes),
                seed=c.seed,
                env_kwargs=self.env_kwargs,
                num_workers=1,
                progress=False,
            )
        else:
            n_tasks = math.ceil(c.episodes / c.samples_per_task)
            seed = c.seed * 100_003 + 7_919 * (round_index + 1)
            jobs = plan_jobs(self.round_tasks(round_index, n_tasks), c.samples_per_task, seed)
            self.model.eval()
            played = self.play(self.train_envs, jobs, c.rollout_temperature, seed, RolloutStats())
        return played, keep_episodes(played, c.min_reward)

    def examples(self, trajs: list[Trajectory]) -> list[_Example]:
        """The training sequences of ``trajs`` (token-exact), those over ``max_total_tokens`` left out."""
        seqs = [trajectory_sequence(self.chat, t) for t in trajs]
        return [_Example.of(s) for s in seqs if len(s.ids) <= self.sft.max_total_tokens and s.trainable.any()]

    # ----- the update -------------------------------------------------------------------

    def sft_step(self, batch: list[_Example]) -> dict[str, float]:
        """One optimizer step on ``batch``, ``micro_batch_size`` episodes per forward pass."""
        c = self.sft
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        n_tokens = float(sum(float(e.mask.sum()) for e in batch))
        total = 0.0
        for m0 in range(0, len(batch), c.micro_batch_size):
            part = batch[m0 : m0 + c.micro_batch_size]
            ids, attention, targets, mask = _collate(part, int(self.tokenizer.pad_token_id), self.device)
            first = int(mask.any(0).nonzero()[0]) if bool(mask.any()) else mask.shape[1] - 1
            keep = ids.shape[1] - first  # logits from position `first` on: the rest predict no assistant token
            logits = self.model(input_ids=ids, attention_mask=attention, logits_to_keep=keep).logits[:, :-1]
            loss = sft_loss(logits, targets[:, first:], mask[:, first:], n_tokens)  # logits: (B, keep-1, V)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            total += float(loss.detach())
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm if c.max_grad_norm > 0 else float("inf"))
        self.optimizer.step()
        self.step += 1
        return {"loss": total, "grad_norm": float(norm), "trained_tokens": n_tokens, "episodes": float(len(batch))}

    @torch.no_grad()
    def data_loss(self, examples: list[_Example]) -> float:
        """The SFT loss of ``examples`` under the current weights (per token, no gradient)."""
        self.model.eval()
        n_tokens = float(sum(float(e.mask.sum()) for e in examples))
        total = 0.0
        for m0 in range(0, len(examples), self.sft.micro_batch_size):
            part = examples[m0 : m0 + self.sft.micro_batch_size]
            ids, attention, targets, mask = _collate(part, int(self.tokenizer.pad_token_id), self.device)
            logits = self.model(input_ids=ids, attention_mask=attention).logits[:, :-1]  # (B, L-1, V)
            total += float(sft_loss(logits, targets, mask, n_tokens))
        return total

    def evaluate(self) -> dict[str, Any]:
        """Held-out evaluation of the GRPO trainer (same tasks and seeds) plus the well-formed tool-call rate."""
        self.model.eval()
        return super().evaluate()

    def eval_metrics(self, trajs: list[Trajectory]) -> dict[str, float]:
        """The well-formed tool-call rate of the held-out episodes."""
        return {"well_formed": well_formed_rate(trajs)}

    def save_sft(self, round_index: int) -> Path:
        """Checkpoint the current step into ``checkpoints/step_<N>`` (with the SFT config and round)."""
        return ckpt.save(
            self.out / "checkpoints" / f"step_{self.step:06d}",
            self.model,
            self.optimizer,
            self.step,
            {"config": self.sft.to_dict(), "trainer": "sft", "round": round_index},
            tokenizer=self.tokenizer,
        )

    def merged(self) -> Path:
        """A LoRA run's adapter merged into a copy of the base weights, saved as a plain model in ``merged/``."""
        import copy

        path = self.out / "merged"
        tmp = path.with_name("merged.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        plain = copy.deepcopy(self.model).merge_and_unload()
        ckpt.save_model_dir(tmp, plain, self.tokenizer)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
        return path


def _collate(
    examples: list[_Example], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad: ids (B, L), attention (B, L), targets (B, L-1), mask (B, L-1)."""
    lengths = torch.tensor([len(e.ids) for e in examples])  # (B,)
    width = int(lengths.max())
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros(len(examples), width - 1)  # (B, L-1)
    for r, e in enumerate(examples):
        ids[r, : len(e.ids)] = e.ids
        mask[r, : len(e.ids) - 1] = e.mask
    attention = (torch.arange(width)[None, :] < lengths[:, None]).long()  # (B, L)
    return ids.to(device), attention.to(device), ids[:, 1:].to(device), mask.to(device)


def _batches(n: int, batch_size: int, epochs: int, seed: int, round_index: int) -> list[list[int]]:
    """Index batches of a round: each epoch a seeded permutation cut into ``batch_size`` pieces."""
    out: list[list[int]] = []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, round_index, epoch]).permutation(n).tolist()
        out += [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return out


def _round_data(trainer: SFTTrainer, round_index: int, resuming: bool, log: MetricsLog) -> list[Trajectory]:
    """The round's kept episodes: read back when resuming, else collected, logged and saved."""
    path = trainer.out / "data" / f"round_{round_index}.jsonl"
    if resuming and path.exists():
        return load_jsonl(path)
    t0 = time.perf_counter()
    played, kept = trainer.collect_round(round_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_jsonl(played, path.with_name(f"round_{round_index}.played.jsonl"))  # rejected ones too (DPO pairs)
    tmp = path.with_name(path.name + ".tmp")
    save_jsonl(kept, tmp)
    tmp.rename(path)  # last: its presence means the round's data is complete
    log.log(
        {
            "kind": "round",
            "step": trainer.step,
            "round": round_index,
            "source": trainer.sft.source if round_index == 0 else "rollouts",
            "played": len(played),
            "kept": len(kept),
            "played_success": float(np.mean([t.success for t in played])) if played else float("nan"),
            "played_reward": float(np.mean([t.reward for t in played])) if played else float("nan"),
            "kept_min_reward": min((t.reward for t in kept), default=float("nan")),
            "seconds": time.perf_counter() - t0,
        }
    )
    return kept


def train_sft(config: SFTConfig) -> dict[str, Any]:
    """Run SFT (and expert-iteration rounds) as configured.

    Returns:
        ``checkpoint`` (the final model directory, loadable as ``GRPOConfig(model=...)``),
        ``evals`` (held-out evaluations, first before training when ``eval_before``),
        ``rounds`` (per round: episodes played and kept, steps), ``step``, ``metrics``,
        ``output_dir`` and ``train`` (the per-step records).
    """
    c = config
    trainer = SFTTrainer(c)
    try:
        resume = ckpt.latest(c.output_dir) if c.resume == "auto" else (Path(c.resume) if c.resume else None)
        if resume is not None:
            trainer.restore(resume)
        else:
            shutil.rmtree(trainer.out / "data", ignore_errors=True)
        resume_logs(trainer.out, trainer.step if resume else None)
        log = MetricsLog(trainer.out / "metrics.jsonl", resume_step=trainer.step if resume else None)
        (trainer.out / "sft_config.json").write_text(json.dumps(c.to_dict(), indent=2))
        evals = [r for r in log.read() if r.get("kind") == "eval"]
        if c.eval_before and trainer.step == 0 and c.eval_tasks > 0:
            evals.append(trainer.evaluate())
            log.log(evals[-1])
        bar = tqdm(total=0, desc="SFT", disable=not c.progress, dynamic_ncols=True)
        data: list[Trajectory] = []
        rounds: list[dict[str, Any]] = []
        done = 0  # optimizer steps of the schedule so far (the resumed step skips that many)
        last_path: Path | None = resume
        saved_step = trainer.step if resume is not None else -1
        for r in range(c.rounds):
            kept = _round_data(trainer, r, resume is not None, log)
            data = [*data, *kept] if c.keep_data else kept
            examples = trainer.examples(data)
            schedule = _batches(len(examples), c.batch_size, c.epochs, c.seed, r)
            rounds.append({"round": r, "kept": len(kept), "examples": len(examples), "steps": len(schedule)})
            bar.total += len(schedule)
            bar.refresh()
            for batch in schedule:
                if done < trainer.step:  # already trained before the resume
                    done += 1
                    bar.update(1)
                    continue
                t0 = time.perf_counter()
                record = trainer.sft_step([examples[i] for i in batch])
                done += 1
                log.log(
                    {"kind": "train", "step": trainer.step, "round": r, **record, "seconds": time.perf_counter() - t0}
                )
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", round=r)
                if c.save_every and trainer.step % c.save_every == 0:
                    last_path, saved_step = trainer.save_sft(r), trainer.step
            if trainer.step != saved_step:  # the round trained here (or nothing is saved yet): checkpoint it
                last_path, saved_step = trainer.save_sft(r), trainer.step
                if c.eval_tasks > 0:
                    evals.append({**trainer.evaluate(), "round": r})
                    log.log(evals[-1])
        bar.close()
        final = trainer.merged() if c.lora_rank > 0 else last_path
        records = log.read()
        return {
            "checkpoint": str(final),
            "evals": evals,
            "rounds": rounds,
            "step": trainer.step,
            "metrics": str(log.path),
            "output_dir": str(trainer.out),
            "train": [x for x in records if x.get("kind") == "train"],
        }
    finally:
        trainer.close()


# ----- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`SFTConfig` field (``--min-reward 1``, ``--lora-rank 8``, ``--no-keep-data``, ...)."""
    from agentgym.trainer.cli import add_config_arguments

    add_config_arguments(parser, SFTConfig)


def config_from_args(args: argparse.Namespace) -> SFTConfig:
    """The config the flags of :func:`add_arguments` describe."""
    from agentgym.trainer.cli import config_fields

    return SFTConfig(**config_fields(args, SFTConfig))


def run(args: argparse.Namespace) -> int:
    """``agentgym sft``: check the env and model, train, print held-out results before and after."""
    import agentgym
    from agentgym.trainer.models import check_spec

    config = config_from_args(args)
    full = config.env if "/" in config.env else f"agentgym/{config.env}"
    envs = agentgym.list_envs()
    if full not in envs:
        raise ValueError(
            f"unknown environment {config.env!r}; registered: {', '.join(e.split('/', 1)[1] for e in envs)}"
        )
    config.env = full
    check_spec(config.model)
    result = train_sft(config)
    for e in result["evals"]:
        print(
            f"step {e['step']}: held-out success {e['success']:.3f}, well-formed tool calls {e['well_formed']:.3f} "
            f"on {e['tasks']} tasks"
        )
    for r in result["rounds"]:
        print(f"round {r['round']}: {r['kept']} episodes kept, {r['steps']} optimizer steps")
    print(f"checkpoint: {result['checkpoint']}")
    print(f"metrics: {result['metrics']}")
    return 0
