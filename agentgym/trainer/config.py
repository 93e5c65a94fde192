"""``GRPOConfig``: every knob of a training run, one documented field each.

The docstring under each field is its ``--help`` text (``agentgym train --help``); CLI
flags map one-to-one to fields (``lr`` -> ``--lr``, ``eps_high`` -> ``--eps-high``).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal


@dataclass
class GRPOConfig:
    """Every knob of a GRPO run; the docstring under each field is its ``--help`` text."""

    # ----- what to train on ---------------------------------------------------------
    env: str = "agentgym/ToolUse-v0"
    """Environment id to train on (any registered agentgym env)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``agentgym.make`` (JSON on the CLI)."""
    model: str = "tiny"
    """Model: ``tiny``, ``smollm2`` (SmolLM2-135M-Instruct from the local GGUF), a local path or a hub id."""
    output_dir: str = "runs/grpo"
    """Where metrics, trajectories, checkpoints and the reward curve go."""
    seed: int = 0
    """Seed of task order, environment resets and sampling; a run is a function of it."""

    # ----- GRPO batch ---------------------------------------------------------------
    steps: int = 20
    """Optimizer-step rounds (each: one rollout batch, then ``epochs`` x ``minibatches`` updates)."""
    tasks_per_step: int = 4
    """Distinct training tasks per rollout batch."""
    group_size: int = 4
    """Episodes per task (G); advantages are relative to the group."""
    epochs: int = 1
    """Passes over each rollout batch (PPO epochs)."""
    minibatches: int = 4
    """Optimizer steps per epoch, the batch's episodes split in order into this many near-equal parts. Above 1 every
    update after the first is off-policy, so the PPO ratio moves and eps_low/eps_high act (at 1 x 1 the ratio is
    always 1)."""
    micro_batch_size: int = 4
    """Episodes per forward/backward pass; gradients are identical for any value (memory knob only)."""

    # ----- rollouts --------------------------------------------------------------------
    rollout_mode: Literal["overlap", "lockstep"] = "overlap"
    """How episodes share the generator: ``overlap`` (each episode advances on its own; the generator samples
    whichever episodes are ready while others run tools or tests) or ``lockstep`` (one batched generate per turn
    over every running episode, then every env step). Same trajectories for the same seeds."""
    generate_batch: int = 0
    """Most episodes per generate call (0: every episode ready for its next turn)."""
    env_workers: int = 0
    """Threads running environment resets and steps concurrently (0: one per episode)."""
    off_policy_steps: int = 0
    """Staleness bound. 0: on-policy. 1: the rollouts of step k+1 are sampled in the background with the weights
    of step k while step k trains (corrected by the truncated importance ratio, tis_cap); an older rollout is
    dropped. With the hf engine the sampler is a copy of the model (twice the weights in memory)."""
    env_backend: Literal["local", "ray", "server"] = "local"
    """Where the environments run: ``local`` (this process), ``ray`` (one Ray actor per environment; needs the
    ``distributed`` extra) or ``server`` (sessions on an ``agentgym serve`` at env_server_url). The trainer then
    uses only the Gymnasium API plus ``info``, ``finish`` and ``task_ids`` (the tasks it samples from)."""
    ray_address: str | None = None
    """Ray cluster address for env_backend=ray (None: start a local Ray)."""
    env_server_url: str | None = None
    """Base URL of the ``agentgym serve`` for env_backend=server, e.g. ``http://10.0.0.5:8765``."""
    env_server_token: str | None = None
    """Bearer token of that server (default: the AGENTGYM_SERVE_TOKEN environment variable); never written to
    config.json or checkpoints."""

    # ----- episode limits -------------------------------------------------------------
    max_turns: int | None = None
    """Assistant turns per episode (None: the environment's own limit)."""
    max_turn_tokens: int = 128
    """Tokens the policy may sample in one turn (finish reason ``length`` beyond)."""
    max_total_tokens: int = 2048
    """Tokens of a whole episode (prompt + turns + tool results); beyond it the episode stops with ``token_budget``."""
    temperature: float = 1.0
    """Sampling temperature for training rollouts, > 0 (logprobs are of this tempered distribution; 0 is refused)."""
    top_k: int = 0
    """Must stay 0 for training: the trainer scores tokens under the full softmax, not a top-k truncation."""

    # ----- advantages ----------------------------------------------------------------
    scale: Literal["group", "batch", "none"] = "group"
    """Divide centred rewards by the group std (GRPO), the batch std, or nothing (Dr. GRPO)."""
    filter_zero_variance: bool = True
    """Drop groups whose rewards are all equal (they carry no signal) from the loss and its normaliser."""
    process_weight: float = 0.0
    """Weight w of per-turn process advantages: A = (1-w) A_outcome + w A_process(turn). 0: outcome only."""
    gamma: float = 1.0
    """Discount of per-turn process returns R_t = r_t + gamma R_{t+1} (with advantage=gae: the turn-level discount)."""
    advantage: Literal["grpo", "gae"] = "grpo"
    """``grpo``: the group baseline (no critic; needs group_size >= 2). ``gae``: a learned value head on the policy's
    trunk scores the state at each turn boundary and turn-level GAE gives the advantages (per-turn credit from one
    episode, group_size 1 allowed; costs a value forward per batch and a value loss that also trains the trunk).
    Under gae the process rewards are the per-turn rewards, the outcome reward is added to the last turn's,
    filter_zero_variance drops nothing (a value error is signal) and process_weight is unused."""
    gae_lambda: float = 0.95
    """GAE lambda in [0, 1] (advantage=gae): 0 is the one-step TD error, 1 the discounted return minus V."""
    vf_coef: float = 0.1
    """Weight of the value loss added to the policy loss (advantage=gae); small, as the value gradients reach the
    shared trunk."""
    value_clip: float = 0.2
    """PPO value clipping (advantage=gae): the new value may move at most this far from the rollout's value before
    the loss stops rewarding it (0: off)."""
    critic_lr: float | None = None
    """Learning rate of the value head (advantage=gae; None: lr)."""

    group_rewards: list[dict[str, Any]] = field(default_factory=list)
    """Rewards that score the episodes of each group together, as JSON specs, e.g. ``[{"type": "rank_judge",
    "policy": "openai:http://host:8000/v1#judge", "criteria": "...", "weight": 0.5}]`` (a judge ranks the G
    episodes; best 1, worst 0). Each is its own reward component, added to the outcome reward before the advantages;
    a group the scorer cannot rank is masked (``reward_error``). Per-episode judges and reward models go in
    ``env_kwargs`` (``{"rewards": [...]}``)."""

    # ----- loss -----------------------------------------------------------------------
    loss: str = "ppo_clip"
    """Policy loss (a key of ``agentgym.trainer.loss.LOSSES``): ``ppo_clip`` or ``pg``."""
    eps_low: float = 0.2
    """Lower clip range of the ratio: 1 - eps_low."""
    eps_high: float = 0.28
    """Upper clip range of the ratio: 1 + eps_high (DAPO clip-higher)."""
    kl_coef: float = 0.0
    """Weight of the k3 KL penalty to the frozen initial model (0: no reference model is kept)."""
    tis_cap: float = 2.0
    """Truncated importance sampling: weight tokens by min(pi_old / pi_sampler, cap). 0: off."""
    lr: float = 1e-5
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: off)."""

    # ----- model ----------------------------------------------------------------------
    lora_rank: int = 0
    """LoRA rank (0: train all parameters). Needs ``peft``."""
    lora_alpha: int = 32
    """LoRA alpha."""
    lora_targets: str = "all-linear"
    """LoRA target modules (comma-separated names or ``all-linear``)."""
    engine: Literal["hf", "vllm"] = "hf"
    """Rollout engine: ``hf`` (transformers, CPU/GPU) or ``vllm`` (GPU; weights synced after every optimizer step)."""
    device: str = "auto"
    """``cpu``, ``cuda`` or ``auto``."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Training dtype."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward (less memory, ~30% slower)."""
    threads: int = 2
    """torch CPU threads."""
    vllm_gpu_memory_utilization: float = 0.3
    """Fraction of GPU memory vLLM may take (the trainer shares the GPU)."""

    # ----- evaluation, checkpoints, logging -------------------------------------------
    eval_every: int = 0
    """Evaluate on held-out tasks every N steps (0: only before and after training)."""
    eval_tasks: int = 32
    """Held-out (``test`` split) tasks per evaluation."""
    eval_temperature: float = 0.0
    """Sampling temperature at evaluation (0: greedy)."""
    eval_before: bool = True
    """Evaluate before the first step as well."""
    save_every: int = 10
    """Save a checkpoint every N steps, and at the end (0: only at the end)."""
    resume: str | None = None
    """Resume from a checkpoint directory, or ``auto`` for the latest one in output_dir."""
    max_failed_fraction: float = 0.5
    """A step fails when more than this fraction of its episodes are masked (exceptions, infrastructure errors)."""
    max_failed_steps: int = 2
    """Stop the run after this many failing steps in a row, naming the most common reason (0: never stop)."""
    save_trajectories: bool = True
    """Append every rollout trajectory to ``trajectories.jsonl``."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.scale not in ("group", "batch", "none"):
            raise ValueError(f"scale must be group, batch or none; got {self.scale!r}")
        if not 0.0 <= self.process_weight <= 1.0:
            raise ValueError("process_weight must be in [0, 1]")
        if self.advantage not in ("grpo", "gae"):
            raise ValueError(f"advantage must be grpo or gae; got {self.advantage!r}")
        if self.group_size < (2 if self.advantage == "grpo" else 1):
            raise ValueError(
                "group_size must be at least 2: GRPO advantages are relative to the group "
                "(advantage=gae, whose baseline is a learned critic, trains with group_size=1)"
            )
        if self.advantage == "gae" and not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma} must be in [0, 1] with advantage=gae (the turn-level discount)")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda={self.gae_lambda} must be in [0, 1] (0: TD error, 1: return minus value)")
        if self.vf_coef < 0 or self.value_clip < 0:
            raise ValueError(
                f"vf_coef={self.vf_coef} and value_clip={self.value_clip} must be >= 0 (value_clip 0: no clipping)"
            )
        if self.advantage == "gae" and self.process_weight > 0:
            raise ValueError(
                f"process_weight={self.process_weight} has no effect with advantage=gae: the process rewards are "
                "already the per-turn rewards GAE credits; leave process_weight at 0"
            )
        if self.critic_lr is not None and not self.critic_lr > 0:
            raise ValueError(f"critic_lr={self.critic_lr} must be > 0, or None to use lr")
        if not 1 <= self.minibatches <= self.batch_episodes or self.epochs < 1:
            raise ValueError(
                f"minibatches={self.minibatches} must be between 1 and the batch of {self.batch_episodes} episodes "
                f"(tasks_per_step x group_size), and epochs >= 1"
            )
        if not self.temperature > 0:
            raise ValueError(
                f"temperature={self.temperature} cannot train: greedy decoding has no sampling distribution, so the "
                "log-probabilities the PPO ratio and importance weights need are undefined (and a group's episodes "
                "would be identical); use temperature > 0 (1.0 samples the model as it is) and eval_temperature=0 "
                "for greedy evaluation"
            )
        if self.top_k != 0:
            raise ValueError(
                f"top_k={self.top_k} cannot train: the sampler would draw from the top-k truncated distribution "
                "while the trainer scores tokens under the full softmax, biasing the ratio and importance weights; "
                "use top_k=0 and lower the temperature to sharpen sampling"
            )
        if not 0.0 <= self.max_failed_fraction <= 1.0 or self.max_failed_steps < 0:
            raise ValueError("max_failed_fraction must be in [0, 1] and max_failed_steps >= 0")
        if self.rollout_mode not in ("overlap", "lockstep"):
            raise ValueError(f"rollout_mode must be overlap or lockstep; got {self.rollout_mode!r}")
        if self.off_policy_steps not in (0, 1):
            raise ValueError(
                f"off_policy_steps={self.off_policy_steps}: use 0 (on-policy) or 1 (sample step k+1 while step k "
                "trains); staler rollouts need more than the truncated importance ratio to stay stable"
            )
        if self.generate_batch < 0 or self.env_workers < 0:
            raise ValueError("generate_batch and env_workers must be >= 0 (0: no limit / one per episode)")
        if self.env_backend not in ("local", "ray", "server"):
            raise ValueError(f"env_backend must be local, ray or server; got {self.env_backend!r}")
        if self.env_backend == "server" and not self.env_server_url:
            raise ValueError("env_backend='server' needs env_server_url, the URL of an `agentgym serve`")
        if self.engine not in ("hf", "vllm"):
            raise ValueError(f"engine must be hf or vllm; got {self.engine!r}")
        self.betas = tuple(self.betas)  # type: ignore[assignment]

    @property
    def batch_episodes(self) -> int:
        """Episodes per rollout batch: ``tasks_per_step x group_size``."""
        return self.tasks_per_step * self.group_size

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON-ready values; the server token (a secret) left out as None."""
        return {**dataclasses.asdict(self), "env_server_token": None}

    def save(self, path: str | Path) -> None:
        """Write the config as JSON (``config.json`` of a run)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> GRPOConfig:
        """Read a config :meth:`save` wrote."""
        return cls(**json.loads(Path(path).read_text()))


@cache
def field_docs(cls: type = GRPOConfig) -> dict[str, str]:
    """The docstring written under each dataclass field (for ``--help``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs
