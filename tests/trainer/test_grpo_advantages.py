"""Advantages against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from agentgym.trainer.advantages import (discounted_returns, outcome_advantages, process_advantages, token_advantages,
                                         turn_advantages, zero_variance_groups)

REWARDS = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
GROUPS = ["a"] * 4 + ["b"] * 4


def test_group_scale_divides_by_group_std() -> None:
    # group a: mean 0.5, std 0.5 -> +-1; group b: all equal -> 0
    np.testing.assert_allclose(outcome_advantages(REWARDS, GROUPS, scale="group"), [1, -1, -1, 1, 0, 0, 0, 0], rtol=1e-5)


def test_batch_scale_divides_by_batch_std_of_centred_rewards() -> None:
    # centred: [.5, -.5, -.5, .5, 0, 0, 0, 0]; std = sqrt(1/8) = 0.353553
    np.testing.assert_allclose(outcome_advantages(REWARDS, GROUPS, scale="batch"), [1.414214, -1.414214, -1.414214, 1.414214, 0, 0, 0, 0], rtol=1e-5)


def test_no_scale_only_centres() -> None:
    np.testing.assert_allclose(outcome_advantages(REWARDS, GROUPS, scale="none"), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_masked_episodes_take_no_part_and_get_zero() -> None:
    adv = outcome_advantages(np.array([1.0, 0.0, 1.0]), ["g"] * 3, valid=np.array([True, True, False]), scale="group")
    np.testing.assert_allclose(adv, [1, -1, 0], rtol=1e-5)


def test_zero_variance_groups_are_flagged() -> None:
    assert zero_variance_groups(REWARDS, GROUPS).tolist() == [False] * 4 + [True] * 4


def test_unknown_scale_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown advantage scale 'max'"):
        outcome_advantages(REWARDS, GROUPS, scale="max")  # type: ignore[arg-type]


def test_discounted_returns() -> None:
    np.testing.assert_allclose(discounted_returns([1.0, 0.0, 2.0], 0.5), [1.5, 1.0, 2.0])  # 1 + .5 * (0 + .5 * 2)


def test_process_advantages_normalise_returns_within_the_group() -> None:
    # returns: ep0 [0.5, 1.0], ep1 [0, 0]; pooled mean 0.375, std 0.414578
    adv = process_advantages([[0.0, 1.0], [0.0, 0.0]], ["g", "g"], gamma=0.5)
    np.testing.assert_allclose(adv[0], [0.301511, 1.507557], rtol=1e-5)
    np.testing.assert_allclose(adv[1], [-0.904534, -0.904534], rtol=1e-5)


def test_turn_advantages_mix_outcome_and_process() -> None:
    mixed = turn_advantages(np.array([1.0, -1.0]), [np.array([0.2, 0.4]), np.array([-0.6])], weight=0.25)
    np.testing.assert_allclose(mixed[0], [0.8, 0.85])  # .75 * 1 + .25 * [.2, .4]
    np.testing.assert_allclose(mixed[1], [-0.9])  # .75 * -1 + .25 * -.6
    only_outcome = turn_advantages(np.array([1.0, -1.0]), None, weight=0.0)
    assert [a.tolist() for a in only_outcome] == [[1.0], [-1.0]]


def test_per_turn_advantage_reaches_exactly_its_turns_tokens() -> None:
    turns = np.array([0, 0, 1, 1, 0, 2, 2, 2, 0, 3])
    np.testing.assert_allclose(token_advantages(np.array([0.5, -1.0, 2.0]), turns), [0, 0, 0.5, 0.5, 0, -1, -1, -1, 0, 2])
    np.testing.assert_allclose(token_advantages(np.array([0.7]), turns), [0, 0, 0.7, 0.7, 0, 0.7, 0.7, 0.7, 0, 0.7])
