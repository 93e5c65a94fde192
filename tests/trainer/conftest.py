"""Fixtures for the trainer tests: a tiny random model with a locally built tokenizer, a trivial env."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch

import agentgym
from agentgym.env import AgentEnv
from agentgym.rewards import Rubric
from agentgym.tasks import Task, TaskSet
from agentgym.trainer import GRPOConfig
from agentgym.trainer.models import ensure_tiny

DIGITS_ID = "agentgym/TestDigits-v0"
# A quiet run on one CPU thread, no held-out evaluation: what every training test wants.
QUIET = {"eval_tasks": 0, "progress": False, "threads": 1}
# A small batch of short episodes, enough for the tiny model to learn the digits task.
SMALL = {"tasks_per_step": 4, "group_size": 4, "max_turn_tokens": 6, "max_total_tokens": 256}


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
def run_config(tiny_dir: Path, tmp_path: Path) -> Callable[..., GRPOConfig]:
    """``run_config(env, **fields)``: a quiet, small run of the tiny model into ``tmp_path``.

    ``fields`` override anything; ``defaults=True`` keeps GRPOConfig's own batch and token limits.
    """

    def make(env: str, *, defaults: bool = False, **fields: Any) -> GRPOConfig:
        base = {"env": env, "model": str(tiny_dir), "output_dir": str(tmp_path), **QUIET, **({} if defaults else SMALL)}
        return GRPOConfig(**{**base, **fields})

    return make


@pytest.fixture
def digits_env_id() -> Iterator[str]:
    agentgym.register(DIGITS_ID, DigitsEnv, override=True)
    yield DIGITS_ID
    del gym.registry[DIGITS_ID]
