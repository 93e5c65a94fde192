"""Trajectories as data other trainers read: TRL's SFT and preference formats, verl-style token rows.

Three record kinds, each a plain JSON-ready dict, written as JSONL (:func:`write_jsonl`, which
``datasets.load_dataset("json", data_files=...)`` reads back unchanged) or as a Hugging Face
:class:`datasets.Dataset` (:func:`to_dataset`, :func:`save_dataset`):

* :func:`sft_records`: TRL's conversational language-modeling format,
  ``{"messages": [...], "tools": [...]}``, for ``trl.SFTTrainer``. The messages are the episode's
  OpenAI-schema transcript; each tool call's ``arguments`` is a JSON object (a dict, as chat
  templates and TRL expect it), not the JSON string of the OpenAI API; ``tools`` are the
  episode's OpenAI tool schemas, rendered by the chat template (``tools=``), so the environment's
  own tools block is cut from the system message (the model is told about the tools once).
* :func:`preference_records`: TRL's conversational preference format, ``{"prompt", "chosen",
  "rejected", "tools"}``, for ``trl.DPOTrainer``: the shared opening messages, then the rest of
  each episode (every assistant turn and what the environment answered) as the completion.
* :func:`token_records`: one row per episode of a token-level rollout (the trainer's, with
  :class:`~agentgym.trajectory.TokenSegment` s), with the fields of verl's agent-loop output
  (``verl.experimental.agent_loop.AgentLoopOutput``):

  ======================  ====================================================================
  ``prompt_ids``          the opening segment (chat template on the opening messages + the
                          generation prompt)
  ``response_ids``        everything after it, in order: sampled ids and env (tool result /
                          feedback) ids, exactly as the policy saw them
  ``response_mask``       1 on sampled (trainable) ids, 0 on env ids (verl: 1 for LLM-generated
                          tokens, 0 for tool-response tokens)
  ``response_logprobs``   the sampler's logprob of each sampled id, 0.0 on env ids
  ``reward_score``        the episode reward (process rewards + outcome, ``Trajectory.reward``)
  ``num_turns``           verl's count: 1 (the prompt) + assistant turns + environment replies
  ======================  ====================================================================

  plus agentgym's own: ``advantages`` (per response token, the GRPO advantage of the turn a
  sampled token belongs to, 0.0 on env ids; :mod:`agentgym.trainer.advantages`),
  ``outcome_reward``, ``assistant_turns``, ``task_id``, ``group_id``, ``env_id``. In verl,
  ``reward_score`` is the trajectory's score and advantages are computed by the trainer from it;
  ``advantages`` is for trainers (or checks) that take them precomputed.

Not covered: episodes masked by the GRPO trainer (infrastructure failures, non-finite rewards)
are left out of token records; content given as a list of parts (agentgym writes strings).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from datasets import Dataset, Features, Json, List, Value  # type: ignore[import-untyped]  # ships no type information

from agentgym.messages import Message, copy_json
from agentgym.parsing import without_tools_prompt
from agentgym.trainer import advantages as adv_fn
from agentgym.trajectory import Trajectory, load_jsonl

Record = dict[str, Any]
Format = Literal["sft", "preference", "tokens"]
FORMATS: tuple[Format, ...] = ("sft", "preference", "tokens")


def trl_messages(messages: Sequence[Message], tools: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """An OpenAI-schema transcript as TRL and chat templates take it.

    Tool-call ``arguments`` become JSON objects (dicts); the system message loses the
    environment's tools block when ``tools`` are given (the chat template renders them).
    """
    msgs = list(messages)
    if tools:
        msgs = without_tools_prompt(msgs, list(tools)) or msgs
    out: list[dict[str, Any]] = []
    for m in msgs:
        row: dict[str, Any] = copy_json(dict(m))
        calls = row.get("tool_calls")
        if calls:
            row["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": _arguments(c["function"].get("arguments"))}}
                for c in calls
            ]
        out.append(row)
    return out


def _arguments(arguments: Any) -> Any:
    """The arguments of a call as a JSON object (the OpenAI API stores them as a JSON string)."""
    if isinstance(arguments, str):
        return json.loads(arguments)
    return arguments


def sft_records(trajs: Iterable[Trajectory], min_reward: float | None = None) -> list[Record]:
    """TRL conversational SFT records ``{"messages", "tools"}``, one per episode.

    Args:
        trajs: episodes (oracle or rollouts; only the transcript is used).
        min_reward: keep only episodes whose reward (``Trajectory.reward``) is at least this
            (rejection sampling); None keeps every episode that is not an infrastructure failure.

    Returns:
        One record per kept episode, in order.
    """
    out = []
    for t in trajs:
        if t.infra_failure or (min_reward is not None and t.reward < min_reward):
            continue
        out.append({"messages": trl_messages(t.messages, t.tools), "tools": copy_json(t.tools)})
    return out


def split_prompt(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """``(opening, rest)``: the messages before the first assistant turn, and the turns from it on."""
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    return list(messages[:first]), list(messages[first:])


def preference_records(pairs: Iterable[tuple[Trajectory, Trajectory]]) -> list[Record]:
    """TRL conversational preference records ``{"prompt", "chosen", "rejected", "tools"}``.

    Args:
        pairs: ``(chosen, rejected)`` episodes of the same task (e.g. from
            ``agentgym.trainer.dpo.preference_pairs``); both must open with the same messages.

    Returns:
        One record per pair: the shared opening messages as ``prompt``, the rest of each
        episode (assistant turns, tool results, feedback) as ``chosen`` / ``rejected``.

    Raises:
        ValueError: a pair whose episodes open differently (not the same task), or an episode
            without an assistant turn.
    """
    out = []
    for chosen, rejected in pairs:
        c_open, c_rest = split_prompt(trl_messages(chosen.messages, chosen.tools))  # type: ignore[arg-type]
        r_open, r_rest = split_prompt(trl_messages(rejected.messages, rejected.tools))  # type: ignore[arg-type]
        if c_open != r_open:
            raise ValueError(
                f"preference pair {chosen.task_id!r} / {rejected.task_id!r}: the episodes open with different "
                "messages; pair episodes of the same task (agentgym.trainer.dpo.preference_pairs does)"
            )
        if not c_rest or not r_rest:
            raise ValueError(f"preference pair on task {chosen.task_id!r}: an episode has no assistant turn")
        out.append({"prompt": c_open, "chosen": c_rest, "rejected": r_rest, "tools": copy_json(chosen.tools)})
    return out


def token_records(
    trajs: Sequence[Trajectory],
    scale: adv_fn.Scale = "group",
    process_weight: float = 0.0,
    gamma: float = 1.0,
) -> list[Record]:
    """Token-level rows in verl's agent-loop layout (see the module docstring for each field).

    Advantages are GRPO's, computed over ``trajs`` grouped by ``group_id`` (the episodes of one
    task), exactly as the trainer computes them (:mod:`agentgym.trainer.advantages`).

    Args:
        trajs: episodes with token segments (``agentgym train`` rollouts, or ``hf:`` / ``vllm:``
            policies in ``agentgym run``).
        scale: how outcome advantages are scaled (``group``, ``batch`` or ``none``).
        process_weight: weight of per-turn (process) advantages, 0 for outcome only.
        gamma: discount of the per-turn return-to-go.

    Returns:
        One row per episode that is not masked (infrastructure failures, non-finite rewards).

    Raises:
        ValueError: an episode without token segments (a text-level rollout, e.g. the oracle).
    """
    for t in trajs:
        if not t.segments or t.segments[0].kind != "prompt":
            raise ValueError(
                f"episode {t.task_id!r} ({t.policy or 'unknown policy'}) has no token segments: token records need "
                "token-level rollouts (agentgym train, or agentgym run with an hf:/vllm: policy); "
                "export text-level episodes with --format sft"
            )
    group_ids = [t.group_id or t.task_id for t in trajs]
    valid = np.array([_trainable(t) for t in trajs], dtype=bool)  # (N,)
    outcomes = np.array([float(t.outcome_reward or 0.0) if v else 0.0 for t, v in zip(trajs, valid, strict=True)])
    a_out = adv_fn.outcome_advantages(outcomes, group_ids, valid, scale)  # (N,)
    process = None
    if process_weight > 0:
        turn_rewards = [t.process_rewards if v else [] for t, v in zip(trajs, valid, strict=True)]
        process = adv_fn.process_advantages(turn_rewards, group_ids, gamma, valid, scale)
    per_turn = adv_fn.turn_advantages(a_out, process, process_weight)  # N x (T_i,)
    rows = []
    for i, t in enumerate(trajs):
        if not valid[i]:
            continue
        response = t.segments[1:]
        turns = np.array([s.turn if s.trainable else 0 for s in response for _ in s.ids], dtype=np.int64)  # (R,)
        rows.append(
            {
                "prompt_ids": list(t.segments[0].ids),
                "response_ids": [i for s in response for i in s.ids],
                "response_mask": [int(s.trainable) for s in response for _ in s.ids],
                "response_logprobs": [
                    float(x)
                    for s in response
                    for x in (s.logprobs if s.trainable and s.logprobs is not None else [0.0] * len(s.ids))
                ],
                "advantages": [float(x) for x in adv_fn.token_advantages(per_turn[i], turns)],
                "reward_score": t.reward,
                "outcome_reward": t.outcome_reward,
                "num_turns": 1 + t.num_turns + sum(1 for s in response if s.kind == "env" and s.ids),
                "assistant_turns": t.num_turns,
                "task_id": t.task_id,
                "group_id": group_ids[i],
                "env_id": t.env_id,
            }
        )
    return rows


def _trainable(t: Trajectory) -> bool:
    """Whether the GRPO trainer would train on the episode (see ``agentgym.trainer.batch.mask_reason``)."""
    if t.infra_failure or not any(s.trainable and s.ids for s in t.segments):
        return False
    rewards = [t.outcome_reward or 0.0, *t.process_rewards]
    return all(isinstance(r, (int, float)) and np.isfinite(r) for r in rewards)


def write_jsonl(records: Iterable[Record], path: str | Path) -> int:
    """Write one record per line (UTF-8, strict JSON); return how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n")
            n += 1
    return n


def to_dataset(records: Sequence[Record]) -> Dataset:
    """The records as a :class:`datasets.Dataset` (messages of mixed shapes stored as JSON values).

    Rows read back equal to the records: message lists and tool schemas, whose keys differ from
    one message (or tool) to the next, are typed ``datasets.Json`` instead of one merged struct
    (which would fill every message with the keys of all the others, set to None).
    """
    if not records:
        raise ValueError("no records to put in a dataset (were all episodes filtered out?)")
    features: dict[str, Any] = {}
    for key, value in records[0].items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            features[key] = List(Json())
        elif isinstance(value, list) and all(isinstance(x, int) for x in value):
            features[key] = List(Value("int64"))
        elif isinstance(value, list):
            features[key] = List(Value("float64"))
        elif isinstance(value, str):
            features[key] = Value("string")
        elif isinstance(value, (bool, int)) and key.endswith("turns"):
            features[key] = Value("int64")
        else:
            features[key] = Value("float64") if value is None or isinstance(value, (int, float)) else Json()
    return Dataset.from_list(list(records), features=Features(features))


def save_dataset(records: Sequence[Record], path: str | Path) -> Dataset:
    """:func:`to_dataset`, saved with ``save_to_disk`` (reload with ``datasets.load_from_disk``)."""
    ds = to_dataset(records)
    ds.save_to_disk(str(path))
    return ds


def records(
    fmt: Format, trajs: Sequence[Trajectory], min_reward: float | None = None, min_margin: float = 0.5
) -> list[Record]:
    """The records of one format; ``preference`` pairs episodes with ``agentgym.trainer.dpo.preference_pairs``."""
    if fmt == "sft":
        return sft_records(trajs, min_reward)
    if fmt == "preference":
        from agentgym.trainer.dpo import preference_pairs

        return preference_records(preference_pairs(trajs, min_margin=min_margin))
    if fmt == "tokens":
        return token_records(trajs)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``agentgym export``."""
    parser.add_argument("--format", choices=FORMATS, required=True, help="sft, preference (DPO) or tokens (verl)")
    parser.add_argument("--input", required=True, help="trajectories JSONL (agentgym run/collect/train output)")
    parser.add_argument("--output", required=True, help="where to write: a .jsonl file, or a dataset directory")
    parser.add_argument(
        "--min-reward", type=float, default=None, help="sft: keep episodes whose reward is at least this"
    )
    parser.add_argument(
        "--min-margin", type=float, default=0.5, help="preference: least reward gap between chosen and rejected"
    )
    parser.add_argument(
        "--dataset",
        action="store_true",
        help="write a Hugging Face dataset directory (datasets.load_from_disk) instead of JSONL",
    )


def run(args: argparse.Namespace) -> int:
    """``agentgym export``: read trajectories, write records; print what was written."""
    trajs = load_jsonl(args.input)
    rows = records(args.format, trajs, args.min_reward, args.min_margin)
    if not rows:
        print(f"no {args.format} records from {len(trajs)} episodes in {args.input}; nothing written")
        return 1
    if args.dataset:
        save_dataset(rows, args.output)
    else:
        write_jsonl(rows, args.output)
    print(f"{len(rows)} {args.format} records from {len(trajs)} episodes -> {args.output}")
    return 0
