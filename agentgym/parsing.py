"""Tool-call parsing: model text or message dicts -> tool calls, with errors the model can read.

Parsers are registered per model family in ``PARSERS``; ``hermes`` (also ``qwen``) reads
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks. Message dicts with
OpenAI ``tool_calls`` are handled by :func:`parse_action` for every parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from agentgym.messages import Action, Message
from agentgym.tools import ToolCall

FORMAT_HINT = 'Write each call as <tool_call>{"name": "<tool name>", "arguments": {<arguments as a JSON object>}}</tool_call>.'


@dataclass
class ParseError:
    """A tool call the model tried to make but that could not be read."""

    message: str
    raw: str = ""


@dataclass
class ParsedAction:
    """What the environment understood of one assistant turn."""

    message: Message
    """The assistant message as recorded in the transcript (raw text kept verbatim)."""
    content: str
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)


class ToolCallParser(Protocol):
    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        """Return (text outside calls, calls, errors)."""
        ...


def _decode_call(body: str, call_id: str) -> ToolCall | ParseError:
    body = body.strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        return ParseError(f"Error: could not parse tool call: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}). {FORMAT_HINT}", body)
    if not isinstance(obj, dict):
        return ParseError(f"Error: could not parse tool call: expected a JSON object, got {type(obj).__name__}. {FORMAT_HINT}", body)
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return ParseError(f'Error: could not parse tool call: missing "name" (a string). {FORMAT_HINT}', body)
    args: Any = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            return ParseError(f'Error: could not parse arguments of tool "{name}": invalid JSON ({e.msg}). Arguments must be a JSON object.', body)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return ParseError(f'Error: arguments of tool "{name}" must be a JSON object, got {type(args).__name__}.', body)
    return ToolCall(call_id, name, args, body)


class HermesParser:
    """``<tool_call>...</tool_call>`` blocks (Hermes, Qwen2/2.5/3, SmolLM2 prompts here)."""

    open_tag = "<tool_call>"
    close_tag = "</tool_call>"

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        calls: list[ToolCall] = []
        errors: list[ParseError] = []
        outside: list[str] = []
        pos = 0
        index = 0
        while True:
            start = text.find(self.open_tag, pos)
            if start < 0:
                outside.append(text[pos:])
                break
            outside.append(text[pos:start])
            end = text.find(self.close_tag, start)
            nxt = text.find(self.open_tag, start + len(self.open_tag))
            if end < 0 or (0 <= nxt < end):
                stop = nxt if nxt >= 0 else len(text)
                errors.append(ParseError(f"Error: could not parse tool call: {self.open_tag} is not closed by {self.close_tag}. {FORMAT_HINT}", text[start:stop]))
                pos = stop
                if nxt < 0:
                    break
                continue
            body = text[start + len(self.open_tag) : end]
            result = _decode_call(body, f"call_{turn}_{index}")
            index += 1
            (calls if isinstance(result, ToolCall) else errors).append(result)  # type: ignore[arg-type]
            pos = end + len(self.close_tag)
        stray = "".join(outside)
        if self.close_tag in stray:
            errors.append(ParseError(f"Error: could not parse tool call: {self.close_tag} without a matching {self.open_tag}. {FORMAT_HINT}", ""))
        return stray.strip(), calls, errors


class JSONParser:
    """The whole turn is one JSON object ``{"name": ..., "arguments": ...}`` (or a list of them)."""

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        stripped = text.strip()
        if not stripped.startswith(("{", "[")):
            return text.strip(), [], []
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as e:
            return "", [], [ParseError(f"Error: could not parse tool call: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}).", stripped)]
        items = obj if isinstance(obj, list) else [obj]
        calls, errors = [], []
        for i, item in enumerate(items):
            r = _decode_call(json.dumps(item), f"call_{turn}_{i}")
            (calls if isinstance(r, ToolCall) else errors).append(r)
        return "", calls, errors


PARSERS: dict[str, Callable[[], ToolCallParser]] = {"hermes": HermesParser, "qwen": HermesParser, "json": JSONParser}


def get_parser(name_or_parser: str | ToolCallParser) -> ToolCallParser:
    if not isinstance(name_or_parser, str):
        return name_or_parser
    try:
        return PARSERS[name_or_parser]()
    except KeyError:
        raise ValueError(f"unknown tool-call parser {name_or_parser!r}; choose one of {sorted(PARSERS)} or pass a parser object") from None


def _parse_message(action: dict, turn: int) -> ParsedAction:
    content = action.get("content")
    text = content if isinstance(content, str) else ""
    calls: list[ToolCall] = []
    errors: list[ParseError] = []
    raw_calls = action.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raw_calls = []
        errors.append(ParseError('Error: "tool_calls" must be a list of {"id", "type": "function", "function": {"name", "arguments"}} objects.'))
    for i, raw in enumerate(raw_calls):
        fn = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
            errors.append(ParseError('Error: a tool call has no function name. Each entry of "tool_calls" needs "function": {"name": ..., "arguments": ...}.', json.dumps(raw, default=str)[:500]))
            continue
        call_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else f"call_{turn}_{i}"
        args = fn.get("arguments", {})
        body = json.dumps({"name": fn["name"], "arguments": args}, default=str)
        r = _decode_call(body, call_id)
        (calls if isinstance(r, ToolCall) else errors).append(r)  # type: ignore[arg-type]
    msg: Message = {"role": "assistant", "content": content if isinstance(content, str) else None}
    if calls:
        msg["tool_calls"] = [c.to_openai() for c in calls]  # type: ignore[typeddict-item]
    if msg["content"] is None and not calls:
        msg["content"] = ""
    return ParsedAction(msg, text, calls, errors)


def parse_action(action: Action, parser: ToolCallParser, turn: int) -> ParsedAction:
    """Parse one assistant turn (text or message dict). Never raises for bad model output."""
    if isinstance(action, dict):
        return _parse_message(action, turn)
    if not isinstance(action, str):
        action = str(action)
    text, calls, errors = parser.parse(action, turn)
    msg: Message = {"role": "assistant", "content": action}
    if calls:
        msg["tool_calls"] = [c.to_openai() for c in calls]  # type: ignore[typeddict-item]
    return ParsedAction(msg, text, calls, errors)


def format_tool_call(name: str, arguments: dict) -> str:
    """The text a Hermes-style model would write to call ``name``."""
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"
