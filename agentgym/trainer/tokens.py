r"""Token-exact episodes: chat-template scaffolding, token segments and training masks.

The rule. The policy's context is the concatenation of an episode's segments, never a
re-render, and the training sequence is that same concatenation:

* turn 0: ``prompt`` = the chat template on the opening messages + the generation prompt;
* turn t: ``sampled`` = the ids the engine sampled, exactly as sampled (trainable, with
  logprobs), whatever ended them; then ``env`` = the text the template renders after the
  assistant's content up to the next generation prompt (the assistant message's close, the
  new tool/feedback messages, the generation prompt), tokenized on its own.

The assistant's content is never rendered: the transcript is rendered with each sampled
turn replaced by a slot marker, and the sampled ids fill the slot. The close is shortened
only by what the sampled ids already hold, so for each finish reason:

* the template's end-of-turn token (``<|im_end|>``, ``<|eot_id|>``): the close minus that
  token follows (``\n<|im_start|>tool...``);
* another stop token (a second EOS such as ``<|endoftext|>``, ``<|eom_id|>``): it is part of
  what the model wrote, and the full close follows (``<|endoftext|><|im_end|>\n...``);
* ``length``: the full close follows the last sampled token.

So the sequence is exactly the template's rendering of the transcript whose assistant
contents are :meth:`ChatTokens.turn_text` of the sampled ids (the decoded ids, without the
end-of-turn token the template writes itself; :meth:`EpisodeTokens.raw_messages`), and
the prompt/env segments are exactly the rendering of the environment's own transcript
(OpenAI schema, raw call text or not) around the assistant turns. The environment reads
:meth:`ChatTokens.decode` (any trailing stop token removed).

Tools: with ``tools="auto"`` a template that renders ``tools=`` (and stays a prefix of its
continuations with them) describes the tools itself, and the environment's own tools block
(:func:`agentgym.parsing.tools_prompt` at the end of the system message) is left out; other
templates see the environment's Hermes block. :attr:`ChatTokens.parser` names the call
format that matches what the model was told.

Not covered: templates that change already-rendered text when the conversation grows
(e.g. dropping earlier reasoning) or render the assistant turn other than right after the
generation prompt, and tokenizers whose pieces merge across message boundaries: both are
refused by :func:`check_template` with the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentgym.messages import Message
from agentgym.parsing import PARSERS, detect_parser, without_tools_prompt
from agentgym.trajectory import TokenSegment, Trajectory

Schemas = list[dict[str, Any]]
"""Tool schemas in the OpenAI format, as ``tools=`` of a chat template takes them."""


class TemplateError(ValueError):
    """The chat template cannot produce exact token deltas."""


_HINT = (
    "agentgym needs a chat template that renders a conversation as a prefix of its continuation and renders "
    "the assistant's content right after the generation prompt (ChatML does); "
    "set tokenizer.chat_template to such a template"
)
# Token names that end generation when the vocabulary has them as special tokens.
END_TOKENS = (
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "</s>",
    "<eos>",
    "<end_of_turn>",
    "<|end|>",
)
_PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "agentgym_probe_tool",
        "description": "Look up a word.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string", "description": "the word"}},
            "required": ["word"],
        },
    },
}


def slot(k: int) -> str:
    """The marker standing for the k-th sampled turn in a rendering (never tokenized)."""
    return f"@@agentgym-sampled-turn-{k}@@"


def _probe(turns: int) -> list[Message]:
    msgs: list[Message] = [
        {"role": "system", "content": "You solve tasks with tools."},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    for k in range(turns):
        msgs += [
            {"role": "assistant", "content": slot(k)},
            {"role": "tool", "name": "agentgym_probe_tool", "tool_call_id": f"c{k + 1:04d}n000", "content": str(5 + k)},
            {"role": "user", "content": "Go on."},
        ]
    return msgs


class ChatTokens:
    """A tokenizer's chat template, used for exact token deltas; see the module docstring.

    Args:
        tokenizer: a transformers tokenizer with a chat template.
        tools: ``auto`` (the template's own tool rendering when it supports ``tools=``, else the
            environment's Hermes block), ``template`` (require the template's) or ``block``.
        parser: the tool-call format of the model's turns (default: :func:`agentgym.parsing.detect_parser`).
        stop_ids: ids that end a turn (default: the end-of-turn token, EOS and the known end tokens in the
            vocabulary).
        check: verify the template at start-up (:func:`check_template`).
    """

    def __init__(
        self,
        tokenizer: Any,
        tools: str = "auto",
        parser: str | None = None,
        stop_ids: Sequence[int] | None = None,
        check: bool = True,
    ):
        if tools not in ("auto", "template", "block"):
            raise ValueError(f"tools={tools!r}: use auto, template or block")
        self.tokenizer = tokenizer
        self.end_of_turn, self.end_of_turn_id = _end_of_turn(self)
        stops: Collection[int | None]
        if stop_ids is None:
            vocab = tokenizer.get_vocab()
            specials = set(getattr(tokenizer, "all_special_ids", [])) | set(
                getattr(tokenizer, "added_tokens_decoder", {})
            )
            stops = {vocab[t] for t in END_TOKENS if t in vocab and vocab[t] in specials} | {tokenizer.eos_token_id}
        else:
            stops = stop_ids
        # The end-of-turn token always ends a turn: a model that samples it has finished its message.
        self.stop_ids: frozenset[int] = frozenset(
            i for i in {*stops, self.end_of_turn_id} if isinstance(i, int) and i >= 0
        )
        self.native_tools, self.tools_reason = (False, "tools='block'") if tools == "block" else _native_tools(self)
        if self.native_tools and parser is None and detect_parser(tokenizer, True, default=None) is None:
            # The template would tell the model a call format no parser here reads (e.g. DeepSeek's).
            self.native_tools = False
            self.tools_reason = (
                "the chat template renders tools= but asks for a call format agentgym cannot parse; pass parser="
            )
        if tools == "template" and not self.native_tools:
            raise TemplateError(
                f"tools='template' but {self.tools_reason}; use tools='auto' to fall back to the Hermes block"
            )
        if parser is not None and parser not in PARSERS:
            raise ValueError(f"unknown tool-call parser {parser!r}; choose one of {sorted(PARSERS)}")
        self.parser: str = parser or detect_parser(tokenizer, self.native_tools) or "hermes"
        if check:
            check_template(self)

    def render(self, messages: Sequence[Message], generation_prompt: bool, tools: Schemas | None = None) -> str:
        """The chat template's text for ``messages`` (a ``None`` content rendered as ``""``)."""
        msgs = [{**m, "content": ""} if m.get("content") is None else dict(m) for m in messages]
        kwargs = {"tools": tools} if tools else {}
        text: str = self.tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=generation_prompt, **kwargs
        )
        return text

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` alone (no special tokens added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """The assistant's text as the environment reads it: a trailing stop token removed."""
        ids = list(ids)
        if ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]
        text: str = self.tokenizer.decode(ids, skip_special_tokens=False)
        return text

    def turn_text(self, ids: Sequence[int]) -> str:
        """The assistant content the sampled ids stand for in the rendering: only the end-of-turn token removed."""
        ids = list(ids)
        if ids and ids[-1] == self.end_of_turn_id:
            ids = ids[:-1]
        text: str = self.tokenizer.decode(ids, skip_special_tokens=False)
        return text

    def present(self, opening: Sequence[Message], tools: Schemas | None) -> tuple[list[Message], Schemas | None]:
        """The opening messages and ``tools=`` the model is shown.

        When the template renders tools and the environment described its tools (its system
        message ends with :func:`tools_prompt`), that block is removed and the schemas go to the
        template instead. Otherwise the messages are shown as they are, without ``tools=``.
        """
        shown = without_tools_prompt(list(opening), tools or []) if self.native_tools else None
        if shown is None:
            return [m.copy() for m in opening], None
        return shown, list(tools or [])


def _end_of_turn(chat: ChatTokens) -> tuple[str, int | None]:
    """The special token that starts the template's close of an assistant message (``<|im_end|>``), if any."""
    text = chat.render([{"role": "user", "content": "Hi."}, {"role": "assistant", "content": slot(0)}], False)
    if slot(0) not in text:
        raise TemplateError(
            f"{_name(chat)}: the chat template does not render the assistant's content verbatim. {_HINT}"
        )
    close = text.split(slot(0), 1)[1]
    ids = chat.encode(close)
    specials = set(getattr(chat.tokenizer, "all_special_ids", [])) | set(
        getattr(chat.tokenizer, "added_tokens_decoder", {})
    )
    if ids and ids[0] in specials:
        token = chat.tokenizer.decode(ids[:1], skip_special_tokens=False)
        if close.startswith(token):
            return token, ids[0]
    return "", None


def _native_tools(chat: ChatTokens) -> tuple[bool, str]:
    """Whether the template renders ``tools=`` itself and stays prefix-stable with them; else why not."""
    base = _probe(0)
    try:
        with_tools = chat.render(base, True, [_PROBE_TOOL])
    except Exception as e:
        return False, f"the chat template fails with tools= ({type(e).__name__}: {e})"
    if "agentgym_probe_tool" not in with_tools or with_tools == chat.render(base, True):
        return False, "the chat template does not render tools="
    problem = _prefix_problem(chat, [_PROBE_TOOL])
    if problem:
        return False, f"with tools= {problem}"
    return True, "the chat template renders tools="


def _prefix_problem(chat: ChatTokens, tools: Schemas | None) -> str | None:
    """None when every turn's rendering continues the previous one right after its slot; else what breaks."""
    try:
        prev = chat.render(_probe(0), True, tools)
        for k in range(2):
            full = chat.render(_probe(k + 1), True, tools)
            if not full.startswith(prev):
                return (
                    "the chat template does not extend prefixes: "
                    "rendering more messages changed the text already rendered"
                )
            if not full[len(prev) :].startswith(slot(k)):
                return "the chat template does not render the assistant's content right after the generation prompt"
            prev = full
    except Exception as e:
        return f"the chat template fails on a tool conversation ({type(e).__name__}: {e})"
    return None


def _name(chat: ChatTokens) -> str:
    return getattr(chat.tokenizer, "name_or_path", "") or "tokenizer"


def check_template(chat: ChatTokens) -> None:
    """Fail with a clear message unless the template gives exact deltas (text and tokens)."""
    tools = [_PROBE_TOOL] if chat.native_tools else None
    problem = _prefix_problem(chat, tools)
    if problem:
        raise TemplateError(f"{_name(chat)}: {problem}. {_HINT}")
    # The deltas tokenized on their own must be the whole rendering tokenized (no merges across boundaries).
    texts = ["I will call it.", "Done: 6."]
    filled = chat.render(_probe(2), True, tools)
    episode = EpisodeTokens(chat, _probe(0), tools, check_tools=False)
    for k, t in enumerate(texts):
        filled = filled.replace(slot(k), t, 1)
        sampled = chat.encode(t) + ([chat.end_of_turn_id] if chat.end_of_turn_id is not None else [])
        episode.add_sampled(sampled, [0.0] * len(sampled), k + 1)
        episode.add_env(_probe(k + 1), k + 1)
    if episode.ids() != chat.encode(filled):
        raise TemplateError(
            f"{_name(chat)}: tokenizing the rendered deltas separately gives other ids than tokenizing the whole "
            f"conversation (a token merges across a message boundary). {_HINT}"
        )


class EpisodeTokens:
    """The token segments of one episode, built turn by turn (see the module docstring for the rule)."""

    def __init__(
        self, chat: ChatTokens, opening: Sequence[Message], tools: Schemas | None = None, check_tools: bool = True
    ):
        self.chat = chat
        if check_tools:
            self.opening, self.tools = chat.present(opening, tools)
        else:
            self.opening, self.tools = [m.copy() for m in opening], tools
        self.text = chat.render(self.opening, True, self.tools)  # the rendering (with slots) the context stands for
        self.segments: list[TokenSegment] = [TokenSegment(chat.encode(self.text), False, None, "prompt", 0)]
        self.length = len(self.segments[0].ids)
        self.sampled: list[list[int]] = []

    @property
    def tool_parser(self) -> str | None:
        """The parser the environment must use when the template describes the tools.

        None when the environment's own tools block describes them (then the environment's parser applies).
        """
        return self.chat.parser if self.tools is not None else None

    def ids(self) -> list[int]:
        """The context so far: every segment's ids, concatenated."""
        return [i for s in self.segments for i in s.ids]

    def add_sampled(self, ids: Sequence[int], logprobs: Sequence[float], turn: int) -> None:
        """Append the ids the engine sampled for ``turn``, exactly as sampled, with their logprobs."""
        self.segments.append(TokenSegment(list(ids), True, [float(x) for x in logprobs], "sampled", turn))
        self.length += len(ids)
        self.sampled.append(list(ids))

    def slotted(self, messages: Sequence[Message]) -> list[Message]:
        """``messages`` as rendered for the context: the shown opening, each later assistant turn a slot."""
        n = len(self.opening)
        out = [m.copy() for m in self.opening]
        k = 0
        for m in messages[n:]:
            if m.get("role") == "assistant":
                out.append({"role": "assistant", "content": slot(k)})
                k += 1
            else:
                out.append(m.copy())
        if k != len(self.sampled):
            raise TemplateError(
                f"the transcript has {k} assistant turns after the opening but {len(self.sampled)} turns were sampled"
            )
        return out

    def raw_messages(self, messages: Sequence[Message]) -> list[Message]:
        """The transcript whose rendering is exactly the training sequence (assistant content = sampled text)."""
        out = self.slotted(messages)
        k = 0
        for m in out:
            if m.get("role") == "assistant" and m.get("content") == slot(k):
                m["content"] = self.chat.turn_text(self.sampled[k])
                k += 1
        return out

    def add_env(self, messages: Sequence[Message], turn: int) -> TokenSegment:
        """Tokens the template renders after the last sampled turn (``messages``: the whole transcript)."""
        k = len(self.sampled) - 1
        full = self.chat.render(self.slotted(messages), True, self.tools)
        if not full.startswith(self.text + slot(k)):
            raise TemplateError(
                "the chat template changed already-rendered text mid-episode (or rendered the assistant turn "
                "elsewhere than right after the generation prompt); see check_template()"
            )
        tail = full[len(self.text) + len(slot(k)) :]
        last = self.sampled[k][-1] if self.sampled[k] else None
        if last is not None and last == self.chat.end_of_turn_id and tail.startswith(self.chat.end_of_turn):
            tail = tail[len(self.chat.end_of_turn) :]
        segment = TokenSegment(self.chat.encode(tail), False, None, "env", turn)
        self.segments.append(segment)
        self.length += len(segment.ids)
        self.text = full
        return segment


def sampled_transcript(chat: ChatTokens, traj: Trajectory) -> tuple[list[Message], Schemas | None]:
    """``(messages, tools)`` whose rendering is exactly the trajectory's token sequence (the text of it).

    ``traj.messages`` as the model was shown it (tools block cut when the template rendered
    ``tools=``), with its last assistant turns' contents replaced by :meth:`ChatTokens.turn_text`
    of the sampled segments, so a stop token other than the end-of-turn token appears as text.
    Render with ``chat.render(messages, False, tools)``: the sequence is a prefix of it (the
    close after the last turn's end-of-turn token is not part of the sequence).
    """
    sampled = [s.ids for s in traj.segments if s.kind == "sampled"]
    positions = [i for i, m in enumerate(traj.messages) if m.get("role") == "assistant"]
    if len(positions) < len(sampled):
        raise ValueError(f"the trajectory has {len(sampled)} sampled turns but {len(positions)} assistant messages")
    first = positions[len(positions) - len(sampled)] if sampled else len(traj.messages)
    opening, tools = chat.present(traj.messages[:first], traj.tools)
    out = opening + [m.copy() for m in traj.messages[first:]]
    for pos, ids in zip(positions[len(positions) - len(sampled) :], sampled, strict=True):
        out[pos] = {"role": "assistant", "content": chat.turn_text(ids)}
    return out, tools


@dataclass
class Sequence1D:
    """One episode as a training sequence (next-token aligned: position p predicts ids[p+1])."""

    ids: np.ndarray  # (L,) int64
    trainable: np.ndarray  # (L,) bool, True on sampled tokens
    sample_logprobs: np.ndarray  # (L,) float32, sampler logprob of sampled tokens, 0 elsewhere
    turns: np.ndarray  # (L,) int64, assistant turn (1-based) of sampled tokens, 0 elsewhere


def episode_sequence(segments: Sequence[TokenSegment]) -> Sequence1D:
    """Concatenate an episode's segments; masks cover exactly the sampled tokens."""
    ids: list[int] = []
    trainable: list[bool] = []
    lps: list[float] = []
    turns: list[int] = []
    for s in segments:
        ids += s.ids
        trainable += [s.trainable] * len(s.ids)
        lps += list(s.logprobs) if (s.trainable and s.logprobs is not None) else [0.0] * len(s.ids)
        turns += [s.turn if s.trainable else 0] * len(s.ids)
    return Sequence1D(
        np.array(ids, np.int64), np.array(trainable, bool), np.array(lps, np.float32), np.array(turns, np.int64)
    )
