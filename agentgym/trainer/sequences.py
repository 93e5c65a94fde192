"""Training sequences of whole episodes: token ids plus the mask of the tokens the model wrote.

:func:`trajectory_sequence` is the one place SFT, DPO and exporters get an episode's
training sequence from:

* a trajectory with sampled token segments (a rollout of the trainer or of ``hf:``/``vllm:``
  policies) is exactly the concatenation of its segments (:func:`episode_sequence`): the ids
  as sampled, never re-tokenized;
* a text-only trajectory (an oracle episode, an OpenAI-compatible server's, one loaded from
  text data) is rendered through :class:`~agentgym.trainer.tokens.EpisodeTokens` exactly as
  the policy would have seen it: the opening messages through the chat template (the tools
  block handled as :meth:`ChatTokens.present` does), each assistant turn as ``encode(text)``
  followed by the template's end-of-turn token (the way a sampled turn that stopped on its own
  ends), each later tool/feedback message as the ``env`` delta the rollout would have added.

So the text path yields the sequence a sampled episode with the same turn texts would have,
with one exception that no renderer can remove: tokenization is not unique. A model may
sample ids that decode to a text whose canonical encoding is other ids (``"ab"`` sampled as
``a`` + ``b`` where the tokenizer writes ``ab``); the text path gives the canonical ids.
The ends of turns differ too when a sampled turn did not end with the end-of-turn token
(cut by ``length``, or another stop token such as ``<|endoftext|>``): the text path always
ends a turn with the end-of-turn token, trainable, since that is what the model should write.

The mask (``trainable``) covers exactly the assistant turns' tokens, the end-of-turn token
included; prompts and environment messages are never trained on.

Assistant turn texts come from ``traj.steps[k].action``: a string is kept verbatim (tool-call
markup included); a message dict (text-level APIs) becomes its content followed by one
Hermes ``<tool_call>`` block per call, the format agentgym's own tools block asks for.
Not covered: re-writing calls into another family's format (Llama-3, Mistral): a dict turn
shown to a template whose tool parser is not Hermes is refused with :class:`ValueError`.
"""

from __future__ import annotations

import json
from typing import Any

from agentgym.messages import Message
from agentgym.parsing import format_tool_call
from agentgym.trainer.tokens import ChatTokens, EpisodeTokens, Sequence1D, episode_sequence
from agentgym.trajectory import TokenSegment, Trajectory

__all__ = ["has_sampled_tokens", "text_segments", "trajectory_sequence", "turn_texts"]


def has_sampled_tokens(traj: Trajectory) -> bool:
    """Whether the trajectory carries the ids a token-level policy sampled (its own training sequence)."""
    return any(s.kind == "sampled" or s.trainable for s in traj.segments)


def _hermes_text(message: dict[str, Any]) -> str:
    """A message dict's content followed by one ``<tool_call>`` block per OpenAI call."""
    parts = [message["content"]] if message.get("content") else []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        args = fn.get("arguments") or {}
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = {"arguments": args}
        parts.append(format_tool_call(str(fn.get("name", "")), args))
    return "\n".join(parts)


def turn_texts(traj: Trajectory) -> list[str]:
    """The text the model writes in each assistant turn of ``traj`` (see the module docstring).

    From ``steps[k].action`` when there is one step per assistant message, else from the
    assistant messages themselves (content, then their calls as Hermes blocks).
    """
    assistants = [m for m in traj.messages if m.get("role") == "assistant"]
    if len(traj.steps) == len(assistants):
        sources: list[Any] = [s.action for s in traj.steps]
    else:
        sources = list(assistants)
    return [a if isinstance(a, str) else _hermes_text(dict(a)) for a in sources]


def text_segments(chat: ChatTokens, traj: Trajectory) -> list[TokenSegment]:
    """The token segments a sampled episode with ``traj``'s turn texts would have had.

    Raises:
        ValueError: the trajectory has no assistant turn, or it holds message-dict turns
            while the template describes tools in a non-Hermes call format.
    """
    messages: list[Message] = traj.messages
    positions = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if not positions:
        raise ValueError(
            f"trajectory of task {traj.task_id!r} has no assistant turn: nothing to train on "
            "(was the episode cut before the first turn?)"
        )
    texts = turn_texts(traj)
    episode = EpisodeTokens(chat, messages[: positions[0]], traj.tools)
    parser = episode.tool_parser
    dict_turns = len(traj.steps) != len(positions) or any(not isinstance(s.action, str) for s in traj.steps)
    if dict_turns and parser not in (None, "hermes"):
        raise ValueError(
            f"trajectory of task {traj.task_id!r} has message-dict turns, which render as Hermes <tool_call> "
            f"blocks, but the chat template tells the model to call tools in the {parser!r} format; "
            "use ChatTokens(tokenizer, tools='block') so the model is shown agentgym's Hermes tools block"
        )
    end = [chat.end_of_turn_id] if chat.end_of_turn_id is not None else []
    for k, text in enumerate(texts):
        ids = chat.encode(text) + end
        episode.add_sampled(ids, [0.0] * len(ids), k + 1)
        if k + 1 < len(positions):
            episode.add_env(messages[: positions[k + 1]], k + 1)
    return episode.segments


def trajectory_sequence(chat: ChatTokens, traj: Trajectory) -> Sequence1D:
    """The token-exact training sequence of one episode: ids, the assistant mask, logprobs, turns.

    Uses the trajectory's own token segments when it has sampled ones (``sample_logprobs`` are
    then the sampler's); otherwise renders its transcript as the policy would have seen it
    (:func:`text_segments`; ``sample_logprobs`` are 0). See the module docstring.

    Args:
        chat: the chat template of the model to train (the one that sampled, for rollouts).
        traj: the episode.

    Returns:
        ``Sequence1D`` with ``trainable`` True exactly on the assistant turns' tokens.
    """
    if has_sampled_tokens(traj):
        return episode_sequence(traj.segments)
    return episode_sequence(text_segments(chat, traj))
