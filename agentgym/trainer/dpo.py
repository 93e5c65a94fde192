r"""``train_dpo(config)``: Direct Preference Optimization on pairs of agentgym episodes.

DPO (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
Reward Model"), the sigmoid loss, on whole multi-turn episodes:

    L = -log sigmoid(beta * ((log pi(y_c|x) - log ref(y_c|x)) - (log pi(y_r|x) - log ref(y_r|x))))

averaged over pairs, where ``y_c``/``y_r`` is the chosen/rejected episode of the same task and
``log pi(y|x)`` is the sum of the log-probabilities of the episode's *assistant* tokens only
(the ids the policy sampled), given everything before them in the token-exact training sequence
(:func:`agentgym.trainer.sequences.trajectory_sequence`): prompts, tool results and feedback
condition the sum but are never counted in it.

The pairs (:func:`preference_pairs`) come from a JSONL of trajectories (a GRPO run's
``trajectories.jsonl``, rejection-sampling rounds, ``agentgym collect``), or are collected on
the fly: each round plays ``group_size`` episodes of ``tasks_per_round`` tasks with the current
model, pairs them within each task, and trains on those pairs (iterative/online DPO).

Deviations from the paper, on purpose:

* a pair is two whole episodes whose only shared part is the task's opening prompt: after the
  first assistant turn the two contexts differ (different tool results), and each episode's
  log-probability conditions its later turns on its own context;
* log-probabilities are per-sequence sums (no length normalisation, as in the paper), so
  longer episodes weigh more;
* the reference is the starting model unless another is named (with LoRA: the same weights
  with the adapter switched off, so no second copy is kept); its log-probabilities are
  computed once per round, since it never changes.

Not covered: resuming a DPO run (each run starts from ``model``), the IPO/hinge/robust
variants, and label smoothing.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.rollout import plan_jobs
from agentgym.trainer.config import GRPOConfig
from agentgym.trainer.metrics import MetricsLog, resume_logs
from agentgym.trainer.rollout import RolloutStats
from agentgym.trainer.tokens import ChatTokens, Sequence1D
from agentgym.trajectory import Trajectory, load_jsonl, save_jsonl

if TYPE_CHECKING:  # torch loads on first use, so DPOConfig and the CLI flags do not import it
    from torch import Tensor

    from agentgym.trainer.batch import Episode

__all__ = [
    "DPOConfig",
    "DPOTrainer",
    "Pair",
    "add_arguments",
    "config_from_args",
    "dpo_loss",
    "preference_pairs",
    "run",
    "sequence_logps",
    "train_dpo",
]

Pair = tuple[Trajectory, Trajectory]
"""``(chosen, rejected)``: two episodes of the same task, the first with the higher reward."""


# ----- pairs ---------------------------------------------------------------------------------


def _usable(traj: Trajectory) -> bool:
    """Whether an episode may be one side of a pair: scored, and with at least one assistant turn."""
    from agentgym.trainer.batch import mask_reason

    has_tokens = any(s.trainable for s in traj.segments) if traj.segments else traj.num_turns > 0
    return mask_reason(traj, has_tokens) is None


def _prompt_key(traj: Trajectory) -> tuple[str, str, str]:
    """Environment, task and the opening messages (everything before the first assistant turn)."""
    first = next((i for i, m in enumerate(traj.messages) if m.get("role") == "assistant"), len(traj.messages))
    opening = json.dumps(traj.messages[:first], sort_keys=True, ensure_ascii=False)
    return traj.env_id, traj.task_id, opening


def preference_pairs(
    trajs: Sequence[Trajectory], min_margin: float = 0.5, *, max_pairs_per_task: int = 4, seed: int = 0
) -> list[Pair]:
    """``(chosen, rejected)`` pairs of episodes of the same task, the chosen one rewarded more.

    The rule:

    * only episodes that count: not an infrastructure failure (``infra_failure``, whatever its
      ``termination_reason``: ``infra_error``, ``env_error``, ``engine_error``, ...), finite rewards,
      and at least one assistant turn (the trainer's :func:`~agentgym.trainer.batch.mask_reason`);
    * both episodes of a pair share the environment, the task id and the opening messages
      (the prompt both answers condition on), so pairs may mix GRPO groups, steps or rounds;
    * ``reward(chosen) - reward(rejected) >= min_margin`` (:attr:`Trajectory.reward`, the total of
      process and outcome rewards; up to 1e-9 of float rounding): ties and near-ties are never pairs;
    * per task, at most ``max_pairs_per_task`` pairs, drawn in a seeded random order from all the
      task's qualifying pairs, pairs of episodes not used yet first (so pairs spread over the
      episodes before any repeats).

    Tasks come out in the order of their first episode in ``trajs``; the result is a function of
    ``trajs`` and ``seed``.

    Args:
        trajs: episodes, of any tasks, in any order.
        min_margin: the least reward difference that makes a pair; must be > 0.
        max_pairs_per_task: the most pairs one task contributes.
        seed: seed of the draw.

    Returns:
        The pairs, ``(chosen, rejected)`` each.

    Raises:
        ValueError: ``min_margin <= 0`` or ``max_pairs_per_task < 1``.
    """
    if not min_margin > 0:
        raise ValueError(f"min_margin={min_margin}: must be > 0 (episodes with equal rewards are no preference)")
    if max_pairs_per_task < 1:
        raise ValueError(f"max_pairs_per_task={max_pairs_per_task}: must be at least 1")
    groups: dict[tuple[str, str, str], list[Trajectory]] = {}
    for t in trajs:
        if _usable(t):
            groups.setdefault(_prompt_key(t), []).append(t)
    rng = np.random.default_rng(seed)
    out: list[Pair] = []
    for members in groups.values():
        rewards = [m.reward for m in members]
        candidates = [
            (i, j)
            for i in range(len(members))
            for j in range(len(members))
            if rewards[i] - rewards[j] >= min_margin - 1e-9  # 0.7 - 0.6 is 0.1 apart, float rounding aside
        ]
        order = [candidates[k] for k in rng.permutation(len(candidates))]
        used: set[int] = set()
        picked: list[tuple[int, int]] = []
        for i, j in order:  # first pass: pairs of fresh episodes only
            if len(picked) < max_pairs_per_task and i not in used and j not in used:
                picked.append((i, j))
                used.update((i, j))
        rest = [p for p in order if p not in picked]
        picked += rest[: max_pairs_per_task - len(picked)]
        out += [(members[i], members[j]) for i, j in picked]
    return out


# ----- loss and log-probabilities ------------------------------------------------------------


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> tuple[Tensor, dict[str, float]]:
    """The sigmoid DPO loss (Rafailov et al. 2023), averaged over pairs.

    ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` per pair, where each argument is the
    summed log-probability of one episode's assistant tokens (:func:`sequence_logps`).

    Args:
        policy_chosen_logps: (P,) log pi of the chosen episodes (with gradient).
        policy_rejected_logps: (P,) log pi of the rejected episodes (with gradient).
        reference_chosen_logps: (P,) log ref of the chosen episodes.
        reference_rejected_logps: (P,) log ref of the rejected episodes.
        beta: the inverse temperature of the implicit reward ``beta * (log pi - log ref)``.

    Returns:
        The mean loss (a scalar tensor) and metrics over the pairs: ``loss``, ``accuracy`` (the
        fraction whose implicit reward margin is > 0), ``margin`` (mean implicit reward margin),
        ``chosen_reward`` and ``rejected_reward`` (mean implicit rewards).
    """
    import torch

    chosen = beta * (policy_chosen_logps - reference_chosen_logps.detach())  # (P,)
    rejected = beta * (policy_rejected_logps - reference_rejected_logps.detach())  # (P,)
    margin = chosen - rejected  # (P,)
    loss = -torch.nn.functional.logsigmoid(margin).mean()
    with torch.no_grad():
        metrics = {
            "loss": float(loss),
            "accuracy": float((margin > 0).float().mean()),
            "margin": float(margin.mean()),
            "chosen_reward": float(chosen.mean()),
            "rejected_reward": float(rejected.mean()),
        }
    return loss, metrics


def _episode(seq: Sequence1D) -> Episode:
    """A sequence as the GRPO trainer's next-token-aligned episode (advantages unused here)."""
    import torch

    from agentgym.trainer.batch import Episode

    ids = torch.from_numpy(seq.ids)
    return Episode(
        ids=ids,
        targets=ids[1:],
        mask=torch.from_numpy(seq.trainable[1:].astype(np.float32)),
        advantages=torch.zeros(max(len(ids) - 1, 0)),
        sample_logprobs=torch.from_numpy(seq.sample_logprobs[1:]),
    )


def sequence_logps(model: Any, seqs: Sequence[Sequence1D], *, micro_batch_size: int = 8, pad_id: int = 0) -> Tensor:
    """The summed log-probability of each sequence's assistant (``trainable``) tokens under ``model``.

    Position ``p`` predicts ``ids[p+1]``; a target counts when it is trainable, so prompt, tool
    and feedback tokens condition the sum but never enter it (and a sequence's first token,
    which nothing predicts, never counts). Keeps the graph: wrap in ``torch.no_grad()`` for a
    frozen model.

    Args:
        model: a causal LM (transformers, or its PEFT wrapper).
        seqs: token-exact sequences (:func:`agentgym.trainer.sequences.trajectory_sequence`).
        micro_batch_size: sequences per forward pass.
        pad_id: the id right-padding uses (masked out; any valid id).

    Returns:
        (N,) float32 tensor on the model's device.
    """
    import torch

    from agentgym.trainer.batch import collate
    from agentgym.trainer.loop import _forward_logprobs

    device = next(model.parameters()).device
    out: list[Tensor] = []
    for i in range(0, len(seqs), max(1, micro_batch_size)):
        mb = collate([_episode(s) for s in seqs[i : i + micro_batch_size]], pad_id, device)
        logp, _ = _forward_logprobs(model, mb, 1.0)  # (B, L-1)
        out.append((logp * mb["mask"]).sum(-1))  # (B,)
    return torch.cat(out) if out else torch.zeros(0, device=device)


# ----- configuration -------------------------------------------------------------------------


@dataclass
class DPOConfig:
    """Every knob of a DPO run; the docstring under each field is its ``--help`` text."""

    # ----- what to train ----------------------------------------------------------------
    env: str = "agentgym/ToolUse-v0"
    """Environment id: where on-the-fly pairs are collected and held-out success is measured."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``agentgym.make`` (JSON on the CLI)."""
    model: str = "tiny"
    """The starting policy: ``tiny``, ``smollm2``, a checkpoint directory, a local path or a hub id."""
    reference: str | None = None
    """The frozen reference model (None: the starting model; with LoRA, the base without the adapter)."""
    output_dir: str = "runs/dpo"
    """Where metrics, trajectories and the checkpoint go."""
    seed: int = 0
    """Seed of pairing, pair order, task order and sampling; a run is a function of it."""

    # ----- where the pairs come from ----------------------------------------------------
    trajectories: str | None = None
    """A JSONL of trajectories to pair (e.g. a GRPO run's trajectories.jsonl); None: collect them on the fly."""
    rounds: int = 1
    """On-the-fly rounds, each: collect groups with the current model, pair them, train (1 with a JSONL)."""
    tasks_per_round: int = 16
    """Training tasks played per on-the-fly round."""
    group_size: int = 4
    """Episodes per task per on-the-fly round (pairs come from within a task)."""
    temperature: float = 1.0
    """Sampling temperature of on-the-fly rollouts, > 0 (the episodes of a group must differ)."""
    max_turns: int | None = None
    """Assistant turns per episode (None: the environment's own limit)."""
    max_turn_tokens: int = 128
    """Tokens the policy may sample in one turn."""
    max_total_tokens: int = 2048
    """Tokens of a whole episode (prompt + turns + tool results)."""
    min_margin: float = 0.5
    """Least reward difference between chosen and rejected (> 0; 0.5 pairs a success with a failure)."""
    max_pairs_per_task: int = 4
    """Most pairs one task contributes per round."""

    # ----- the optimisation -------------------------------------------------------------
    beta: float = 0.1
    """DPO beta: inverse temperature of the implicit reward beta * (log pi - log ref)."""
    lr: float = 1e-6
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: off)."""
    epochs: int = 1
    """Passes over each round's pairs."""
    batch_size: int = 8
    """Pairs per optimizer step."""
    micro_batch_size: int = 2
    """Pairs per forward/backward pass (memory knob; the gradient is the same for any value)."""

    # ----- model ------------------------------------------------------------------------
    lora_rank: int = 0
    """LoRA rank (0: train all parameters). Needs ``peft``."""
    lora_alpha: int = 32
    """LoRA alpha."""
    lora_targets: str = "all-linear"
    """LoRA target modules (comma-separated names or ``all-linear``)."""
    device: str = "auto"
    """``cpu``, ``cuda`` or ``auto``."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training dtype."""
    threads: int = 2
    """torch CPU threads."""

    # ----- evaluation and logging -------------------------------------------------------
    eval_tasks: int = 32
    """Held-out (``test`` split) tasks evaluated before and after training (0: none)."""
    eval_temperature: float = 0.0
    """Sampling temperature at evaluation (0: greedy)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if not self.beta > 0 or not self.min_margin > 0:
            raise ValueError(f"beta={self.beta} and min_margin={self.min_margin} must both be > 0")
        if min(self.rounds, self.epochs, self.batch_size, self.micro_batch_size, self.max_pairs_per_task) < 1:
            raise ValueError("rounds, epochs, batch_size, micro_batch_size and max_pairs_per_task must be >= 1")
        if self.trajectories is not None and self.rounds != 1:
            raise ValueError(
                f"rounds={self.rounds} needs on-the-fly collection: a trajectories JSONL is paired once; "
                "drop --trajectories to collect new episodes each round, or use --rounds 1"
            )
        if self.trajectories is None and (self.group_size < 2 or self.tasks_per_round < 1 or not self.temperature > 0):
            raise ValueError(
                "collecting pairs on the fly needs group_size >= 2, tasks_per_round >= 1 and temperature > 0 "
                "(a pair is two different episodes of one task)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready values."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON (``config.json`` of a run)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    def grpo(self) -> GRPOConfig:
        """The GRPO config whose :class:`~agentgym.trainer.loop.Trainer` holds this run's model and environments."""
        return GRPOConfig(
            env=self.env,
            env_kwargs=self.env_kwargs,
            model=self.model,
            output_dir=self.output_dir,
            seed=self.seed,
            tasks_per_step=self.tasks_per_round,
            group_size=max(2, self.group_size),
            minibatches=1,
            max_turns=self.max_turns,
            max_turn_tokens=self.max_turn_tokens,
            max_total_tokens=self.max_total_tokens,
            temperature=self.temperature if self.temperature > 0 else 1.0,
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
            save_trajectories=False,
            progress=self.progress,
        )


# ----- training ------------------------------------------------------------------------------


class DPOTrainer:
    """The policy, the frozen reference and the environments of one DPO run.

    The model, tokenizer, optimizer, rollout engine and environments are those of the GRPO
    :class:`~agentgym.trainer.loop.Trainer` (same loading, LoRA and evaluation).
    """

    def __init__(self, config: DPOConfig):
        import torch

        from agentgym.trainer.loop import Trainer
        from agentgym.trainer.sequences import trajectory_sequence

        self.config = c = config
        self.base = Trainer(c.grpo())
        self.model: Any = self.base.model
        self.tokenizer: Any = self.base.tokenizer
        self.chat: ChatTokens = self.base.chat
        self.optimizer = self.base.optimizer
        self.out = self.base.out
        self.pad_id = int(self.tokenizer.pad_token_id)
        self._sequence = trajectory_sequence
        self.reference: Any = None  # None with LoRA and no named reference: the adapter is switched off
        if c.reference is not None:
            from agentgym.trainer.models import load_model

            dtype = torch.bfloat16 if c.dtype == "bfloat16" else torch.float32
            self.reference, ref_tokenizer = load_model(c.reference, dtype=dtype, device=self.base.device)
            if ref_tokenizer.get_vocab() != self.tokenizer.get_vocab():
                raise ValueError(
                    f"reference {c.reference!r} has another vocabulary than model {c.model!r}; "
                    "DPO compares log-probabilities of the same token ids: use a reference with the model's tokenizer"
                )
        elif c.lora_rank == 0:
            self.reference = copy.deepcopy(self.model)
        if self.reference is not None:
            self.reference.eval().requires_grad_(False)
        self.step = 0

    def sequences(self, pairs: Sequence[Pair]) -> tuple[list[Sequence1D], list[Sequence1D]]:
        """The token-exact sequences of the chosen and of the rejected episodes."""
        chosen = [self._sequence(self.chat, c) for c, _ in pairs]
        rejected = [self._sequence(self.chat, r) for _, r in pairs]
        return chosen, rejected

    def reference_logps(self, seqs: Sequence[Sequence1D]) -> Tensor:
        """(N,) summed assistant-token log-probabilities under the frozen reference."""
        import torch

        c = self.config
        lora_off = self.reference is None
        model = self.model if lora_off else self.reference
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self.model.disable_adapter() if lora_off else nullcontext():
                return sequence_logps(model, seqs, micro_batch_size=2 * c.micro_batch_size, pad_id=self.pad_id)
        finally:
            self.model.train(was_training)

    def train_pairs(
        self, pairs: Sequence[Pair], round_index: int = 0, log: MetricsLog | None = None
    ) -> list[dict[str, Any]]:
        """``epochs`` passes over ``pairs`` in seeded random order, ``batch_size`` pairs per optimizer step.

        Returns:
            One record per optimizer step (also appended to ``log``).
        """
        import torch

        c = self.config
        chosen, rejected = self.sequences(pairs)
        ref_c, ref_r = self.reference_logps(chosen).cpu(), self.reference_logps(rejected).cpu()  # (P,) each
        records: list[dict[str, Any]] = []
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.train()
        for epoch in range(c.epochs):
            order = np.random.default_rng([c.seed, round_index, epoch]).permutation(len(pairs))
            for start in range(0, len(pairs), c.batch_size):
                batch = [int(i) for i in order[start : start + c.batch_size]]
                t0 = time.perf_counter()
                self.optimizer.zero_grad(set_to_none=True)
                pol_c, pol_r = [], []
                for m0 in range(0, len(batch), c.micro_batch_size):
                    part = batch[m0 : m0 + c.micro_batch_size]
                    logps = sequence_logps(
                        self.model,
                        [chosen[i] for i in part] + [rejected[i] for i in part],
                        micro_batch_size=2 * len(part),
                        pad_id=self.pad_id,
                    )  # (2B,)
                    lc, lr = logps[: len(part)], logps[len(part) :]
                    loss, _ = dpo_loss(lc, lr, ref_c[part].to(lc.device), ref_r[part].to(lc.device), c.beta)
                    (loss * len(part) / len(batch)).backward()  # type: ignore[no-untyped-call]  # torch: unannotated
                    pol_c.append(lc.detach().cpu())
                    pol_r.append(lr.detach().cpu())
                grad_norm = (
                    float(torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm)) if c.max_grad_norm > 0 else 0.0
                )
                self.optimizer.step()
                self.step += 1
                _, metrics = dpo_loss(torch.cat(pol_c), torch.cat(pol_r), ref_c[batch], ref_r[batch], c.beta)
                record = {
                    "kind": "train",
                    "step": self.step,
                    "round": round_index,
                    "epoch": epoch,
                    "pairs": len(batch),
                    **metrics,
                    "grad_norm": grad_norm,
                    "time_step": time.perf_counter() - t0,
                }
                records.append(record)
                if log is not None:
                    log.log(record)
        self.base.engine.sync_weights(self.model)
        return records

    def collect(self, round_index: int) -> list[Trajectory]:
        """Play ``group_size`` episodes of ``tasks_per_round`` training tasks with the current model."""
        from agentgym.trainer.loop import tasks_for_step

        c = self.config
        task_ids = tasks_for_step(self.base.train_ids, c.seed, round_index, c.tasks_per_round)
        seed = c.seed * 100_003 + round_index
        trajs = self.base.play(
            self.base.train_envs, plan_jobs(task_ids, c.group_size, seed), c.temperature, seed, RolloutStats()
        )
        for t in trajs:
            t.metadata["round"] = round_index
        return trajs

    def evaluate(self) -> dict[str, Any]:
        """Held-out success of the current model (see :meth:`agentgym.trainer.loop.Trainer.evaluate`)."""
        self.base.step = self.step
        self.model.eval()
        return self.base.evaluate()

    def save(self) -> Path:
        """Checkpoint the current model into ``checkpoints/step_<N>`` (the standard format)."""
        from agentgym.trainer import checkpoint as ckpt

        return ckpt.save(
            self.out / "checkpoints" / f"step_{self.step:06d}",
            self.model,
            self.optimizer,
            self.step,
            {"config": self.config.to_dict(), "trainer": "dpo"},
            tokenizer=self.tokenizer,
        )

    def close(self) -> None:
        """Close every environment of the run."""
        self.base.close()


def _round_record(round_index: int, trajs: Sequence[Trajectory], pairs: Sequence[Pair]) -> dict[str, Any]:
    scored = [t for t in trajs if not t.infra_failure]
    return {
        "kind": "round",
        "round": round_index,
        "episodes": len(trajs),
        "infra_failures": len(trajs) - len(scored),
        "reward": float(np.mean([t.reward for t in scored])) if scored else math.nan,
        "success": float(np.mean([t.success for t in scored])) if scored else math.nan,
        "pairs": len(pairs),
        "tasks_with_pairs": len({(c.env_id, c.task_id) for c, _ in pairs}),
    }


def train_dpo(config: DPOConfig) -> dict[str, Any]:
    """Run DPO as configured.

    Returns:
        ``checkpoint`` (the final checkpoint directory, loadable as ``model`` by GRPO, SFT, DPO
        and ``agentgym eval``), ``evals`` (held-out evaluations before and after), ``train`` (one
        record per optimizer step), ``pairs`` (pairs trained on), ``step``, ``metrics`` and
        ``output_dir``.

    Raises:
        ValueError: no pair could be built from the trajectories (a JSONL source).
    """
    c = config
    fixed: list[Trajectory] | None = None
    if c.trajectories is not None:
        fixed = load_jsonl(c.trajectories)
    trainer = DPOTrainer(c)
    try:
        resume_logs(trainer.out, None)
        log = MetricsLog(trainer.out / "metrics.jsonl")
        c.save(trainer.out / "config.json")
        evals: list[dict[str, Any]] = []
        if c.eval_tasks > 0:
            evals.append(trainer.evaluate())
            log.log(evals[-1])
        bar = tqdm(total=0, desc="DPO", disable=not c.progress, dynamic_ncols=True)
        n_pairs = 0
        train: list[dict[str, Any]] = []
        for r in range(c.rounds):
            if fixed is not None:
                trajs = fixed
            else:
                trajs = trainer.collect(r)
                save_jsonl(trajs, trainer.out / "trajectories.jsonl", append=True)
            pairs = preference_pairs(trajs, c.min_margin, max_pairs_per_task=c.max_pairs_per_task, seed=c.seed + r)
            log.log(_round_record(r, trajs, pairs))
            if fixed is not None and not pairs:
                raise ValueError(
                    f"{c.trajectories}: no preference pairs among {len(trajs)} trajectories (none of the same task "
                    f"with rewards at least min_margin={c.min_margin:g} apart, infrastructure failures excluded); "
                    "lower --min-margin or collect more episodes per task"
                )
            n_pairs += len(pairs)
            bar.total += c.epochs * math.ceil(len(pairs) / c.batch_size)
            bar.refresh()
            for record in trainer.train_pairs(pairs, r, log):
                train.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.2f}")
        bar.close()
        if c.eval_tasks > 0:
            evals.append(trainer.evaluate())
            log.log(evals[-1])
        path = trainer.save()
        return {
            "checkpoint": str(path),
            "evals": evals,
            "train": train,
            "pairs": n_pairs,
            "step": trainer.step,
            "metrics": str(log.path),
            "output_dir": str(trainer.out),
        }
    finally:
        trainer.close()


# ----- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`DPOConfig` field (``beta`` -> ``--beta``; the field docstring is the help)."""
    from agentgym.trainer.cli import add_config_arguments

    add_config_arguments(parser, DPOConfig)


def config_from_args(args: argparse.Namespace) -> DPOConfig:
    """The config the flags of :func:`add_arguments` describe."""
    from agentgym.trainer.cli import config_fields

    return DPOConfig(**config_fields(args, DPOConfig))


def run(args: argparse.Namespace) -> int:
    """``agentgym dpo``: check the config, train, print held-out success before and after and the checkpoint."""
    from agentgym.trainer.cli import check_config
    from agentgym.trainer.models import check_spec

    config = config_from_args(args)
    check_config(config.grpo())
    if config.reference is not None:
        check_spec(config.reference)
    if config.trajectories is not None and not Path(config.trajectories).is_file():
        raise FileNotFoundError(f"--trajectories {config.trajectories}: no such file (a JSONL of trajectories)")
    result = train_dpo(config)
    evals = result["evals"]
    if evals:
        first, last = evals[0], evals[-1]
        print(f"held-out success: {first['success']:.3f} -> {last['success']:.3f} on {last['tasks']} tasks")
    print(f"{result['pairs']} pairs, {result['step']} optimizer steps; checkpoint: {result['checkpoint']}")
    print(f"metrics: {result['metrics']}")
    return 0
