"""Tool-call parsing: model text or message dicts -> tool calls, with errors the model can read.

One parser per model family's call format, registered in ``PARSERS``:

* ``hermes`` (also ``qwen``): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks
  (Hermes, Qwen2/2.5/3, and the hand-written tools block agentgym writes for any model);
* ``llama3`` (also ``llama``): Llama-3.1/3.2/3.3 JSON calls, ``{"name": ..., "parameters": {...}}``,
  optionally after ``<|python_tag|>``, several separated by ``;``;
* ``mistral``: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`` (and the newer
  ``[TOOL_CALLS]name[ARGS]{...}``); call ids are 9 alphanumerics, as Mistral templates demand;
* ``json``: the whole turn is one JSON object (or a list of them).

:func:`detect_parser` picks the format a tokenizer's model was trained on (its vocabulary
and chat template); an explicit name always wins. Message dicts with OpenAI ``tool_calls``
are handled by :func:`parse_action` for every parser. A malformed call never raises: it
becomes a :class:`ParseError` whose message says what is wrong and how to write the call.
Not covered: Llama-3.2's pythonic ``[f(x=1)]`` calls, Mistral's ``[CALL_ID]`` segments being
kept as ids (agentgym assigns its own), calls split across turns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentgym.messages import Action, Message, ToolCallDict
from agentgym.tools import ToolCall

FORMAT_HINT = (
    'Write each call as <tool_call>{"name": "<tool name>", "arguments": {<arguments as a JSON object>}}</tool_call>.'
)
LLAMA3_HINT = (
    'Write a call as the JSON object {"name": "<tool name>", "parameters": {<arguments as a JSON object>}} '
    'with nothing before it (several calls: separate them with ";").'
)
MISTRAL_HINT = (
    'Write calls as [TOOL_CALLS][{"name": "<tool name>", "arguments": {<arguments as a JSON object>}}] '
    "(one list entry per call)."
)
JSON_HINT = (
    'Reply with only the JSON object {"name": "<tool name>", "arguments": {<arguments as a JSON object>}} '
    "(or a list of them)."
)


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
    """Reads the tool calls of one model family's format out of an assistant turn's text."""

    format_hint: str
    """One sentence telling the model how to write a call in this format."""

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        """Return (text outside calls, calls, errors)."""
        ...


_MISSING = object()


def _decode_call(
    body: str, call_id: str, hint: str = FORMAT_HINT, args_key: str = "arguments"
) -> ToolCall | ParseError:
    """One call from its JSON text ``{"name": ..., "<args_key>": {...}}`` (``arguments`` or ``parameters``)."""
    body = body.strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        return ParseError(
            f"Error: could not parse tool call: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}). {hint}",
            body,
        )
    return _decode_obj(obj, body, call_id, hint, args_key)


def _decode_obj(obj: Any, body: str, call_id: str, hint: str, args_key: str = "arguments") -> ToolCall | ParseError:
    if not isinstance(obj, dict):
        return ParseError(
            f"Error: could not parse tool call: expected a JSON object, got {type(obj).__name__}. {hint}", body
        )
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return ParseError(f'Error: could not parse tool call: missing "name" (a string). {hint}', body)
    args: Any = obj.get(args_key, _MISSING)
    if args is _MISSING:
        args = obj.get("parameters" if args_key == "arguments" else "arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            return ParseError(
                f'Error: could not parse arguments of tool "{name}": invalid JSON ({e.msg}). '
                "Arguments must be a JSON object.",
                body,
            )
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return ParseError(f'Error: arguments of tool "{name}" must be a JSON object, got {type(args).__name__}.', body)
    return ToolCall(call_id, name, args, body)


def _json_values(text: str) -> tuple[list[tuple[Any, str]], str]:
    """Consecutive JSON values in ``text``, separated by whitespace or ``;``.

    Returns:
        ``[(value, its text), ...]`` and the rest of ``text`` that is not JSON.
    """
    decoder = json.JSONDecoder()
    values: list[tuple[Any, str]] = []
    pos = 0
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == ";"):
            pos += 1
        if pos >= len(text):
            return values, ""
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return values, text[pos:]
        values.append((value, text[pos:end]))
        pos = end


def _invalid_json(text: str, hint: str) -> ParseError:
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return ParseError(
            f"Error: could not parse tool call: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}). {hint}",
            text,
        )
    return ParseError(
        f"Error: could not parse tool call: unexpected text after the call. {hint}", text
    )  # pragma: no cover


class HermesParser:
    """``<tool_call>...</tool_call>`` blocks (Hermes, Qwen2/2.5/3, agentgym's own tools block)."""

    open_tag = "<tool_call>"
    close_tag = "</tool_call>"
    format_hint = FORMAT_HINT

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        """Return (text outside calls, calls, errors)."""
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
                errors.append(
                    ParseError(
                        f"Error: could not parse tool call: {self.open_tag} is not closed by {self.close_tag}. "
                        + FORMAT_HINT,
                        text[start:stop],
                    )
                )
                pos = stop
                if nxt < 0:
                    break
                continue
            body = text[start + len(self.open_tag) : end]
            _file(_decode_call(body, f"call_{turn}_{index}"), calls, errors)
            index += 1
            pos = end + len(self.close_tag)
        stray = "".join(outside)
        if self.close_tag in stray:
            errors.append(
                ParseError(
                    f"Error: could not parse tool call: {self.close_tag} without a matching {self.open_tag}. "
                    + FORMAT_HINT,
                    "",
                )
            )
        return stray.strip(), calls, errors


class Llama3Parser:
    """Llama-3.x JSON calls: ``[<|python_tag|>]{"name": ..., "parameters": {...}}[; {...}]``.

    The calls are everything after ``<|python_tag|>`` when the tag is present (text before it
    is prose), else the whole turn when it starts with ``{`` or ``[``; any other turn is prose.
    """

    tag = "<|python_tag|>"
    format_hint = LLAMA3_HINT

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        """Return (text outside calls, calls, errors)."""
        if self.tag in text:
            prose, _, region = text.partition(self.tag)
            if self.tag in region:
                return (
                    prose.strip(),
                    [],
                    [
                        ParseError(
                            f"Error: could not parse tool call: {self.tag} appears more than once. {LLAMA3_HINT}",
                            region,
                        )
                    ],
                )
        elif text.lstrip().startswith(("{", "[")):
            prose, region = "", text
        else:
            return text.strip(), [], []
        region = region.strip()
        if not region:
            return (
                prose.strip(),
                [],
                [ParseError(f"Error: could not parse tool call: nothing follows {self.tag}. {LLAMA3_HINT}", "")],
            )
        values, rest = _json_values(region)
        calls: list[ToolCall] = []
        errors: list[ParseError] = []
        items: list[tuple[Any, str]] = []
        for value, raw in values:
            items += [(v, json.dumps(v)) for v in value] if isinstance(value, list) else [(value, raw)]
        for i, (value, raw) in enumerate(items):
            _file(_decode_obj(value, raw, f"call_{turn}_{i}", LLAMA3_HINT, "parameters"), calls, errors)
        if rest:
            errors.append(_invalid_json(rest, LLAMA3_HINT))
        return prose.strip(), calls, errors


def mistral_call_id(turn: int, index: int) -> str:
    """A 9-character alphanumeric id (Mistral's templates refuse any other), unique per (turn, index)."""
    return f"c{turn % 10**4:04d}n{index % 1000:03d}"


class MistralParser:
    """Mistral calls: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`` or ``[TOOL_CALLS]name[ARGS]{...}``.

    Either form may repeat. Text before the first ``[TOOL_CALLS]`` is prose. Ids are assigned here (9 alphanumerics),
    never taken from the model, so they cannot collide across turns.
    """

    tag = "[TOOL_CALLS]"
    args_tag = "[ARGS]"
    format_hint = MISTRAL_HINT

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        """Return (text outside calls, calls, errors)."""
        if self.tag not in text:
            return text.strip(), [], []
        prose, _, region = text.partition(self.tag)
        calls: list[ToolCall] = []
        errors: list[ParseError] = []
        for part in region.split(self.tag):
            for r in self._part(part.strip(), turn, len(calls) + len(errors)):
                _file(r, calls, errors)
        return prose.strip(), calls, errors

    def _part(self, part: str, turn: int, first: int) -> list[ToolCall | ParseError]:
        if not part:
            return [ParseError(f"Error: could not parse tool call: nothing follows {self.tag}. {MISTRAL_HINT}", "")]
        if not part.startswith(("[", "{")) and self.args_tag in part:  # name[ARGS]{...}
            name, _, args = part.partition(self.args_tag)
            name = name.split("[CALL_ID]")[0].strip()
            try:
                obj = json.loads(args)
            except json.JSONDecodeError as e:
                return [
                    ParseError(
                        f'Error: could not parse arguments of tool "{name}": invalid JSON ({e.msg}). {MISTRAL_HINT}',
                        part,
                    )
                ]
            return [_decode_obj({"name": name, "arguments": obj}, part, mistral_call_id(turn, first), MISTRAL_HINT)]
        values, rest = _json_values(part)
        out: list[ToolCall | ParseError] = []
        if not values:
            return [_invalid_json(part, MISTRAL_HINT)]
        items = [v for value, _ in values for v in (value if isinstance(value, list) else [value])]
        if not items:
            out.append(
                ParseError(
                    f"Error: could not parse tool call: the list after {self.tag} is empty. {MISTRAL_HINT}", part
                )
            )
        for value in items:
            out.append(_decode_obj(value, json.dumps(value), mistral_call_id(turn, first + len(out)), MISTRAL_HINT))
        if rest:
            out.append(_invalid_json(rest, MISTRAL_HINT))
        return out


class JSONParser:
    """The whole turn is one JSON object ``{"name": ..., "arguments": ...}`` (or a list of them)."""

    format_hint = JSON_HINT

    def parse(self, text: str, turn: int) -> tuple[str, list[ToolCall], list[ParseError]]:
        """Return (text outside calls, calls, errors)."""
        stripped = text.strip()
        if not stripped.startswith(("{", "[")):
            return text.strip(), [], []
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as e:
            return (
                "",
                [],
                [
                    ParseError(
                        "Error: could not parse tool call: "
                        f"invalid JSON ({e.msg} at line {e.lineno} column {e.colno}). {JSON_HINT}",
                        stripped,
                    )
                ],
            )
        items = obj if isinstance(obj, list) else [obj]
        calls: list[ToolCall] = []
        errors: list[ParseError] = []
        for i, item in enumerate(items):
            _file(_decode_obj(item, json.dumps(item), f"call_{turn}_{i}", JSON_HINT), calls, errors)
        return "", calls, errors


PARSERS: dict[str, Callable[[], ToolCallParser]] = {
    "hermes": HermesParser,
    "qwen": HermesParser,
    "llama3": Llama3Parser,
    "llama": Llama3Parser,
    "mistral": MistralParser,
    "json": JSONParser,
}


def get_parser(name_or_parser: str | ToolCallParser) -> ToolCallParser:
    """The parser registered under a name in :data:`PARSERS`; a parser object is returned as it is."""
    if not isinstance(name_or_parser, str):
        return name_or_parser
    try:
        return PARSERS[name_or_parser]()
    except KeyError:
        raise ValueError(
            f"unknown tool-call parser {name_or_parser!r}; choose one of {sorted(PARSERS)} or pass a parser object"
        ) from None


def _template_text(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates (e.g. "default", "tool_use")
        return "\n".join(str(t) for t in template.values())
    return template or ""


def detect_parser(tokenizer: Any, native_tools: bool = True, default: str | None = "hermes") -> str | None:
    """The call format a model was trained on, from its tokenizer's vocabulary and chat template.

    ``mistral`` when ``[TOOL_CALLS]`` is a token or in the template; ``hermes`` when the
    template writes ``<tool_call>`` (Qwen2.5/3, Hermes); ``llama3`` when ``<|python_tag|>`` is a
    token or the template asks for ``"parameters"`` (Llama-3.1+); otherwise ``default``.
    With ``native_tools=False`` (the template cannot render tools, so agentgym's Hermes block
    describes them) the answer is always ``hermes``: the model must write what it was told.
    """
    if not native_tools:
        return "hermes"
    template = _template_text(tokenizer)
    try:
        vocab = tokenizer.get_vocab()
    except Exception:
        vocab = {}
    if "[TOOL_CALLS]" in vocab or "[TOOL_CALLS]" in template:
        return "mistral"
    if "<tool_call>" in template:
        return "hermes"
    if "<|python_tag|>" in vocab or "<|python_tag|>" in template or '"parameters"' in template:
        return "llama3"
    return default


def tools_prompt(schemas: list[dict[str, Any]], parser: str | ToolCallParser = "hermes") -> str:
    """Agentgym's own description of the tools (the fallback for templates that cannot render ``tools=``)."""
    functions = "\n".join(json.dumps(s.get("function", s)) for s in schemas)
    hint = getattr(get_parser(parser), "format_hint", FORMAT_HINT)
    return f"You can call these tools:\n<tools>\n{functions}\n</tools>\n{hint}"


def without_tools_prompt(messages: list[Message], schemas: list[dict[str, Any]]) -> list[Message] | None:
    """``messages`` without the tools block (:func:`tools_prompt`) at the end of the system message.

    For a renderer that describes the tools itself. Any parser's block is recognised; None when
    the system message does not end with one.
    """
    if not schemas or not messages or messages[0].get("role") != "system":
        return None
    content = messages[0].get("content") or ""
    for name in PARSERS:
        block = "\n\n" + tools_prompt(schemas, name)
        if content.endswith(block):
            system = messages[0].copy()
            system["content"] = content[: -len(block)]
            return [system, *(m.copy() for m in messages[1:])]
    return None


def _parse_message(action: dict[str, Any], turn: int) -> ParsedAction:
    content = action.get("content")
    text = content if isinstance(content, str) else ""
    calls: list[ToolCall] = []
    errors: list[ParseError] = []
    raw_calls = action.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raw_calls = []
        errors.append(
            ParseError(
                'Error: "tool_calls" must be a list of {"id", "type": "function", '
                '"function": {"name", "arguments"}} objects.'
            )
        )
    for i, raw in enumerate(raw_calls):
        fn = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
            errors.append(
                ParseError(
                    'Error: a tool call has no function name. Each entry of "tool_calls" needs '
                    '"function": {"name": ..., "arguments": ...}.',
                    json.dumps(raw, default=str)[:500],
                )
            )
            continue
        call_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else f"call_{turn}_{i}"
        args = fn.get("arguments", {})
        body = json.dumps({"name": fn["name"], "arguments": args}, default=str)
        _file(_decode_call(body, call_id), calls, errors)
    msg: Message = {"role": "assistant", "content": content if isinstance(content, str) else None}
    if calls:
        msg["tool_calls"] = _openai_calls(calls)
    if msg["content"] is None and not calls:
        msg["content"] = ""
    return ParsedAction(msg, text, calls, errors)


def parse_action(action: Action, parser: ToolCallParser, turn: int) -> ParsedAction:
    """Parse one assistant turn (text or message dict). Never raises for bad model output."""
    if isinstance(action, dict):
        return _parse_message(action, turn)
    # A Gymnasium agent outside the type system may send anything else: it is read as text.
    raw = action if isinstance(action, str) else str(action)
    text, calls, errors = parser.parse(raw, turn)
    msg: Message = {"role": "assistant", "content": raw}
    if calls:
        msg["tool_calls"] = _openai_calls(calls)
    return ParsedAction(msg, text, calls, errors)


def _file(result: ToolCall | ParseError, calls: list[ToolCall], errors: list[ParseError]) -> None:
    if isinstance(result, ToolCall):
        calls.append(result)
    else:
        errors.append(result)


def _openai_calls(calls: list[ToolCall]) -> list[ToolCallDict]:
    return [c.to_openai() for c in calls]


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """The text a Hermes-style model would write to call ``name``."""
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"
