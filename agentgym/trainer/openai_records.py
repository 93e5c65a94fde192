"""OpenAI chat requests in, token-exact episode records out: the logic of ``agentgym serve-model``.

No model here: :func:`parse_request` validates a ``/v1/chat/completions`` body (400s with a
clear message), :func:`present` turns its messages and ``tools`` into what the chat template
renders, :class:`EpisodeStore` keeps each client episode's token contexts, and
:func:`completion_body` shapes the OpenAI response with agentgym's extension fields.

The token rule is :mod:`agentgym.trainer.tokens`' (a context is the concatenation of its
segments, never a re-render). A request *continues* an episode's current context when its
messages are the previous request's messages, then the assistant reply the server gave (same
prose, same calls), then only tool/user/system messages; its prompt is then the previous prompt
+ the sampled ids + the ``env`` delta the template renders for the new messages
(:meth:`EpisodeTokens.add_env`). Anything else (edited or dropped history, changed tools, an
assistant turn the server did not write, a template that re-renders history) starts a new
context whose ``prompt`` segment is the whole rendering: recorded as such, never misaligned.

Not covered: ``n > 1``, streaming, ``top_p``/penalties/``logit_bias``, forced tool choice
(``required`` or a named function), content other than text, alternatives in ``top_logprobs``
(always empty). A stop string cuts the returned text before it, while the recorded ids keep the
token in which it completes (what the model sampled), so the next turn's context holds it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agentgym.messages import Message
from agentgym.parsing import format_tool_call, get_parser, tools_prompt, without_tools_prompt
from agentgym.trainer.tokens import ChatTokens, EpisodeTokens, Schemas, TemplateError
from agentgym.trajectory import TokenSegment

EPISODE_HEADER = "X-Agentgym-Episode"
"""The request header naming the client's episode (the ``user`` field works too)."""
_EPISODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_ROLES = {"system", "developer", "user", "assistant", "tool"}


class RequestError(ValueError):
    """A bad request: answered with 400 and the OpenAI error shape (``param`` names the field)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.param, self.status = message, param, status

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        kind = "not_found_error" if self.status == 404 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": None}}


@dataclass
class ChatRequest:
    """A validated chat-completions request (only what the server honours)."""

    messages: list[Message]
    tools: Schemas | None = None
    parse_calls: bool = True
    """False with ``tool_choice="none"``: the text is returned as content, never as calls."""
    max_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    episode: str | None = None


def _number(body: dict[str, Any], key: str, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise RequestError(f"'{key}' must be {kind} in [{lo:g}, {hi:g}], got {value!r}", key)
    return value


def _text(content: Any, where: str) -> str | None:
    """A message content as one string: a string, None, or a list of text parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if not (isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)):
                raise RequestError(f"{where}.content: only text parts are supported, got {json.dumps(p)[:100]}", where)
            parts.append(p["text"])
        return "".join(parts)
    raise RequestError(f"{where}.content must be a string, a list of text parts or null", where)


def _message(m: Any, i: int) -> Message:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise RequestError(f"{where} must be an object with 'role' and 'content'", where)
    role = m.get("role")
    if role not in _ROLES:
        raise RequestError(f"{where}.role must be one of {sorted(_ROLES)}, got {role!r}", where)
    out: Message = {"role": "system" if role == "developer" else role, "content": _text(m.get("content"), where)}
    if role == "tool":
        if not isinstance(m.get("tool_call_id"), str):
            raise RequestError(f"{where}: a tool message needs 'tool_call_id' (a string)", where)
        out["tool_call_id"] = m["tool_call_id"]
    if isinstance(m.get("name"), str):
        out["name"] = m["name"]
    calls = m.get("tool_calls")
    if role == "assistant" and calls:
        if not isinstance(calls, list):
            raise RequestError(f"{where}.tool_calls must be a list", where)
        for c in calls:
            fn = c.get("function") if isinstance(c, dict) else None
            if not (isinstance(fn, dict) and isinstance(fn.get("name"), str) and isinstance(c.get("id"), str)):
                raise RequestError(
                    f"{where}.tool_calls: each call needs 'id' and 'function': {{'name', 'arguments'}}", where
                )
        out["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": _arguments(c["function"].get("arguments"))},
            }
            for c in calls
        ]
    elif out["content"] is None and role != "assistant":
        raise RequestError(f"{where}: a {role} message needs 'content'", where)
    return out


def _arguments(args: Any) -> str:
    return args if isinstance(args, str) else json.dumps(args if args is not None else {})


def _tools(tools: Any) -> Schemas | None:
    if tools is None or tools == []:
        return None
    if not isinstance(tools, list):
        raise RequestError("'tools' must be a list of {'type': 'function', 'function': {...}} objects", "tools")
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not (isinstance(t, dict) and t.get("type", "function") == "function" and isinstance(fn, dict)):
            raise RequestError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name', ...}}}}", "tools")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise RequestError(f"tools[{i}].function.name must be a non-empty string", "tools")
        params = fn.get("parameters", {})
        if not isinstance(params, dict) or not isinstance(params.get("properties", {}), dict):
            raise RequestError(f"tools[{i}].function.parameters must be a JSON Schema object", "tools")
    return [{"type": "function", "function": t["function"]} for t in tools]


def episode_id(body: dict[str, Any], header: str | None) -> str | None:
    """The client's episode id: the ``X-Agentgym-Episode`` header, else the ``user`` field."""
    value = header if header else body.get("user")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _EPISODE_ID.fullmatch(value):
        raise RequestError(
            "the episode id (header X-Agentgym-Episode or 'user') must be 1-128 characters of "
            f"letters, digits and ._:@- starting with a letter or digit, got {str(value)[:60]!r}",
            "user",
        )
    return value


def parse_request(body: dict[str, Any], header: str | None = None) -> ChatRequest:
    """Validate a ``/v1/chat/completions`` body; :class:`RequestError` says what is wrong."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of chat messages", "messages")
    if body.get("stream"):
        raise RequestError("streaming is not supported: leave 'stream' out or false", "stream")
    if body.get("n") not in (None, 1):
        raise RequestError(f"only n=1 is supported, got n={body.get('n')!r}", "n")
    top_p = _number(body, "top_p", 0.0, 1.0)
    if top_p not in (None, 1, 1.0):
        raise RequestError("top_p is not supported (the engine samples the whole distribution, or top_k)", "top_p")
    for key in ("presence_penalty", "frequency_penalty"):
        if _number(body, key, -2.0, 2.0) not in (None, 0, 0.0):
            raise RequestError(f"'{key}' is not supported: leave it out or 0", key)
    if body.get("logit_bias"):
        raise RequestError("'logit_bias' is not supported", "logit_bias")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise RequestError("'response_format' is not supported (only {'type': 'text'})", "response_format")
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise RequestError("tool_choice must be 'auto' or 'none' (a call cannot be forced)", "tool_choice")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop or []
    good = isinstance(stops, list) and len(stops) <= 4
    if not good or not all(isinstance(s, str) and 0 < len(s) <= 256 for s in stops):
        raise RequestError("'stop' must be a string of 1 to 256 characters or a list of up to 4 of them", "stop")
    mt = _number(body, "max_completion_tokens", 1, 1 << 30, integer=True)
    if mt is None:
        mt = _number(body, "max_tokens", 1, 1 << 30, integer=True)
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise RequestError("'logprobs' must be true or false", "logprobs")
    _number(body, "top_logprobs", 0, 20, integer=True)
    return ChatRequest(
        messages=[_message(m, i) for i, m in enumerate(messages)],
        tools=_tools(body.get("tools")),
        parse_calls=choice != "none",
        max_tokens=mt,
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_k=_number(body, "top_k", 0, 1 << 20, integer=True),
        seed=_number(body, "seed", -(1 << 63), (1 << 63) - 1, integer=True),
        stop=list(stops),
        logprobs=bool(logprobs),
        episode=episode_id(body, header),
    )


def present(
    chat: ChatTokens, messages: Sequence[Message], tools: Schemas | None
) -> tuple[list[Message], Schemas | None]:
    """``(messages, tools=)`` the chat template renders for a request.

    A template that renders ``tools=`` gets them (and assistant call arguments as objects, as HF
    templates expect); otherwise agentgym's tools block (:func:`tools_prompt`, in the format of
    ``chat.parser``) ends the system message, as in agentgym's environments, and earlier
    assistant calls are written as that format's text. A block the client left in its system
    message is cut first, so it is never shown twice.
    """
    base = [m.copy() for m in (without_tools_prompt(list(messages), tools or []) or messages)]
    out = [_template_message(m, chat.native_tools) for m in base]
    if not tools or chat.native_tools:
        return out, (list(tools) if tools else None)
    block = tools_prompt(tools, chat.parser)
    if out and out[0].get("role") == "system":
        out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{block}"}
    else:
        out.insert(0, {"role": "system", "content": block})
    return out, None


def _template_message(m: Message, native_tools: bool) -> Message:
    """An earlier assistant turn with calls, as the template should see it (others unchanged)."""
    calls = m.get("tool_calls")
    if m.get("role") != "assistant" or not calls:
        return m
    if native_tools:  # HF templates take call arguments as objects
        objects: list[Any] = [
            {**c, "function": {**c["function"], "arguments": _loads(c["function"]["arguments"])}} for c in calls
        ]
        return {**m, "tool_calls": objects}
    text = [m.get("content") or ""] + [
        format_tool_call(c["function"]["name"], _loads(c["function"]["arguments"])) for c in calls
    ]
    return {"role": "assistant", "content": "\n".join(t for t in text if t)}


def _loads(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def reply_message(chat: ChatTokens, text: str, parse_calls: bool, turn: int) -> Message:
    """The assistant message of sampled ``text``: prose in ``content``, calls in OpenAI ``tool_calls``.

    A turn whose calls cannot all be read is returned whole as ``content`` (no calls), so nothing
    the model wrote is lost.
    """
    if not parse_calls:
        return {"role": "assistant", "content": text}
    prose, calls, errors = get_parser(chat.parser).parse(text, turn)
    if not calls or errors:
        return {"role": "assistant", "content": text}
    return {"role": "assistant", "content": prose or None, "tool_calls": [c.to_openai() for c in calls]}


def _call_key(message: Message) -> list[tuple[str, Any]]:
    return [(c["function"]["name"], _loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []]


def _message_key(m: Message) -> tuple[Any, ...]:
    """What a message says, for telling whether a client re-sent it unchanged (``None`` and ``""`` alike)."""
    return (m.get("role"), m.get("content") or "", m.get("name"), m.get("tool_call_id"), _call_key(m))


def same_reply(sent: Message, returned: Message, raw_text: str) -> bool:
    """Whether the assistant message a client sent back is the reply the server gave (or its raw text)."""
    content = (sent.get("content") or "").strip()
    if not sent.get("tool_calls") and content == raw_text.strip():
        return True
    return content == (returned.get("content") or "").strip() and _call_key(sent) == _call_key(returned)


@dataclass
class Context:
    """One token-exact context of an episode: its segments and the conversation they stand for."""

    tokens: EpisodeTokens
    tools_key: str
    messages: list[Message] = field(default_factory=list)
    """The messages of the last request served in this context."""
    reply: Message | None = None
    raw_text: str = ""

    def continues(self, messages: Sequence[Message], tools_key: str) -> bool:
        """Whether ``messages`` extend this context (see the module docstring)."""
        n = len(self.messages)
        if self.reply is None or tools_key != self.tools_key or len(messages) <= n + 1:
            return False
        if messages[n].get("role") != "assistant":
            return False
        if [_message_key(m) for m in messages[:n]] != [_message_key(m) for m in self.messages]:
            return False
        if any(m.get("role") == "assistant" for m in messages[n + 1 :]):
            return False
        return same_reply(messages[n], self.reply, self.raw_text)


@dataclass
class EpisodeRecord:
    """The contexts of one client episode, oldest first (a new one when the history stopped extending)."""

    id: str
    contexts: list[Context] = field(default_factory=list)
    dropped: int = 0
    touched: float = field(default_factory=time.monotonic)
    n_tokens: int = 0
    """Token ids recorded in the contexts kept (what the store's ``max_tokens`` counts)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON: every context's segments, and ``segments`` (the last context's: one training sequence)."""
        contexts = [
            {
                "index": self.dropped + i,
                "turns": len(c.tokens.sampled),
                "segments": [asdict(s) for s in c.tokens.segments],
            }
            for i, c in enumerate(self.contexts)
        ]
        return {
            "id": self.id,
            "object": "agentgym.episode",
            "contexts": contexts,
            "dropped_contexts": self.dropped,
            "segments": contexts[-1]["segments"] if contexts else [],
        }


class EpisodeStore:
    """Episode records by client id; bounded (least recently used evicted, idle ones expire).

    Args:
        max_episodes: records kept at once.
        ttl: seconds an episode is kept after its last request.
        max_contexts: contexts kept per episode (the oldest dropped beyond).
        max_tokens: token ids kept over all records (the least recently used records are dropped
            beyond; the record in use is kept: it is bounded by ``max_contexts`` contexts of at
            most the model's context length). About 60 bytes each with their logprobs.
    """

    def __init__(
        self, max_episodes: int = 1024, ttl: float = 3600.0, max_contexts: int = 16, max_tokens: int = 20_000_000
    ):
        self.max_episodes, self.ttl, self.max_contexts = max_episodes, ttl, max_contexts
        self.max_tokens = max_tokens
        self._records: OrderedDict[str, EpisodeRecord] = OrderedDict()
        self._lock = threading.Lock()
        self._tokens = 0

    @property
    def tokens(self) -> int:
        """Token ids recorded over all records kept."""
        return self._tokens

    def __len__(self) -> int:
        return len(self._records)

    def ids(self) -> list[str]:
        """The episode ids kept, least recently used first."""
        with self._lock:
            return list(self._records)

    def _expire(self, now: float) -> None:
        while self._records:
            first = next(iter(self._records.values()))
            too_many = len(self._records) > self.max_episodes
            too_big = self._tokens > self.max_tokens and len(self._records) > 1
            if now - first.touched <= self.ttl and not too_many and not too_big:
                break
            _, dropped = self._records.popitem(last=False)
            self._tokens -= dropped.n_tokens

    def account(self, record: EpisodeRecord) -> None:
        """Count ``record``'s tokens again after it grew; drop least recently used records past ``max_tokens``."""
        with self._lock:
            size = sum(len(seg.ids) for c in record.contexts for seg in c.tokens.segments)
            if self._records.get(record.id) is record:
                self._tokens += size - record.n_tokens
            record.n_tokens = size
            self._expire(time.monotonic())

    def get(self, episode: str, create: bool = False) -> EpisodeRecord | None:
        """The record of ``episode`` (a new one when ``create``), marked as just used."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            record = self._records.get(episode)
            if record is None and create:
                record = self._records[episode] = EpisodeRecord(episode)
            if record is not None:
                record.touched = now
                self._records.move_to_end(episode)
                self._expire(now)
            return record

    def add_context(self, record: EpisodeRecord, context: Context) -> int:
        """Append a new context to ``record``; its index within the episode."""
        with self._lock:
            record.contexts.append(context)
            while len(record.contexts) > self.max_contexts:
                record.contexts.pop(0)
                record.dropped += 1
            return record.dropped + len(record.contexts) - 1

    def pop(self, episode: str) -> EpisodeRecord | None:
        """Forget ``episode``; its record, if it had one."""
        with self._lock:
            record = self._records.pop(episode, None)
            if record is not None:
                self._tokens -= record.n_tokens
            return record


@dataclass
class Turn:
    """Where one request's prompt comes from: its context, and the segments it adds before sampling.

    Nothing is recorded until :func:`finish_turn`; :func:`abandon_turn` undoes a prepared turn whose
    sampling failed, so the client's retry continues the same context.
    """

    context: Context
    index: int
    """The context's index within its episode (0 without an episode id)."""
    new_segments: list[TokenSegment]
    new_context: bool
    record: EpisodeRecord | None = None
    undo: tuple[int, int, str] | None = None
    """A continued context's ``(segments, length, text)`` before this turn's env segment."""


def prepare_turn(chat: ChatTokens, store: EpisodeStore, request: ChatRequest) -> Turn:
    """The context the request is sampled in: the episode's current one extended, or a new one."""
    tools_key = json.dumps(request.tools, sort_keys=True)
    record = store.get(request.episode, create=True) if request.episode else None
    shown, template_tools = present(chat, request.messages, request.tools)
    if record is not None and record.contexts:
        current = record.contexts[-1]
        if current.continues(request.messages, tools_key):
            tokens = current.tokens
            undo = (len(tokens.segments), tokens.length, tokens.text)
            try:
                segment = tokens.add_env(shown, len(tokens.sampled))
            except TemplateError:
                pass  # the template re-rendered history: record a new context instead
            else:
                index = record.dropped + len(record.contexts) - 1
                return Turn(current, index, [segment], False, record, undo)
    tokens = EpisodeTokens(chat, shown, template_tools, check_tools=False)
    index = record.dropped + len(record.contexts) if record is not None else 0
    return Turn(Context(tokens, tools_key), index, list(tokens.segments), True, record)


def abandon_turn(turn: Turn) -> None:
    """Forget a prepared turn that was not sampled (its context as it was before)."""
    if turn.undo is not None:
        n, length, text = turn.undo
        tokens = turn.context.tokens
        del tokens.segments[n:]
        tokens.length, tokens.text = length, text


def finish_turn(
    store: EpisodeStore,
    turn: Turn,
    request: ChatRequest,
    ids: list[int],
    logprobs: list[float],
    text: str,
    reply: Message,
) -> TokenSegment:
    """Record the sampled ids of a turn in its context (a new context joins its episode); the sampled segment."""
    tokens = turn.context.tokens
    tokens.add_sampled(ids, logprobs, len(tokens.sampled) + 1)
    turn.context.messages = [m.copy() for m in request.messages]
    turn.context.reply, turn.context.raw_text = reply, text
    if turn.new_context and turn.record is not None:
        store.add_context(turn.record, turn.context)
    if turn.record is not None:
        store.account(turn.record)
    return tokens.segments[-1]


def fetch_segments(base_url: str, episode: str, token: str | None = None, timeout: float = 60.0) -> list[TokenSegment]:
    """The token segments ``agentgym serve-model`` recorded for ``episode`` (its last context).

    For an agent that ran outside agentgym (any harness speaking the OpenAI API with the
    episode's id): put them in ``Trajectory(segments=...)`` with the episode's reward, and the
    trainer's batch builder takes it. ``base_url`` is the one the agent used (``.../v1``).
    """
    import urllib.parse
    import urllib.request

    url = f"{base_url.rstrip('/')}/agentgym/episodes/{urllib.parse.quote(episode, safe='')}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
        record = json.loads(resp.read())
    return [TokenSegment(**s) for s in record["segments"]]


def token_logprobs(tokenizer: Any, ids: Sequence[int], logprobs: Sequence[float]) -> dict[str, Any]:
    """OpenAI's ``choices[i].logprobs``: one entry per sampled token (no alternatives)."""
    content = []
    for i, lp in zip(ids, logprobs, strict=True):
        token = tokenizer.decode([i], skip_special_tokens=False)
        content.append({"token": token, "logprob": float(lp), "bytes": list(token.encode()), "top_logprobs": []})
    return {"content": content, "refusal": None}


def completion_body(
    *,
    model: str,
    reply: Message,
    finish_reason: str,
    prompt_ids: list[int],
    ids: list[int],
    logprobs: dict[str, Any] | None,
    extras: dict[str, Any],
) -> dict[str, Any]:
    """The ``chat.completion`` object, with ``prompt_token_ids``, ``choices[0].token_ids`` and ``agentgym``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
    if reply.get("tool_calls"):
        message["tool_calls"] = reply["tool_calls"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason,
                "logprobs": logprobs,
                "token_ids": ids,
            }
        ],
        "usage": {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(ids),
            "total_tokens": len(prompt_ids) + len(ids),
        },
        "prompt_token_ids": prompt_ids,
        "agentgym": extras,
    }
