"""Chat messages: plain dicts in the OpenAI format, so any chat template can render them.

A transcript (``env.messages``, ``Trajectory.messages``) is valid OpenAI chat data:

* an assistant turn is ``{"role": "assistant", "content": <prose or None>, "tool_calls": [...]}``;
  ``content`` never holds tool-call markup (the parsed calls are in ``tool_calls`` only, so a
  template that renders ``tool_calls`` shows each call once);
* the tool messages of a turn come right after its assistant message, one per call, in call
  order, each answering that call's id (``tool_call_id``); feedback that answers no call
  (unreadable calls, nudges) is one ``user`` message after them.

:func:`transcript_problems` checks these rules. The raw text a policy produced is not part
of the transcript; :func:`with_raw_text` puts it back (``env.raw_messages``,
``Trajectory.raw_messages()``) for token-exact rendering of what the model really wrote.
Not covered: content given as a list of parts (only strings are produced here).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar

ROLES = ("system", "user", "assistant", "tool")


class FunctionCall(TypedDict):
    """The ``function`` part of a tool call: which tool, with which arguments."""

    name: str
    arguments: str  # a JSON string, as in the OpenAI API


class ToolCallDict(TypedDict):
    """One tool call of an assistant message, as in the OpenAI API."""

    id: str
    type: Literal["function"]
    function: FunctionCall


class Message(TypedDict, total=False):
    """One chat message in the OpenAI format; which keys are present depends on ``role``."""

    role: str
    content: str | None
    name: str
    tool_call_id: str
    tool_calls: list[ToolCallDict]


Action = str | dict[str, Any]
"""An assistant turn: raw model text, or an assistant message dict (``tool_calls`` allowed)."""


def system(content: str) -> Message:
    """A system message."""
    return {"role": "system", "content": content}


def user(content: str) -> Message:
    """A user message."""
    return {"role": "user", "content": content}


def assistant(content: str | None, tool_calls: list[ToolCallDict] | None = None) -> Message:
    """An assistant message; ``tool_calls`` is left out when there are none."""
    msg: Message = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def tool_message(content: str, *, tool_call_id: str, name: str) -> Message:
    """A tool message answering the call ``tool_call_id`` of tool ``name``."""
    return {"role": "tool", "tool_call_id": tool_call_id, "name": name, "content": content}


def with_raw_text(messages: list[Message], raw_texts: list[Any]) -> list[Message]:
    """``messages`` with the k-th assistant turn replaced by ``{"role": "assistant", "content": raw_texts[k]}``.

    ``raw_texts[k]`` is what the policy returned for turn k: a string (sampled text, kept
    verbatim, tool-call markup included) replaces the turn; anything else (a message dict
    from a text-level API) leaves the parsed turn as it is.
    """
    out: list[Message] = []
    k = 0
    for m in messages:
        if m.get("role") == "assistant":
            raw = raw_texts[k] if k < len(raw_texts) else None
            k += 1
            if isinstance(raw, str):
                out.append({"role": "assistant", "content": raw})
                continue
        out.append(copy_json(m))
    return out


def answer_pending_calls(messages: list[Message], content: str) -> list[Message]:
    """``messages`` plus a tool message (``content``) for each call of the last assistant turn left unanswered.

    For transcripts cut mid-turn (an environment that raised inside ``step``), so they stay valid.
    """
    out = copy_json(messages)
    last = max((i for i, m in enumerate(out) if m.get("role") == "assistant"), default=None)
    if last is None:
        return out
    answered = {m.get("tool_call_id") for m in out[last + 1 :] if m.get("role") == "tool"}
    if any(m.get("role") != "tool" for m in out[last + 1 :]):
        return out  # the turn was closed already
    for call in out[last].get("tool_calls") or []:
        if call.get("id") not in answered:
            out.append(tool_message(content, tool_call_id=call["id"], name=call.get("function", {}).get("name", "")))
    return out


def transcript_problems(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every way ``messages`` breaks the OpenAI tool-call protocol (empty list: valid).

    Checks: roles are known; call ids are non-empty strings, unique within their message,
    with a function name and JSON-string arguments; assistant ``content`` is a string or
    None (None only with calls); every call of an assistant message is answered, once, by the
    tool messages that directly follow it, and no tool message answers anything else. (The
    order of the answers is free, as in the OpenAI API; agentgym writes them in call order.)
    Takes any JSON dicts, since its job is to find the ones that are not valid messages.
    """
    problems: list[str] = []
    pending: list[str] = []  # call ids of the last assistant message not yet answered
    open_turn = False  # inside the run of tool messages that follows an assistant message with calls
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ROLES:
            problems.append(f"message {i}: unknown role {role!r}")
            continue
        if role != "tool" and pending:
            problems.append(f"message {i}: calls {pending} of the assistant turn before it got no tool message")
            pending = []
        if role != "tool":
            open_turn = False
        if role == "assistant":
            content, calls = m.get("content"), m.get("tool_calls")
            if content is not None and not isinstance(content, str):
                problems.append(f"message {i}: assistant content must be a string or None")
            if calls is None:
                if content is None:
                    problems.append(f"message {i}: assistant message with neither content nor tool_calls")
                continue
            if not isinstance(calls, list) or not calls:
                problems.append(f"message {i}: tool_calls must be a non-empty list (omit it when there are no calls)")
                continue
            for c in calls:
                fn = c.get("function") if isinstance(c, dict) else None
                cid = c.get("id") if isinstance(c, dict) else None
                if not isinstance(cid, str) or not cid:
                    problems.append(f"message {i}: a tool call without an id")
                elif cid in pending:
                    problems.append(f"message {i}: call id {cid!r} used twice")
                else:
                    pending.append(cid)
                if (
                    not isinstance(c, dict)
                    or c.get("type") != "function"
                    or not isinstance(fn, dict)
                    or not isinstance(fn.get("name"), str)
                    or not fn.get("name")
                ):
                    problems.append(
                        f"message {i}: call {cid!r} is not {{'type': 'function', 'function': {{'name': ...}}}}"
                    )
                    continue
                arguments = fn.get("arguments")
                if not isinstance(arguments, str) or not _is_json(arguments):
                    problems.append(f"message {i}: arguments of call {cid!r} are not a JSON string")
            open_turn = True
        elif role == "tool":
            cid = m.get("tool_call_id")
            if not open_turn:
                problems.append(
                    f"message {i}: tool message {cid!r} does not follow an assistant message with tool_calls"
                )
            elif cid not in pending:
                problems.append(
                    f"message {i}: tool message answers {cid!r}, "
                    "which is no unanswered call of the assistant turn before it"
                )
            else:
                pending.remove(cid)
            if not isinstance(m.get("content"), str):
                problems.append(f"message {i}: tool content must be a string")
        elif not isinstance(m.get("content"), str):
            problems.append(f"message {i}: {role} content must be a string")
    if pending:
        problems.append(f"end: calls {pending} of the last assistant turn got no tool message")
    return problems


def _is_json(text: str) -> bool:
    """Strict JSON: ``NaN`` and ``Infinity`` (which Python's parser accepts) are not."""
    try:
        json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return False
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_T = TypeVar("_T")


def copy_json(x: _T) -> _T:
    """Deep copy of JSON-like data (dicts, lists, scalars); ~10x faster than ``copy.deepcopy``."""
    copied: _T = _copy_json(x)
    return copied


# Values returned as they are; a leaf of one of these exact types costs no call (the common case).
_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _copy_json(x: Any) -> Any:
    kind = type(x)
    if kind is dict:
        return {k: v if type(v) in _ATOMIC else _copy_json(v) for k, v in x.items()}
    if kind is list:
        return [v if type(v) in _ATOMIC else _copy_json(v) for v in x]
    if kind in _ATOMIC:
        return x
    if isinstance(x, dict):  # subclasses (a Counter, an OrderedDict) become plain dicts
        return {k: _copy_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy_json(v) for v in x]
    if isinstance(x, (str, int, float, bool)):
        return x
    return copy.deepcopy(x)


def copy_messages(messages: list[Message]) -> list[Message]:
    """Deep copies, so callers can never mutate the environment's transcript."""
    return copy_json(messages)


def render_transcript(messages: list[Message], width: int = 2000) -> str:
    """Human-readable transcript (used by ``render`` and the CLI)."""
    lines = []
    for m in messages:
        role = m.get("role", "?")
        name = f" ({m['name']})" if m.get("name") else ""
        content = m.get("content") or ""
        if len(content) > width:
            content = content[: width // 2] + f"\n[... {len(content) - width} chars ...]\n" + content[-width // 2 :]
        lines.append(f"[{role}{name}] {content}")
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            lines.append(f"  -> {fn.get('name')}({fn.get('arguments')})")
    return "\n".join(lines)
