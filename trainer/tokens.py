"""Token-exact episodes: chat-template deltas, token segments and training masks.

The policy's context is the concatenation of an episode's segments, never a re-render:

* turn 0: ``prompt`` = the chat template on the opening messages (+ generation prompt);
* each turn t: ``sampled`` = the ids the engine sampled, as sampled (trainable, with logprobs);
  then ``env`` = the template's closing of the assistant message (whatever of it the
  sampled ids did not already contain, e.g. ``\\n`` after ``<|im_end|>``) plus the
  rendering of the new tool/feedback messages and the next generation prompt, obtained as
  the text delta between two renders and tokenized on its own.

This requires a template that renders a conversation as a prefix of its continuation and
the assistant's content verbatim; :func:`check_template` verifies it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from agentgym.messages import Message
from agentgym.trajectory import TokenSegment, Trajectory


class TemplateError(ValueError):
    """The chat template cannot produce exact token deltas."""


_PROBE: list[Message] = [
    {"role": "system", "content": "You solve tasks with tools."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": '<tool_call>{"name": "calculator", "arguments": {"expression": "2 + 3"}}</tool_call>'},
    {"role": "tool", "name": "calculator", "tool_call_id": "call_1_0", "content": "5"},
    {"role": "user", "content": "Now submit it."},
]


class ChatTokens:
    """Renders messages with a tokenizer's chat template and tokenizes deltas exactly."""

    def __init__(self, tokenizer, check: bool = True):
        self.tokenizer = tokenizer
        stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")}
        self.stop_ids: frozenset[int] = frozenset(i for i in stop if isinstance(i, int) and i >= 0 and i != tokenizer.unk_token_id)
        if check:
            check_template(self)

    def render(self, messages: Sequence[Message], generation_prompt: bool) -> str:
        # The raw assistant text already holds its tool calls; rendering the parsed
        # ``tool_calls`` again would put tokens in the context that the model never produced.
        msgs = [{k: v for k, v in m.items() if not (k == "tool_calls" and m.get("role") == "assistant")} for m in messages]
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """The assistant text of sampled ids (a trailing stop token removed)."""
        ids = list(ids)
        if ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=False)


def check_template(chat: ChatTokens) -> None:
    """Fail with a clear message unless the template extends prefixes exactly (text and tokens)."""
    name = getattr(chat.tokenizer, "name_or_path", "tokenizer")
    before = chat.render(_PROBE[:2], True)
    with_reply = chat.render(_PROBE[:3], False)
    after = chat.render(_PROBE, True)
    hint = ("agentgym needs a chat template that renders a conversation as a prefix of its continuation and keeps "
            "the assistant's text verbatim (ChatML does); set tokenizer.chat_template to such a template")
    if not with_reply.startswith(before) or not after.startswith(with_reply):
        raise TemplateError(f"{name}: the chat template does not extend prefixes: rendering more messages changed the "
                            f"text already rendered. {hint}")
    if not with_reply[len(before):].startswith(_PROBE[2]["content"]):
        raise TemplateError(f"{name}: the chat template does not render the assistant's content verbatim right after "
                            f"the generation prompt. {hint}")
    pieces = chat.encode(before) + chat.encode(with_reply[len(before):]) + chat.encode(after[len(with_reply):])
    if pieces != chat.encode(after):
        raise TemplateError(f"{name}: tokenizing the rendered deltas separately gives other ids than tokenizing the whole "
                            f"conversation (a token merges across a message boundary). {hint}")


class EpisodeTokens:
    """The token segments of one episode, built turn by turn."""

    def __init__(self, chat: ChatTokens, opening: Sequence[Message]):
        self.chat = chat
        self.text = chat.render(opening, True)  # the text the context ids stand for
        self.n_messages = len(opening)
        self.segments: list[TokenSegment] = [TokenSegment(chat.encode(self.text), False, None, "prompt", 0)]
        self.length = len(self.segments[0].ids)
        self._last_sampled: list[int] = []

    def ids(self) -> list[int]:
        return [i for s in self.segments for i in s.ids]

    def add_sampled(self, ids: Sequence[int], logprobs: Sequence[float], turn: int) -> None:
        self.segments.append(TokenSegment(list(ids), True, [float(x) for x in logprobs], "sampled", turn))
        self.length += len(ids)
        self._last_sampled = list(ids)

    def add_env(self, messages: Sequence[Message], turn: int) -> TokenSegment:
        """Tokens of everything the template adds after the sampled ids of ``turn`` (messages: the whole transcript)."""
        reply = messages[self.n_messages]
        upto = self.chat.render(messages[: self.n_messages + 1], False)
        full = self.chat.render(messages, True)
        content = reply.get("content") or ""
        tail = upto[len(self.text):]
        if not upto.startswith(self.text) or not tail.startswith(content) or not full.startswith(upto):
            raise TemplateError("the chat template changed already-rendered text mid-episode; see check_template()")
        close = tail[len(content):]
        last = self._last_sampled[-1] if self._last_sampled else None
        if last is not None and last in self.chat.stop_ids:
            stop_text = self.chat.tokenizer.decode([last], skip_special_tokens=False)
            if close.startswith(stop_text):
                close = close[len(stop_text):]
        segment = TokenSegment(self.chat.encode(close + full[len(upto):]), False, None, "env", turn)
        self.segments.append(segment)
        self.length += len(segment.ids)
        self.text = full
        self.n_messages = len(messages)
        return segment


@dataclass
class Sequence1D:
    """One episode as a training sequence (next-token aligned: position p predicts ids[p+1])."""

    ids: np.ndarray  # (L,) int64
    trainable: np.ndarray  # (L,) bool, True on sampled tokens
    sample_logprobs: np.ndarray  # (L,) float32, sampler logprob of sampled tokens, 0 elsewhere
    turns: np.ndarray  # (L,) int64, assistant turn (1-based) of sampled tokens, 0 elsewhere


def episode_sequence(segments: Sequence[TokenSegment]) -> Sequence1D:
    """Concatenate an episode's segments; masks cover exactly the sampled tokens."""
    ids, trainable, lps, turns = [], [], [], []
    for s in segments:
        ids += s.ids
        trainable += [s.trainable] * len(s.ids)
        lps += list(s.logprobs) if (s.trainable and s.logprobs is not None) else [0.0] * len(s.ids)
        turns += [s.turn if s.trainable else 0] * len(s.ids)
    return Sequence1D(np.array(ids, np.int64), np.array(trainable, bool), np.array(lps, np.float32), np.array(turns, np.int64))


def trajectory_sequence(traj: Trajectory) -> Sequence1D:
    return episode_sequence(traj.segments)
