"""``train(config)``: GRPO on whole multi-turn episodes of an agentgym environment.

The algorithm (GRPO, Shao et al. 2024, "DeepSeekMath", with DAPO's clip-higher and
token-level loss, Yu et al. 2025). For each step:

1. sample ``tasks_per_step`` training tasks; play ``group_size`` episodes of each with the
   current policy (overlapped batched rollout, see ``rollout``; exact sampled ids and their
   logprobs kept, and the policy version that sampled them); with ``off_policy_steps=1`` the
   episodes of step k+1 are played in a background thread with the weights of step k while
   step k trains, and a batch staler than the bound is dropped;
2. mask the episodes that failed (any exception inside one episode ends that episode alone,
   with a reason; see ``rollout``); stop the run with a one-line message when more than
   ``max_failed_fraction`` of the episodes failed in ``max_failed_steps`` steps in a row;
   advantage of episode i in group g: ``A_i = (R_i - mean_g R) / std_g R`` (or batch std, or
   none), given to every sampled token of every turn; with process rewards, each turn's
   return-to-go minus the group's mean return-to-go at that turn is mixed in per turn
   (``advantages``: identical episodes get exactly zero); with ``advantage="gae"`` a value
   head on the policy's trunk (``critic``) scores the state at each turn boundary instead, in
   one no-grad forward before the update, and turn-level GAE gives each turn's advantage and
   the value targets (``batch.apply_gae``; no group needed, nothing dropped);
3. recompute ``log pi_old`` of the sampled tokens with the training model; weight tokens by
   the truncated importance ratio ``min(pi_old / pi_sampler, C)`` (engine mismatch, and the
   one-step staleness of off-policy rollouts: pi_sampler is then the previous step's policy);
4. for ``epochs`` x ``minibatches`` optimizer steps (default 1 x 4: every minibatch after the
   first is off-policy, so the ratio moves and the clip acts) minimise
   ``sum_tokens tis * -min(r A, clip(r, 1-eps_low, 1+eps_high) A) [+ beta k3(pi, pi_ref)] / N_tokens``
   with ``r = pi / pi_old`` and ``N_tokens`` the trainable tokens of that optimizer step
   (``advantage="gae"``: plus ``vf_coef`` times PPO's clipped value loss averaged over the
   step's turn boundaries, the head reading the same forward pass);
5. sync the engine's weights (off-policy: when the next rollout starts); log (with the
   generator's idle share of the rollout); evaluate on held-out tasks; checkpoint (off-policy:
   with the batch sampled ahead, so a resumed run trains on the same episodes).

Deviations from the paper, on purpose:

* no KL penalty by default (``kl_coef=0``; DAPO, Dr. GRPO), no reference model kept then;
* token-level normalisation over the optimizer step instead of per-sequence means (DAPO);
* zero-variance groups are dropped instead of contributing zero-advantage tokens (DAPO's
  dynamic sampling without the re-sampling);
* population std (ddof=0) in the group scale;
* when each batch gets exactly one optimizer step (``epochs * minibatches == 1``) ``pi_old``
  is taken from the same forward pass as ``pi`` (identical weights, so identical values,
  the ratio is exactly 1 and clipping never acts), saving a forward pass; otherwise it is
  recomputed before the first update;
* episodes cut by an infrastructure failure are masked out, not scored 0.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

from agentgym.env import AgentEnv
from agentgym.evaluation import reward_component_means
from agentgym.rewards import apply_group_rewards, make_group_reward
from agentgym.rollout import Job, plan_jobs, task_ids_of
from agentgym.trainer import checkpoint as ckpt
from agentgym.trainer.batch import Batch, Episode, apply_gae, collate, make_batch, mask_reason
from agentgym.trainer.config import GRPOConfig
from agentgym.trainer.critic import ValueHead, gather_values, make_value_head
from agentgym.trainer.engines import SamplingParams, make_engine  # noqa: F401  (SamplingParams re-exported for users)
from agentgym.trainer.loss import LOSSES, k3_kl, tis_weights, token_logprobs, token_mean
from agentgym.trainer.metrics import MetricsLog, plot_rewards, resume_logs
from agentgym.trainer.models import load_model
from agentgym.trainer.rollout import EnvPool, RolloutLimits, RolloutStats, env_factory, rollout
from agentgym.trainer.tokens import ChatTokens
from agentgym.trajectory import Trajectory, save_jsonl


def tasks_for_step(task_ids: list[str], seed: int, step: int, n: int) -> list[str]:
    """The ``n`` tasks of ``step``: consecutive slices of seeded per-epoch permutations (a function of step)."""
    out: list[str] = []
    pos = step * n
    while len(out) < n:
        epoch, offset = divmod(pos, len(task_ids))
        order = np.random.default_rng([seed, epoch]).permutation(len(task_ids))
        take = min(n - len(out), len(task_ids) - offset)
        out += [task_ids[i] for i in order[offset : offset + take]]
        pos += take
    return out


_EMPTY_BATCH = Batch(
    [],
    {
        "episodes": 0.0,
        "episodes_trained": 0.0,
        "episodes_masked": 0.0,
        "masked_reasons": {},
        "zero_variance_groups": 0.0,
        "advantage_abs_mean": 0.0,
    },
)


class TrainingStopped(RuntimeError, ValueError):
    """Too many failed episodes in a row; the message is one line naming the most common reason.

    Also a ``ValueError`` (the cause is the run's input: env, template, limits), so the CLI reports it in one line.
    """


def failure_message(
    masked_reasons: list[dict[str, int]], errors: dict[str, str], n_episodes: int, config: GRPOConfig, step: int
) -> str:
    """The one-line stop message: the failing steps, the most common reason, an example error, the fix."""
    counts: dict[str, int] = {}
    for reasons in masked_reasons:
        for r, n in reasons.items():
            counts[r] = counts.get(r, 0) + n
    reason, n = max(counts.items(), key=lambda kv: kv[1]) if counts else ("unknown", 0)
    example = f", e.g. {errors[reason]}" if errors.get(reason) else ""
    per_step = ", ".join(str(sum(r.values())) for r in masked_reasons)
    return (
        f"training stopped at step {step}: more than max_failed_fraction={config.max_failed_fraction:g} of the "
        f"{n_episodes} episodes failed in {len(masked_reasons)} steps in a row ({per_step} failed); "
        f"most common reason: {reason} ({n} episodes){example}. "
        "Fix the cause, or raise --max-failed-fraction / --max-failed-steps (0: never stop) to train on the rest"
    )


def minibatch_indices(n: int, minibatches: int) -> list[list[int]]:
    """Split ``range(n)`` in order into ``min(minibatches, n)`` near-equal parts (sizes differ by at most one)."""
    parts = min(max(minibatches, 1), n)
    return [list(range(n * k // parts, n * (k + 1) // parts)) for k in range(parts)] if n else []


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _forward(
    model: Any, mb: dict[str, torch.Tensor], temperature: float, hidden: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Logp, entropy (and the last hidden state) of a micro-batch; logits only where targets are trainable.

    With ``hidden`` the third value is the last hidden state (B, L, H) the value head reads, from the same
    forward pass; else None.
    """
    width = mb["ids"].shape[1]
    trainable_rows = mb["mask"].any(0).nonzero()
    first = int(trainable_rows[0]) if len(trainable_rows) else width - 2
    keep = width - first  # logits for input positions first..L-1 predict targets first..L-2 (+1 unused)
    extra = {"output_hidden_states": True} if hidden else {}
    out = model(input_ids=mb["ids"], attention_mask=mb["attention_mask"], logits_to_keep=keep, **extra)
    logits = out.logits[:, :-1]  # (B, keep-1, V)
    logp, entropy = token_logprobs(logits, mb["targets"][:, first:], temperature)  # (B, keep-1)
    pad = (first, 0)
    last_hidden = out.hidden_states[-1] if hidden else None  # (B, L, H)
    return torch.nn.functional.pad(logp, pad), torch.nn.functional.pad(entropy, pad), last_hidden  # (B, L-1)


def _forward_logprobs(model: Any, mb: dict[str, torch.Tensor], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Logp and entropy of every target token of a micro-batch; logits only where targets are trainable."""
    logp, entropy, _ = _forward(model, mb, temperature)
    return logp, entropy


def value_loss(values: torch.Tensor, old: torch.Tensor, returns: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's clipped value loss per turn: ``0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)``.

    values (with gradient), old (the rollout's values), returns: (K,). ``clip=0``: ``0.5 (V - R)^2``.
    The max keeps the loss from rewarding a value that moved more than ``c`` from V_old (Schulman
    et al. 2017's implementation in OpenAI baselines ppo2). Returns (K,).
    """
    loss = (values - returns) ** 2
    if clip > 0:
        clipped = old + torch.clamp(values - old, -clip, clip)
        loss = torch.maximum(loss, (clipped - returns) ** 2)
    return 0.5 * loss


def _pad_rows(rows: list[torch.Tensor], width: int, device: torch.device) -> torch.Tensor:
    return torch.stack([torch.nn.functional.pad(r, (0, width - len(r))) for r in rows]).to(device)  # (B, L-1)


def accumulate_gradients(
    model: Any,
    episodes: list[Episode],
    config: GRPOConfig,
    pad_id: int,
    device: torch.device | str,
    old: list[torch.Tensor] | None = None,
    ref: list[torch.Tensor] | None = None,
    head: ValueHead | None = None,
) -> dict[str, float]:
    """Backpropagate the loss of one optimizer step over ``episodes``, ``micro_batch_size`` at a time.

    The loss is normalised by the trainable tokens of all ``episodes`` (not of each micro-batch),
    so the accumulated gradient is the same for any micro-batch size. ``old``/``ref``: per-episode
    logprobs (L-1,) of pi_old and pi_ref; ``old=None`` takes pi_old from this very forward pass.
    ``head`` (advantage=gae): adds ``vf_coef`` times the value loss (:func:`value_loss`) averaged
    over the turn boundaries of all ``episodes``, the head reading the same forward's hidden state
    (the episodes need ``old_values`` and ``returns``, see :func:`agentgym.trainer.batch.apply_gae`).
    """
    c = config
    device = torch.device(device)
    n_tokens = sum(e.n_tokens for e in episodes)
    sums = dict.fromkeys(("loss", "clipped", "ratio_dev", "entropy", "kl", "mismatch", "tis_capped", "tokens"), 0.0)
    n_turns = 0
    if head is not None:
        if any(e.value_positions is None or e.returns is None or e.old_values is None for e in episodes):
            raise ValueError("a value head needs episodes with turn boundaries, old values and returns (apply_gae)")
        n_turns = sum(len(e.value_positions) for e in episodes if e.value_positions is not None)
        sums.update(value_loss=0.0, value_clipped=0.0, value_turns=0.0)
    for m0 in range(0, len(episodes), c.micro_batch_size):
        part = range(m0, min(m0 + c.micro_batch_size, len(episodes)))
        mb = collate([episodes[i] for i in part], pad_id, device)
        mask = mb["mask"]  # (B, L-1)
        width = mask.shape[1]
        logp, entropy, hidden = _forward(model, mb, c.temperature, hidden=head is not None)  # (B, L-1)
        old_logp = logp.detach() if old is None else _pad_rows([old[i] for i in part], width, device)
        loss_tok, clipped = LOSSES[c.loss](logp, old_logp, mb["advantages"], c.eps_low, c.eps_high)  # (B, L-1)
        tis = tis_weights(old_logp, mb["sample_logprobs"], c.tis_cap)  # (B, L-1)
        loss_tok = loss_tok * tis
        if ref is not None:
            kl = k3_kl(logp, _pad_rows([ref[i] for i in part], width, device))  # (B, L-1)
            loss_tok = loss_tok + c.kl_coef * kl
            sums["kl"] += float((kl.detach() * mask).sum())
        loss = token_mean(loss_tok, mask, n_tokens)
        total = loss
        if head is not None and hidden is not None:
            eps = [episodes[i] for i in part]
            values = gather_values(head, hidden, [e.value_positions for e in eps])  # type: ignore[misc]  # (k,)
            v_old = torch.cat([e.old_values for e in eps]).to(device)  # type: ignore[misc]  # (k,)
            returns = torch.cat([e.returns for e in eps]).to(device)  # type: ignore[misc]  # (k,)
            v_loss = value_loss(values, v_old, returns, c.value_clip).sum() / max(n_turns, 1)
            total = loss + c.vf_coef * v_loss
            with torch.no_grad():
                sums["value_loss"] += float(v_loss.detach())
                moved = (values - v_old).abs() > c.value_clip
                sums["value_clipped"] += float(moved.sum()) if c.value_clip > 0 else 0.0
                sums["value_turns"] += float(len(values))
        total.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        with torch.no_grad():
            sums["loss"] += float(loss)
            sums["clipped"] += float((clipped.float() * mask).sum())
            sums["ratio_dev"] += float(((logp.detach() - old_logp).exp() - 1.0).abs().mul(mask).sum())
            sums["entropy"] += float((entropy * mask).sum())
            sums["mismatch"] += float(((old_logp - mb["sample_logprobs"]).abs() * mask).sum())
            sums["tis_capped"] += float(((tis >= c.tis_cap).float() * mask).sum()) if c.tis_cap > 0 else 0.0
            sums["tokens"] += float(mask.sum())
    return sums


class Trainer:
    """Holds the model, optimizer, engine and environments of one run; ``train(config)`` drives it."""

    def __init__(self, config: GRPOConfig):
        self.config = c = config
        torch.set_num_threads(max(1, c.threads))
        self.device = _device(c.device)
        dtype = torch.bfloat16 if c.dtype == "bfloat16" else torch.float32
        self.model: Any  # a transformers model, or its PEFT wrapper with LoRA
        self.model, self.tokenizer = load_model(c.model, dtype=dtype, device=self.device)
        self.chat = ChatTokens(self.tokenizer)  # fails early if the template cannot give exact deltas
        if c.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
            self.model.config.use_cache = False
        if c.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            targets: Any = c.lora_targets if c.lora_targets == "all-linear" else c.lora_targets.split(",")
            with warnings.catch_warnings():  # peft 0.21 reads an attribute transformers 5 deprecated
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                self.model = get_peft_model(
                    self.model,
                    LoraConfig(r=c.lora_rank, lora_alpha=c.lora_alpha, target_modules=targets, lora_dropout=0.0),
                )
        self.ref_model: Any = None
        if c.kl_coef > 0 and c.lora_rank == 0:
            self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.value_head: ValueHead | None = None
        if c.advantage == "gae":  # the critic: a value head on the policy's trunk, its own learning rate
            self.value_head = make_value_head(self.model)
            groups: list[dict[str, Any]] = [
                {"params": params},
                {"params": list(self.value_head.parameters()), "lr": c.critic_lr if c.critic_lr is not None else c.lr},
            ]
            self.optimizer = torch.optim.AdamW(groups, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
        engine_kw = (
            {"gpu_memory_utilization": c.vllm_gpu_memory_utilization, "model_path": c.model}
            if c.engine == "vllm"
            else {}
        )
        # Off-policy rollouts run while the model trains, so the hf engine samples a copy of the weights.
        self.sampler: Any = None
        if c.off_policy_steps > 0 and c.engine == "hf":
            self.sampler = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.engine = make_engine(c.engine, self.sampler or self.model, self.tokenizer, **engine_kw)
        self.engine_version = 0  # the policy version (optimizer-step rounds done) the engine samples
        self.env_kwargs = dict(c.env_kwargs)
        if c.max_turns is not None:
            self.env_kwargs["max_turns"] = c.max_turns
        where = {
            "ray_address": c.ray_address,
            "server_url": c.env_server_url,
            "server_token": c.env_server_token or os.environ.get("AGENTGYM_SERVE_TOKEN"),
        }
        self.train_envs = EnvPool(env_factory(c.env_backend, c.env, self.env_kwargs, **where))
        self.eval_envs = EnvPool(env_factory(c.env_backend, c.env, {**self.env_kwargs, "split": "test"}, **where))
        probe = self.train_envs.take(1)[0]
        if isinstance(probe, AgentEnv):  # local: the task set itself
            self.train_ids = probe.tasks.ids
            test_ids = probe.task_set.split("test").ids
        else:  # a remote or Ray env lists the tasks of its split
            self.train_ids = task_ids_of(probe)
            test_ids = task_ids_of(self.eval_envs.take(1)[0]) if c.eval_tasks > 0 else []
        order = np.random.default_rng([c.seed, 1]).permutation(len(test_ids))[: c.eval_tasks]
        self.eval_ids = [test_ids[i] for i in sorted(order)]
        self.out = Path(c.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.step = 0
        self.failed_steps: list[dict[str, int]] = []  # masked reasons of the current run of failing steps
        self.policy_name = f"{c.engine}:{c.model}"
        self.group_rewards = [make_group_reward(spec) for spec in c.group_rewards]  # judges load on first use
        self._ahead: Future[tuple[list[Trajectory], RolloutStats]] | None = None  # the next step's rollout
        self._background: ThreadPoolExecutor | None = None

    # ----- rollouts --------------------------------------------------------------------

    def limits(self, temperature: float) -> RolloutLimits:
        """Rollout limits of the config, sampling at ``temperature`` (top-k only when sampling)."""
        c = self.config
        return RolloutLimits(c.max_turn_tokens, c.max_total_tokens, temperature, c.top_k if temperature > 0 else 0)

    def play(
        self,
        pool: EnvPool,
        jobs: list[Job],
        temperature: float,
        seed: int,
        stats: RolloutStats,
        metadata: dict[str, Any] | None = None,
    ) -> list[Trajectory]:
        """Play ``jobs`` on environments of ``pool`` (``rollout_mode``); ``metadata`` goes into each trajectory's."""
        c = self.config
        return rollout(
            pool.take(len(jobs)),
            jobs,
            self.engine,
            self.chat,
            self.limits(temperature),
            seed=seed,
            env_id=c.env,
            policy_name=self.policy_name,
            env_workers=c.env_workers or len(jobs),
            stats=stats,
            mode=c.rollout_mode,
            max_batch=c.generate_batch,
            metadata=metadata,
        )

    def sync_engine(self) -> None:
        """Make the engine sample the current weights (policy version ``step``); never while a rollout runs."""
        if self.sampler is not None:
            with torch.no_grad():
                self.sampler.load_state_dict(self.model.state_dict())
            self.engine.sync_weights(self.sampler)
        else:
            self.engine.sync_weights(self.model)
        self.engine_version = self.step

    def play_step(self, step: int) -> tuple[list[Trajectory], RolloutStats]:
        """The training episodes of ``step`` (its tasks and seeds), sampled by the engine's current weights."""
        c = self.config
        seed = c.seed * 100_003 + step
        jobs = plan_jobs(tasks_for_step(self.train_ids, c.seed, step, c.tasks_per_step), c.group_size, seed)
        stats = RolloutStats()
        trajs = self.play(self.train_envs, jobs, c.temperature, seed, stats, {"policy_version": self.engine_version})
        return trajs, stats

    def _start_ahead(self) -> None:
        """Off-policy: play the next step's episodes in the background with the current weights."""
        if self._background is None:
            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentgym-rollout")
        self.sync_engine()
        self._ahead = self._background.submit(self.play_step, self.step + 1)

    def join_rollout(self) -> tuple[list[Trajectory], RolloutStats] | None:
        """Wait for the rollout running ahead (off-policy), if any; it stays the next step's batch."""
        return self._ahead.result() if self._ahead is not None else None

    def _take_batch(self) -> tuple[list[Trajectory], RolloutStats]:
        """This step's episodes: the batch sampled ahead, else played now with the current weights."""
        ahead = self.join_rollout()
        self._ahead = None
        if ahead is not None:
            return ahead
        if self.engine_version != self.step:
            self.sync_engine()
        return self.play_step(self.step)

    def eval_metrics(self, trajs: list[Trajectory]) -> dict[str, float]:
        """More numbers for :meth:`evaluate`'s record, from its episodes (none here; subclasses add theirs)."""
        return {}

    def evaluate(self) -> dict[str, Any]:
        """Held-out success: one episode per test task, fixed seeds, eval temperature (greedy by default)."""
        c = self.config
        self.join_rollout()  # the engine is free, and then holds the current weights
        if self.engine_version != self.step:
            self.sync_engine()
        stats = RolloutStats()
        t0 = time.perf_counter()
        trajs = self.play(
            self.eval_envs, plan_jobs(self.eval_ids, 1, c.seed), c.eval_temperature, c.seed + 10_000, stats
        )
        scored = [t for t in trajs if not t.infra_failure]
        return {
            "kind": "eval",
            "step": self.step,
            "tasks": len(trajs),
            "success": float(np.mean([t.success for t in scored])) if scored else float("nan"),
            "reward": float(np.mean([t.reward for t in scored])) if scored else float("nan"),
            **self.eval_metrics(trajs),
            "turns": float(np.mean([t.num_turns for t in trajs])),
            "infra_failures": len(trajs) - len(scored),
            "reward_components": reward_component_means(scored),
            "seconds": time.perf_counter() - t0,
        }

    # ----- the update ------------------------------------------------------------------

    @torch.no_grad()
    def _logprobs(self, model: Any, episodes: list[Episode], mbs: int) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for i in range(0, len(episodes), mbs):
            mb = collate(episodes[i : i + mbs], self.tokenizer.pad_token_id, self.device)
            logp, _ = _forward_logprobs(model, mb, self.config.temperature)
            out += list(logp.cpu())
        return out

    @torch.no_grad()
    def _old_pass(
        self, episodes: list[Episode], mbs: int, logprobs: bool
    ) -> tuple[list[torch.Tensor] | None, list[torch.Tensor]]:
        """The critic's values at every episode's turn boundaries (advantage=gae), one forward per micro-batch.

        With ``logprobs`` the same pass also gives log pi_old of every target token.
        """
        assert self.value_head is not None
        old: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        for i in range(0, len(episodes), mbs):
            part = episodes[i : i + mbs]
            mb = collate(part, self.tokenizer.pad_token_id, self.device)
            logp, _, hidden = _forward(self.model, mb, self.config.temperature, hidden=True)
            assert hidden is not None
            v = gather_values(self.value_head, hidden, [e.value_positions for e in part]).cpu()  # type: ignore[misc]
            values += list(torch.split(v, [len(e.value_positions) for e in part]))  # type: ignore[arg-type]
            old += list(logp.cpu())
        return (old if logprobs else None), values

    def update(self, batch: Batch) -> dict[str, float]:
        """``epochs`` x ``minibatches`` optimizer steps on one rollout batch (advantage=gae: GAE first)."""
        c = self.config
        episodes = batch.episodes
        if not episodes:
            return {"loss": 0.0, "optimizer_steps": 0.0}
        self.model.train()
        reuse_old = c.epochs * c.minibatches == 1
        critic: dict[str, float] = {}
        if self.value_head is not None:  # V(s_t) of the rollout's states -> advantages and value targets
            old, values = self._old_pass(episodes, c.micro_batch_size, logprobs=not reuse_old)
            critic = apply_gae(batch, values, gamma=c.gamma, lam=c.gae_lambda, scale=c.scale)
        else:
            old = None if reuse_old else self._logprobs(self.model, episodes, c.micro_batch_size)
        ref = None
        if c.kl_coef > 0:
            with self.model.disable_adapter() if c.lora_rank > 0 else nullcontext():
                ref = self._logprobs(self.ref_model or self.model, episodes, c.micro_batch_size)
        totals: dict[str, float] = {}
        grad_norms = []
        for _ in range(c.epochs):
            for idx in minibatch_indices(len(episodes), c.minibatches):
                self.optimizer.zero_grad(set_to_none=True)
                sums = accumulate_gradients(
                    self.model,
                    [episodes[i] for i in idx],
                    c,
                    self.tokenizer.pad_token_id,
                    self.device,
                    old=[old[i] for i in idx] if old else None,
                    ref=[ref[i] for i in idx] if ref else None,
                    head=self.value_head,
                )
                for k, v in sums.items():
                    totals[k] = totals.get(k, 0.0) + v
                params = [p for p in self.model.parameters() if p.requires_grad]
                if self.value_head is not None:
                    params += list(self.value_head.parameters())
                norm = torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm if c.max_grad_norm > 0 else float("inf"))
                grad_norms.append(float(norm))
                self.optimizer.step()
        n = max(totals["tokens"], 1.0)
        return {
            "loss": totals["loss"] / len(grad_norms),
            "clip_fraction": totals["clipped"] / n,
            "ratio_abs_dev": totals["ratio_dev"] / n,
            "entropy": totals["entropy"] / n,
            "kl": totals["kl"] / n,
            "logprob_mismatch": totals["mismatch"] / n,
            "tis_capped_fraction": totals["tis_capped"] / n,
            "grad_norm": float(np.mean(grad_norms)),
            "optimizer_steps": float(len(grad_norms)),
            "trained_tokens": totals["tokens"],
            **(
                {
                    "value_loss": totals["value_loss"] / len(grad_norms),
                    "value_clip_fraction": totals["value_clipped"] / max(totals["value_turns"], 1.0),
                    **critic,
                }
                if self.value_head is not None
                else {}
            ),
        }

    # ----- one GRPO step ---------------------------------------------------------------

    def train_step(self) -> dict[str, Any]:
        """One GRPO step: roll out a batch, compute advantages, update; returns the step's metrics record."""
        c = self.config
        t_start = time.perf_counter()
        trajs, stats = self._take_batch()
        wait_s = time.perf_counter() - t_start
        if c.off_policy_steps > 0 and self.step + 1 < c.steps:
            self._start_ahead()  # step k+1 samples with the weights of step k while step k trains
        staleness = [self.step - int(t.metadata.get("policy_version", self.step)) for t in trajs]
        fresh = [t for t, s in zip(trajs, staleness, strict=True) if s <= c.off_policy_steps]
        group_counts = apply_group_rewards(fresh, self.group_rewards) if self.group_rewards else {}
        if c.save_trajectories:
            for t in trajs:
                t.metadata["step"] = self.step
            save_jsonl(trajs, self.out / "trajectories.jsonl", append=True)
        batch = (
            make_batch(
                fresh,
                scale=c.scale,
                process_weight=c.process_weight,
                gamma=c.gamma,
                filter_zero_variance=c.filter_zero_variance,
                advantage=c.advantage,
            )
            if fresh
            else _EMPTY_BATCH  # every episode was staler than the bound
        )
        stopped = self.check_failures(fresh, batch)
        t_train = time.perf_counter()
        update = {} if stopped else self.update(batch)
        if not stopped:
            self.step += 1
        if self._ahead is None:  # on-policy (a rollout running ahead keeps its weights until it ends)
            self.sync_engine()
        train_s = time.perf_counter() - t_train
        total_s = time.perf_counter() - t_start
        reasons: dict[str, int] = {}
        for t in trajs:
            reasons[str(t.termination_reason)] = reasons.get(str(t.termination_reason), 0) + 1
        scored = [t for t in trajs if not t.infra_failure]
        tokens = sum(t.metadata.get("num_tokens", 0) for t in trajs)
        return {
            "kind": "train",
            "step": self.step + (1 if stopped else 0),
            "reward": float(np.mean([t.reward for t in scored])) if scored else 0.0,
            "outcome": float(np.mean([t.outcome_reward or 0.0 for t in scored])) if scored else 0.0,
            "success": float(np.mean([t.success for t in scored])) if scored else 0.0,
            "turns": float(np.mean([t.num_turns for t in trajs])),
            "reward_components": reward_component_means(scored),
            **{f"group_reward_{k}": v for k, v in group_counts.items()},
            "sampled_tokens": stats.sampled_tokens,
            "episode_tokens": tokens,
            **batch.stats,
            **update,
            "stop_reasons": reasons,
            "time_generation": stats.generation_s,
            "time_env": stats.env_s,
            "time_rollout": stats.wall_s,
            "time_wait_rollout": wait_s,
            "generator_idle_share": stats.generator_idle_share,
            "generate_calls": stats.generate_calls,
            "staleness_max": max(staleness, default=0),
            "staleness_mean": float(np.mean(staleness)) if staleness else 0.0,
            "episodes_stale": len(trajs) - len(fresh),
            "time_train": train_s,
            "time_step": total_s,
            "tokens_per_s": (stats.sampled_tokens + update.get("trained_tokens", 0.0)) / max(total_s, 1e-9),
            "sampled_tokens_per_s": stats.sampled_tokens / max(stats.generation_s, 1e-9),
            **({"stopped": stopped} if stopped else {}),
        }

    def check_failures(self, trajs: list[Trajectory], batch: Batch) -> str | None:
        """Track failing steps (more than ``max_failed_fraction`` masked).

        Returns:
            The stop message once there are ``max_failed_steps`` in a row, else None.
        """
        c = self.config
        masked = batch.stats["masked_reasons"]
        if sum(masked.values()) <= c.max_failed_fraction * len(trajs) or c.max_failed_steps == 0:
            self.failed_steps = []
            return None
        self.failed_steps.append(masked)
        if len(self.failed_steps) < c.max_failed_steps:
            return None
        errors: dict[str, str] = {}
        for t in trajs:
            reason = mask_reason(t, any(seg.trainable for seg in t.segments))
            error = t.metadata.get("error") or (t.steps[-1].info.get("infra_error") if t.steps else None)
            if reason == "no_tokens":
                error = (
                    f"ended ({t.termination_reason}) before sampling a token: "
                    f"the prompt has {t.metadata.get('num_tokens')} tokens, max_total_tokens={c.max_total_tokens}"
                )
            if reason and error:
                errors.setdefault(reason, str(error))
        return failure_message(self.failed_steps, errors, len(trajs), c, self.step + 1)

    # ----- checkpoints -------------------------------------------------------------------

    def save(self) -> Path:
        """Checkpoint the current step into ``checkpoints/step_<N>``, with the batch sampled ahead (off-policy)."""
        extra: dict[str, Any] = {"config": self.config.to_dict()}
        ahead = self.join_rollout()
        if ahead is not None:  # sampled with the previous weights, which the checkpoint does not hold
            trajs, stats = ahead
            extra["rollout_ahead"] = {
                "trajectories": [t.to_dict() for t in trajs],
                "stats": dataclasses.asdict(stats),
            }
        return ckpt.save(
            self.out / "checkpoints" / f"step_{self.step:06d}",
            self.model,
            self.optimizer,
            self.step,
            extra,
            tokenizer=self.tokenizer,
            value_head=self.value_head,
        )

    def restore(self, path: str | Path) -> None:
        """Resume from a checkpoint: weights, optimizer, RNGs, step and the batch sampled ahead (off-policy).

        The engine samples the restored weights.
        """
        state = ckpt.load(path, self.model, self.optimizer, value_head=self.value_head)
        self.step = int(state["step"])
        self.sync_engine()
        ahead = state.get("rollout_ahead")
        if ahead and self.config.off_policy_steps > 0:
            done: Future[tuple[list[Trajectory], RolloutStats]] = Future()
            done.set_result(([Trajectory.from_dict(t) for t in ahead["trajectories"]], RolloutStats(**ahead["stats"])))
            self._ahead = done

    def close(self) -> None:
        """Wait for a rollout running ahead, then close every environment of the run."""
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None
        self._ahead = None
        self.train_envs.close()
        self.eval_envs.close()


def train(config: GRPOConfig) -> dict[str, Any]:
    """Run GRPO as configured; returns a summary (first/last eval, final step, paths)."""
    c = config
    trainer = Trainer(c)
    try:
        resume = ckpt.latest(c.output_dir) if c.resume == "auto" else (Path(c.resume) if c.resume else None)
        if resume is not None:
            trainer.restore(resume)
        resume_logs(trainer.out, trainer.step if resume else None)  # every appended log cut back to the resumed step
        log = MetricsLog(trainer.out / "metrics.jsonl", resume_step=trainer.step if resume else None)
        c.save(trainer.out / "config.json")
        evals = [r for r in log.read() if r.get("kind") == "eval"]
        if c.eval_before and trainer.step == 0 and c.eval_tasks > 0:
            evals.append(trainer.evaluate())
            log.log(evals[-1])
        bar = tqdm(total=c.steps, initial=trainer.step, desc="GRPO", disable=not c.progress, dynamic_ncols=True)
        while trainer.step < c.steps:
            record = trainer.train_step()
            log.log(record)
            if record.get("stopped"):
                raise TrainingStopped(record["stopped"])
            bar.update(1)
            bar.set_postfix(reward=f"{record['reward']:.3f}", clip=f"{record.get('clip_fraction', 0):.3f}")
            last = trainer.step == c.steps
            if c.eval_tasks > 0 and ((c.eval_every and trainer.step % c.eval_every == 0) or last):
                evals.append(trainer.evaluate())
                log.log(evals[-1])
            if last or (c.save_every and trainer.step % c.save_every == 0):
                trainer.save()
        bar.close()
        records = log.read()
        plot_rewards(records, trainer.out / "reward_curve.png", title=f"GRPO on {c.env} ({c.model})")
        return {
            "step": trainer.step,
            "evals": evals,
            "metrics": str(log.path),
            "output_dir": str(trainer.out),
            "train": [r for r in records if r.get("kind") == "train"],
        }
    finally:
        trainer.close()
