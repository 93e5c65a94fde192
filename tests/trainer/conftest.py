"""Fixtures for the trainer tests: a tiny random model with a locally built tokenizer, a trivial env."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import agentgym
from agentgym.env import AgentEnv
from agentgym.rewards import Rubric
from agentgym.tasks import Task, TaskSet
from agentgym.trainer.models import ensure_tiny

DIGITS_ID = "agentgym/TestDigits-v0"


class DigitsEnv(AgentEnv):
    """One turn, no tools: the reward is the fraction of digit characters in the reply (trivially learnable)."""

    system_prompt = "Reply."
    text_turn = "end"
    default_max_turns = 1

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task(f"digits-{i:03d}", f"Say {i}.") for i in range(200)], name="digits")

    def get_tools(self) -> list:
        return []

    def build_rubric(self) -> Rubric:
        def digits(env: AgentEnv) -> float:
            reply = next((m.get("content") or "" for m in reversed(env.messages) if m["role"] == "assistant"), "")
            return sum(ch.isdigit() for ch in reply) / max(len(reply), 1)

        return Rubric().add("digits", digits)


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)  # tiny models: one thread beats two on a shared machine


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture
def digits_env_id() -> Iterator[str]:
    agentgym.register(DIGITS_ID, DigitsEnv, override=True)
    yield DIGITS_ID
    del gym.registry[DIGITS_ID]
