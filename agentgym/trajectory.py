"""Trajectories: what happened in one episode, exactly, in a form trainers consume.

``messages`` is valid OpenAI chat data (see :mod:`agentgym.messages`); the raw text of
each assistant turn stays in ``steps[i].action`` (:meth:`Trajectory.raw_messages`).

Token-level policies add :class:`TokenSegment` s: the exact ids the policy sampled
(with their logprobs, ``trainable=True``) and the ids of everything else it was shown
(prompts, tool results; ``trainable=False``). Concatenated in order they are the one
training sequence of the episode. Sampled ids are stored as sampled, never re-tokenized.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentgym.messages import Action, Message, with_raw_text


@dataclass
class TokenSegment:
    """A run of token ids the policy either sampled (``trainable``) or was shown."""

    ids: list[int]
    trainable: bool
    logprobs: list[float] | None = None
    kind: str = "prompt"
    """``prompt`` (opening messages), ``env`` (tool results / feedback) or ``sampled``."""
    turn: int = 0
    """Index of the assistant turn this segment belongs to (0: the opening prompt)."""

    def __post_init__(self) -> None:
        if self.logprobs is not None and len(self.logprobs) != len(self.ids):
            raise ValueError(f"segment has {len(self.ids)} ids but {len(self.logprobs)} logprobs")


@dataclass
class Step:
    """One turn: the action, what came back, and its rewards."""

    action: Action
    observation: list[Message]
    reward: float
    reward_components: dict[str, float]
    info: dict[str, Any]
    finish_reason: str | None = None


@dataclass
class Trajectory:
    """One episode: its transcript, its steps, its token segments and how it ended."""

    env_id: str
    task_id: str
    messages: list[Message] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    segments: list[TokenSegment] = field(default_factory=list)
    outcome_reward: float | None = None
    terminated: bool = False
    truncated: bool = False
    termination_reason: str | None = None
    infra_failure: bool = False
    seed: int | None = None
    group_id: str | None = None
    policy: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def reward(self) -> float:
        """Total reward: process rewards of every turn plus the outcome reward."""
        return float(sum(s.reward for s in self.steps))

    @property
    def process_rewards(self) -> list[float]:
        """The process reward of each turn (0.0 where a turn had none)."""
        return [float(s.info.get("process_reward", 0.0)) for s in self.steps]

    @property
    def num_turns(self) -> int:
        """The number of assistant turns."""
        return len(self.steps)

    @property
    def verifier_reward(self) -> float | None:
        """The weighted sum of the episode's ``verifier`` outcome components (None when not graded).

        Judge, reward-model and other non-verifier components are left out (see :mod:`agentgym.rewards`).
        Trajectories from environments that do not report it (older files, other envs) fall back to
        ``outcome_reward``.
        """
        if self.outcome_reward is None:
            return None
        value = self.steps[-1].info.get("verifier_reward") if self.steps else None
        return float(value) if value is not None else self.outcome_reward

    @property
    def success(self) -> bool:
        """Whether the verifier's reward reached 1.0 (a judge's or reward model's score never counts)."""
        return (self.verifier_reward or 0.0) >= 1.0

    def raw_messages(self) -> list[Message]:
        """``messages`` with each assistant turn as the raw text its step's action held.

        ``messages`` is clean OpenAI chat data (calls only in ``tool_calls``); this view has
        what the policy actually wrote, for token-exact rendering and debugging.
        """
        return with_raw_text(self.messages, [s.action for s in self.steps])

    def token_ids(self) -> list[int]:
        """The ids of all segments, concatenated: the episode's one training sequence."""
        return [i for s in self.segments for i in s.ids]

    def to_dict(self) -> dict[str, Any]:
        """The trajectory as JSON-ready dicts and lists."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        d["steps"] = [Step(**s) for s in d.get("steps", [])]
        d["segments"] = [TokenSegment(**s) for s in d.get("segments", [])]
        return cls(**d)

    def to_json(self) -> str:
        """One line of JSON (non-finite numbers are an error, not ``NaN``)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> Trajectory:
        """The inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(line))


def save_jsonl(trajectories: Iterable[Trajectory], path: str | Path, append: bool = False) -> None:
    """Write one trajectory per line (UTF-8), appending to ``path`` if ``append``; missing parent folders are made."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for t in trajectories:
            f.write(t.to_json() + "\n")


def load_jsonl(path: str | Path) -> list[Trajectory]:
    """Read the trajectories :func:`save_jsonl` wrote, skipping blank lines."""
    with open(path, encoding="utf-8") as f:
        return [Trajectory.from_json(line) for line in f if line.strip()]
