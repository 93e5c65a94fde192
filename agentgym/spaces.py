"""Gymnasium spaces for text agents: chat observations and assistant actions.

Both implement ``contains`` and ``sample`` so ``gymnasium.utils.env_checker.check_env``
can exercise an environment. ``AssistantTurn.sample`` is adversarial on purpose: it
produces garbage text, broken JSON, unknown tools, wrong argument types and huge
payloads, which is what a robustness test wants.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from agentgym.messages import ROLES, Action, Message

_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789 {}[]<>\":,./\\-_'\n\t"))


def _is_message(m: Any) -> bool:
    if not isinstance(m, dict) or m.get("role") not in ROLES:
        return False
    content = m.get("content")
    if content is not None and not isinstance(content, str):
        return False
    if content is None and not (m["role"] == "assistant" and m.get("tool_calls")):
        return False
    calls = m.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        return False
    return all(isinstance(m.get(k, ""), str) for k in ("name", "tool_call_id"))


class Chat(spaces.Space[list[Message]]):
    """A list of chat messages (dicts with ``role`` and ``content``)."""

    def __init__(self, max_messages: int | None = None, seed: int | np.random.Generator | None = None):
        self.max_messages = max_messages
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """False: a chat has no fixed-size array form."""
        return False

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is a list of well-formed messages, at most ``max_messages`` long."""
        if not isinstance(x, list):
            return False
        if self.max_messages is not None and len(x) > self.max_messages:
            return False
        return all(_is_message(m) for m in x)

    def sample(self, mask: Any = None, probability: Any = None) -> list[Message]:
        """One to three user or tool messages of random text."""
        n = int(self.np_random.integers(1, 4))
        return [
            {"role": str(self.np_random.choice(["user", "tool"])), "content": _random_text(self.np_random, 40)}
            for _ in range(n)
        ]

    def __repr__(self) -> str:
        return "Chat()"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Chat) and other.max_messages == self.max_messages

    def __hash__(self) -> int:
        return hash((Chat, self.max_messages))


def _random_text(rng: np.random.Generator, max_len: int) -> str:
    n = int(rng.integers(0, max_len + 1))
    return "".join(rng.choice(_ALPHABET, size=n)) if n else ""


def _random_value(rng: np.random.Generator) -> Any:
    kind = int(rng.integers(0, 7))
    makers: list[Callable[[], Any]] = [
        lambda: int(rng.integers(-(10**6), 10**6)),
        lambda: float(rng.normal() * 1e3),
        lambda: _random_text(rng, 20),
        lambda: bool(rng.integers(0, 2)),
        lambda: None,
        lambda: [int(x) for x in rng.integers(0, 9, size=3)],
        lambda: "x" * int(rng.integers(10_000, 200_000)),  # huge argument
    ]
    return makers[kind]()


class AssistantTurn(spaces.Space[Action]):
    """An assistant turn: raw text, or an assistant message dict with optional ``tool_calls``.

    ``tool_names`` and ``arg_names`` let ``sample`` aim some calls at real tools.
    """

    def __init__(
        self,
        tool_names: Sequence[str] = (),
        arg_names: Sequence[str] = (),
        seed: int | np.random.Generator | None = None,
    ):
        self.tool_names = tuple(tool_names)
        self.arg_names = tuple(arg_names) or ("x",)
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """False: a turn has no fixed-size array form."""
        return False

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is text or an assistant message dict whose ``tool_calls`` (if any) is a list."""
        if isinstance(x, str):
            return True
        if not isinstance(x, dict) or x.get("role", "assistant") != "assistant":
            return False
        content = x.get("content")
        if content is not None and not isinstance(content, str):
            return False
        calls = x.get("tool_calls")
        return calls is None or isinstance(calls, list)

    def _call(self, rng: np.random.Generator) -> dict[str, Any]:
        names = (*self.tool_names, "no_such_tool")
        name = str(rng.choice(names))
        args = {str(rng.choice(self.arg_names)): _random_value(rng) for _ in range(int(rng.integers(0, 3)))}
        return {"name": name, "arguments": args}

    def sample(self, mask: Any = None, probability: Any = None) -> Action:
        """A random, mostly malformed turn: garbage, broken or unknown calls, huge or empty text."""
        rng = self.np_random
        kind = int(rng.integers(0, 8))
        if kind == 0:  # garbage text
            return _random_text(rng, 200)
        if kind == 1:  # broken JSON inside a tool-call tag
            body = json.dumps(self._call(rng))
            return f"<tool_call>{body[: int(rng.integers(0, max(1, len(body))))]}</tool_call>"
        if kind == 2:  # unclosed tag
            return "<tool_call>" + json.dumps(self._call(rng))
        if kind == 3:  # well-formed text call (maybe unknown tool / wrong types)
            return "Let me call a tool.\n<tool_call>" + json.dumps(self._call(rng)) + "</tool_call>"
        if kind == 4:  # several calls in one turn
            return "".join(f"<tool_call>{json.dumps(self._call(rng))}</tool_call>" for _ in range(3))
        if kind == 5:  # OpenAI-style message dict
            call = self._call(rng)
            args = json.dumps(call["arguments"]) if rng.integers(0, 2) else "{not json"
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_0", "type": "function", "function": {"name": call["name"], "arguments": args}}
                ],
            }
        if kind == 6:  # huge text
            return "z" * int(rng.integers(50_000, 500_000))
        return ""  # empty turn

    def __repr__(self) -> str:
        return f"AssistantTurn(tools={list(self.tool_names)})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, AssistantTurn) and other.tool_names == self.tool_names

    def __hash__(self) -> int:
        return hash((AssistantTurn, self.tool_names))
