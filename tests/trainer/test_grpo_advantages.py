"""Advantages against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from agentgym.trainer.advantages import (
    discounted_returns,
    exact_mean,
    outcome_advantages,
    process_advantages,
    token_advantages,
    turn_advantages,
)
from agentgym.trainer.batch import make_batch
from agentgym.trajectory import Step, TokenSegment, Trajectory

REWARDS = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
GROUPS = ["a"] * 4 + ["b"] * 4


def test_group_scale_divides_by_group_std() -> None:
    # group a: mean 0.5, std 0.5 -> +-1; group b: all equal -> 0
    np.testing.assert_allclose(
        outcome_advantages(REWARDS, GROUPS, scale="group"), [1, -1, -1, 1, 0, 0, 0, 0], rtol=1e-5
    )


def test_batch_scale_is_trls_group_mean_and_batch_std_of_the_rewards() -> None:
    # mean per group (a: .5, b: 1); std of the 8 raw rewards: mean .75, var 6/8 * 1/16 + 2/8 * 9/16 = .1875
    np.testing.assert_allclose(
        outcome_advantages(REWARDS, GROUPS, scale="batch"),
        [1.154701, -1.154701, -1.154701, 1.154701, 0, 0, 0, 0],
        rtol=1e-5,
    )
    # TRL 1.16: (r - group mean) / (nanstd(r) + 1e-4), nanstd with Bessel's correction; ours is the population std
    import torch
    from trl.trainer.utils import nanstd

    trl_std = float(nanstd(torch.tensor(REWARDS)))
    np.testing.assert_allclose(trl_std * np.sqrt(7 / 8), REWARDS.std(), rtol=1e-6)


def test_batch_scale_ignores_masked_rewards() -> None:
    # valid: [1, 0] in group a and [1] in group b -> std of [1, 0, 1] = 0.471405; the masked 100 takes no part
    adv = outcome_advantages(
        np.array([1.0, 0.0, 100.0, 1.0]), ["a", "a", "a", "b"], valid=np.array([True, True, False, True]), scale="batch"
    )
    np.testing.assert_allclose(adv, [0.5 / 0.471405, -0.5 / 0.471405, 0, 0], rtol=1e-5)


def test_no_scale_only_centres() -> None:
    np.testing.assert_allclose(outcome_advantages(REWARDS, GROUPS, scale="none"), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_masked_episodes_take_no_part_and_get_zero() -> None:
    adv = outcome_advantages(np.array([1.0, 0.0, 1.0]), ["g"] * 3, valid=np.array([True, True, False]), scale="group")
    np.testing.assert_allclose(adv, [1, -1, 0], rtol=1e-5)


@pytest.mark.parametrize("fn", [outcome_advantages, process_advantages])
def test_unknown_scale_is_an_error(fn) -> None:
    rewards = REWARDS if fn is outcome_advantages else [[1.0]] * 8
    with pytest.raises(ValueError, match="unknown advantage scale 'max'"):
        fn(rewards, GROUPS, scale="max")  # type: ignore[arg-type]


def test_discounted_returns() -> None:
    np.testing.assert_allclose(discounted_returns([1.0, 0.0, 2.0], 0.5), [1.5, 1.0, 2.0])  # 1 + .5 * (0 + .5 * 2)


def test_exact_mean_has_no_rounding_residue_for_equal_values() -> None:
    assert np.mean([0.1, 0.1, 0.1]) != 0.1  # why exact_mean exists
    assert exact_mean(np.array([0.1, 0.1, 0.1])) == 0.1
    np.testing.assert_array_equal(exact_mean(np.array([[0.1, 2.0], [0.1, 4.0], [0.1, 3.0]]), axis=0), [0.1, 3.0])


# ----- per-turn credit assignment ----------------------------------------------------------


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize(
    ("rewards", "gamma"), [([1.0, 1.0, 1.0], 1.0), ([0.1, 0.7, 0.2, 0.3], 0.9), ([1.0, 0.0, 0.0], 1.0)]
)
def test_identical_episodes_get_exactly_zero_at_every_turn(rewards: list[float], gamma: float, scale: str) -> None:
    # the old estimator (one mean/std over all (episode, turn) returns of the group) gave [-1.22, 0, 1.22] for [1, 1, 1]
    adv = process_advantages([rewards] * 3, ["g"] * 3, gamma=gamma, scale=scale)  # type: ignore[arg-type]
    for a in adv:
        np.testing.assert_array_equal(a, np.zeros(len(rewards)))
    mixed = turn_advantages(outcome_advantages(np.ones(3), ["g"] * 3), adv, weight=0.5)
    assert all(np.array_equal(m, np.zeros(len(rewards))) for m in mixed)


def test_two_episode_group() -> None:
    # returns A [2, 1], B [0] -> padded B [0, 0]; baseline per turn [1, .5]; centred A [1, .5], B [-1]
    adv = process_advantages([[1.0, 1.0], [0.0]], ["g", "g"], gamma=1.0, scale="none")
    np.testing.assert_allclose(adv[0], [1.0, 0.5])
    np.testing.assert_allclose(adv[1], [-1.0])
    # group scale: RMS over the 3 real turns = sqrt((1 + .25 + 1) / 3) = 0.866025
    adv = process_advantages([[1.0, 1.0], [0.0]], ["g", "g"], gamma=1.0, scale="group")
    np.testing.assert_allclose(adv[0], [1.154701, 0.577350], rtol=1e-5)
    np.testing.assert_allclose(adv[1], [-1.154701], rtol=1e-5)


def test_different_lengths_compare_with_ended_episodes_at_return_zero() -> None:
    # gamma .5: A [0, 1, 0, 1] -> returns [.625, 1.25, .5, 1]; B [1] -> [1]; C [0, 0] -> [0, 0]
    # baseline over all three (ended = 0): [1.625/3, 1.25/3, .5/3, 1/3]
    adv = process_advantages([[0.0, 1.0, 0.0, 1.0], [1.0], [0.0, 0.0]], ["g"] * 3, gamma=0.5, scale="none")
    np.testing.assert_allclose(adv[0], [1 / 12, 5 / 6, 1 / 3, 2 / 3])
    np.testing.assert_allclose(adv[1], [11 / 24])
    np.testing.assert_allclose(adv[2], [-13 / 24, -5 / 12])
    # the longest episode's last turns still get credit (a baseline over the survivors of turn 4 alone gives them 0),
    # and every turn is (G-1)/G times the leave-one-out advantage: turn 1 of B: 2/3 * (1 - (.625 + 0) / 2)
    assert adv[0][3] > 0
    np.testing.assert_allclose(adv[1][0], 2 / 3 * (1 - 0.625 / 2))


def test_process_advantages_exclude_masked_episodes() -> None:
    adv = process_advantages(
        [[1.0, 1.0], [0.0], [5.0, 5.0, 5.0]], ["g"] * 3, gamma=1.0, valid=np.array([True, True, False]), scale="none"
    )
    np.testing.assert_allclose(adv[0], [1.0, 0.5])
    np.testing.assert_allclose(adv[1], [-1.0])
    np.testing.assert_array_equal(adv[2], np.zeros(3))
    all_masked = process_advantages([[1.0], [2.0]], ["h", "h"], valid=np.array([False, False]))
    assert all(np.array_equal(a, np.zeros(1)) for a in all_masked)


def test_process_batch_scale_uses_the_rms_of_the_whole_batch() -> None:
    # group g: centred A [1, .5], B [-1]; group h: [3], [1] -> mean 2, centred [1], [-1]
    # batch RMS over the 5 real turns: sqrt((1 + .25 + 1 + 1 + 1) / 5) = 0.921954
    adv = process_advantages([[1.0, 1.0], [0.0], [3.0], [1.0]], ["g", "g", "h", "h"], scale="batch")
    np.testing.assert_allclose(np.concatenate(adv), np.array([1.0, 0.5, -1.0, 1.0, -1.0]) / 0.921954, rtol=1e-5)


def test_turn_advantages_mix_outcome_and_process() -> None:
    mixed = turn_advantages(np.array([1.0, -1.0]), [np.array([0.2, 0.4]), np.array([-0.6])], weight=0.25)
    np.testing.assert_allclose(mixed[0], [0.8, 0.85])  # .75 * 1 + .25 * [.2, .4]
    np.testing.assert_allclose(mixed[1], [-0.9])  # .75 * -1 + .25 * -.6
    only_outcome = turn_advantages(np.array([1.0, -1.0]), None, weight=0.0)
    assert [a.tolist() for a in only_outcome] == [[1.0], [-1.0]]


def test_per_turn_advantage_reaches_exactly_its_turns_tokens() -> None:
    turns = np.array([0, 0, 1, 1, 0, 2, 2, 2, 0, 3])
    np.testing.assert_allclose(
        token_advantages(np.array([0.5, -1.0, 2.0]), turns), [0, 0, 0.5, 0.5, 0, -1, -1, -1, 0, 2]
    )
    np.testing.assert_allclose(token_advantages(np.array([0.7]), turns), [0, 0, 0.7, 0.7, 0, 0.7, 0.7, 0.7, 0, 0.7])


# ----- through make_batch ------------------------------------------------------------------


def _episode(group: str, process: list[float], outcome: float, seed: int = 0, infra: bool = False) -> Trajectory:
    rng = np.random.default_rng(seed)
    segments = [TokenSegment(rng.integers(3, 500, 4).tolist(), False, None, "prompt", 0)]
    for t in range(1, len(process) + 1):
        segments.append(TokenSegment(rng.integers(3, 500, 3).tolist(), True, [-1.0] * 3, "sampled", t))
        segments.append(TokenSegment(rng.integers(3, 500, 2).tolist(), False, None, "env", t))
    steps = [Step("x", [], r, {}, {"process_reward": r}) for r in process]
    return Trajectory(
        env_id="x",
        task_id=group,
        group_id=group,
        outcome_reward=outcome,
        steps=steps,
        segments=segments,
        infra_failure=infra,
        termination_reason="env_error" if infra else "submitted",
    )


def test_identical_multi_turn_episodes_give_no_tokens_any_advantage() -> None:
    trajs = [_episode("g", [1.0, 1.0, 1.0], 1.0, seed=i) for i in range(3)] + [
        _episode("h", [1.0, 0.0], 0.0, seed=9),
        _episode("h", [0.0], 1.0, seed=8),
    ]
    batch = make_batch(trajs, process_weight=0.5, filter_zero_variance=False)
    assert len(batch.episodes) == 5
    for e in batch.episodes[:3]:
        assert float(e.advantages.abs().max()) == 0.0
    assert float(batch.episodes[3].advantages.abs().max()) > 0
    filtered = make_batch(trajs, process_weight=0.5, filter_zero_variance=True)
    assert len(filtered.episodes) == 2, "the group of identical episodes carries no signal and is dropped"


def test_a_group_whose_episodes_are_all_masked_contributes_nothing() -> None:
    trajs = [
        _episode("g", [1.0], 1.0, seed=1, infra=True),
        _episode("g", [0.0], 0.0, seed=2, infra=True),
        _episode("h", [1.0], 1.0, seed=3),
        _episode("h", [0.0], 0.0, seed=4),
    ]
    batch = make_batch(trajs, process_weight=0.5)
    assert len(batch.episodes) == 2 and batch.stats["episodes_masked"] == 2.0
    assert batch.stats["masked_reasons"] == {"env_error": 2}


def test_an_empty_batch_is_empty_not_an_error() -> None:
    """Every episode of a step dropped (stale, failed): make_batch gives an empty batch."""
    batch = make_batch([])
    assert batch.episodes == [] and batch.stats["episodes"] == 0.0
