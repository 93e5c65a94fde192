"""One suite for every registered environment (the Gymnasium way)."""

from __future__ import annotations

import pickle  # noqa: F401  (kept for the reader: envs hold sandboxes and are not required to pickle)

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.spaces import AssistantTurn

ENV_IDS = agentgym.list_envs()


@pytest.fixture(params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registry_is_not_empty() -> None:
    assert "agentgym/ToolUse-v0" in ENV_IDS


def test_check_env(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def _actions(env: agentgym.AgentEnv, n: int, seed: int) -> list:
    space = AssistantTurn(env.action_space.tool_names, env.action_space.arg_names, seed=seed)
    return [space.sample() for _ in range(n)]


def _play(env: agentgym.AgentEnv, actions: list, seed: int) -> list:
    out = []
    obs, info = env.reset(seed=seed)
    out.append((obs, info))
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs, info))
    out.append(env.messages)
    return out


def test_same_seed_same_actions_same_transcript(env_id: str) -> None:
    a, b = agentgym.make(env_id), agentgym.make(env_id)
    try:
        actions = _actions(a, 12, seed=7)
        assert _play(a, actions, seed=3) == _play(b, actions, seed=3)
    finally:
        a.close()
        b.close()


def test_survives_200_random_actions(env_id: str) -> None:
    env = agentgym.make(env_id)
    try:
        env.reset(seed=0)
        rewards = []
        for action in _actions(env, 200, seed=11):
            obs, reward, term, trunc, info = env.step(action)
            assert env.observation_space.contains(obs)
            assert np.isfinite(reward)
            assert isinstance(info["reward_components"], dict)
            rewards.append(reward)
            if term or trunc:
                assert info["termination_reason"]
                env.reset()
        # The messages the model saw for its mistakes are in the transcript, not exceptions.
        assert len(env.messages) >= 2
    finally:
        env.close()


def test_close_is_idempotent(env_id: str) -> None:
    env = agentgym.make(env_id)
    env.reset(seed=0)
    env.close()
    env.close()
    fresh = agentgym.make(env_id)
    fresh.close()
    fresh.close()


def test_reset_options_pick_task(env_id: str) -> None:
    env = agentgym.make(env_id)
    try:
        task_id = env.tasks.ids[-1]
        _, info = env.reset(options={"task_id": task_id})
        assert info["task_id"] == task_id
        assert info["tools"] and all(t["type"] == "function" for t in info["tools"])
        with pytest.raises(KeyError, match="no task 'no-such-task'"):
            env.reset(options={"task_id": "no-such-task"})
    finally:
        env.close()


def test_step_before_reset_says_how_to_fix(env_id: str) -> None:
    env = agentgym.make(env_id)
    try:
        with pytest.raises(RuntimeError, match=r"call env\.reset"):
            env.step("hello")
    finally:
        env.close()
