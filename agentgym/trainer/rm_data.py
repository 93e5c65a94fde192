"""Training data of reward models: preference pairs and per-turn labels, read from JSONL.

Three row formats, mixable in one file:

* a pair of whole transcripts: ``{"chosen": [messages], "rejected": [messages]}``;
* TRL's conversational preference format: ``{"prompt": [messages], "chosen": [messages],
  "rejected": [messages]}``; the prompt is prepended to both sides (TRL's standard format,
  strings instead of message lists, is read as one user / one assistant message);
* an agentgym trajectory (a line of ``trajectories.jsonl`` from ``agentgym run``/``train``):
  trajectories are paired with :func:`agentgym.trainer.dpo.preference_pairs` (same task and
  opening, rewards at least ``min_margin`` apart, infrastructure failures excluded).

A pair row may add ``"tools"`` (OpenAI tool schemas, for templates that render ``tools=``)
and ``"margin"`` (a per-pair Bradley-Terry margin, as in Llama 2's reward models).

Per-turn labels (process reward models): ``{"messages": [...], "turn_labels": [1, 0, ...]}``,
one label in [0, 1] per assistant turn, or a trajectory, whose every turn is labelled with its
episode's outcome (1 when it succeeded, else 0): a Monte-Carlo label from the one rollout that
continued from that turn (Math-Shepherd's hard estimate with N = 1, Wang et al. 2024).

A bad row raises ``ValueError("<file>:<line>: ...")``. The held-out split is a stable hash of
each example's content (:func:`split`), so it does not move when rows are added or reordered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agentgym.trajectory import Trajectory

__all__ = [
    "LabelledTranscript",
    "PreferencePair",
    "content_key",
    "data_files",
    "load_pairs",
    "load_turn_labels",
    "split",
]

Transcript = list[dict[str, Any]]
"""OpenAI chat messages (``role``, ``content``, optionally ``tool_calls``, ``tool_call_id``, ``name``)."""

_ROLES = ("system", "user", "assistant", "tool")


def content_key(*parts: Any) -> str:
    """A stable hex digest of JSON-able ``parts`` (key order and whitespace do not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PreferencePair:
    """Two transcripts, the first preferred; ``source`` names where the pair came from (``file:line``)."""

    chosen: Transcript
    rejected: Transcript
    tools: list[dict[str, Any]] | None = None
    margin: float | None = None
    source: str = ""

    def key(self) -> str:
        """The pair's content hash (the held-out split is drawn from it)."""
        return content_key(self.chosen, self.rejected, self.tools)


@dataclass(frozen=True)
class LabelledTranscript:
    """A transcript with one label in [0, 1] per assistant turn (process reward model data)."""

    messages: Transcript
    turn_labels: list[float]
    tools: list[dict[str, Any]] | None = None
    source: str = ""

    def key(self) -> str:
        """The example's content hash (the held-out split is drawn from it)."""
        return content_key(self.messages, self.turn_labels, self.tools)


def _messages(value: Any, where: str, field: str, role_if_str: str) -> Transcript:
    """A list of chat messages, checked; a string is one message of ``role_if_str``."""
    if isinstance(value, str):
        return [{"role": role_if_str, "content": value}]
    if not isinstance(value, list):
        raise ValueError(f"{where}: {field!r} must be a list of chat messages, got {type(value).__name__}")
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise ValueError(f"{where}: {field}[{i}] is not a chat message with a role in {'/'.join(_ROLES)}")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise ValueError(f"{where}: {field}[{i}].content must be a string, a list of parts or null")
    return [dict(m) for m in value]


def data_files(data: str | Path | Sequence[str | Path]) -> list[Path]:
    """The JSONL files of a ``data`` argument: a path, a comma-separated list of paths, or a sequence of them."""
    parts = data.split(",") if isinstance(data, str) else [data] if isinstance(data, Path) else list(data)
    files = [Path(p.strip() if isinstance(p, str) else p) for p in parts if str(p).strip()]
    if not files:
        raise ValueError("data: name at least one JSONL file")
    return files


def _rows(data: str | Path | Sequence[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    """``(file:line, row)`` of every non-blank line of every file; a line that is not a JSON object is an error."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in data_files(data):
        out += _file_rows(path)
    return out


def _file_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a JSONL of preference pairs, labelled turns or trajectories)")
    out: list[tuple[str, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(row, dict):
                raise ValueError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
            out.append((where, row))
    return out


def _is_trajectory(row: dict[str, Any]) -> bool:
    return "env_id" in row and "task_id" in row and "messages" in row


def _trajectory(row: dict[str, Any], where: str) -> Trajectory:
    try:
        traj = Trajectory.from_dict(row)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{where}: not a readable agentgym trajectory ({' '.join(str(e).split())[:200]})") from e
    traj.metadata = {**traj.metadata, "rm_source": where}
    return traj


def _tools(row: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    tools = row.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise ValueError(f"{where}: 'tools' must be a list of OpenAI tool schemas")
    return tools or None


def load_pairs(
    path: str | Path | Sequence[str | Path], *, min_margin: float = 0.5, max_pairs_per_task: int = 4, seed: int = 0
) -> list[PreferencePair]:
    """The preference pairs of JSONL files (see the module docstring for the row formats).

    Trajectory rows of all the files are paired together, so the episodes of two runs (say a strong and a weak
    policy on the same tasks) give pairs across the runs.

    Args:
        path: a JSONL file, several as a comma-separated string, or a sequence of them.
        min_margin: trajectory rows: the least reward gap of a pair (``preference_pairs``).
        max_pairs_per_task: trajectory rows: the most pairs per task.
        seed: trajectory rows: the seed of the pairing draw.

    Returns:
        Pair rows in file order, then the pairs built from trajectory rows.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a bad row (``file:line: why``), or no pair at all.
    """
    from agentgym.trainer.dpo import preference_pairs

    pairs: list[PreferencePair] = []
    trajs: list[Trajectory] = []
    for where, row in _rows(path):
        if _is_trajectory(row):
            trajs.append(_trajectory(row, where))
            continue
        if "chosen" not in row or "rejected" not in row:
            raise ValueError(
                f"{where}: expected {{'chosen', 'rejected'}} (optionally 'prompt') or an agentgym trajectory; "
                f"got keys {sorted(row)}"
            )
        prompt = _messages(row["prompt"], where, "prompt", "user") if "prompt" in row else []
        chosen = _messages(row["chosen"], where, "chosen", "assistant")
        rejected = _messages(row["rejected"], where, "rejected", "assistant")
        if not chosen or not rejected:
            raise ValueError(f"{where}: 'chosen' and 'rejected' must not be empty")
        margin = row.get("margin")
        if margin is not None and not isinstance(margin, int | float):
            raise ValueError(f"{where}: 'margin' must be a number")
        pairs.append(
            PreferencePair(
                prompt + chosen,
                prompt + rejected,
                _tools(row, where),
                None if margin is None else float(margin),
                where,
            )
        )
    if trajs:
        for c, r in preference_pairs(trajs, min_margin, max_pairs_per_task=max_pairs_per_task, seed=seed):
            pairs.append(
                PreferencePair(
                    [dict(m) for m in c.messages],
                    [dict(m) for m in r.messages],
                    c.tools or None,
                    None,
                    f"{c.metadata['rm_source']} > {r.metadata['rm_source']}",
                )
            )
    if not pairs:
        raise ValueError(
            f"{path}: no preference pairs ({len(trajs)} trajectories, none of one task with rewards at least "
            f"min_margin={min_margin:g} apart)"
        )
    return pairs


def _assistant_turns(messages: Sequence[Any]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


def load_turn_labels(path: str | Path | Sequence[str | Path]) -> list[LabelledTranscript]:
    """Transcripts with a label per assistant turn, from ``turn_labels`` rows and trajectory rows.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a bad row (``file:line: why``): labels not in [0, 1], or not one per assistant turn.
    """
    out: list[LabelledTranscript] = []
    for where, row in _rows(path):
        if _is_trajectory(row):
            traj = _trajectory(row, where)
            if traj.infra_failure or _assistant_turns(traj.messages) == 0:
                continue  # an infrastructure failure says nothing about the turns
            label = 1.0 if traj.success else 0.0
            out.append(
                LabelledTranscript(
                    [dict(m) for m in traj.messages],
                    [label] * _assistant_turns(traj.messages),
                    traj.tools or None,
                    where,
                )
            )
            continue
        if "messages" not in row or "turn_labels" not in row:
            raise ValueError(
                f"{where}: expected {{'messages', 'turn_labels'}} or an agentgym trajectory; got keys {sorted(row)}"
            )
        messages = _messages(row["messages"], where, "messages", "user")
        labels = row["turn_labels"]
        if not isinstance(labels, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 1 for x in labels
        ):
            raise ValueError(f"{where}: 'turn_labels' must be a list of numbers in [0, 1]")
        turns = _assistant_turns(messages)
        if messages and messages[0].get("role") == "assistant":
            raise ValueError(f"{where}: the transcript opens with an assistant turn; a prompt must come first")
        if len(labels) != turns or turns == 0:
            raise ValueError(f"{where}: {len(labels)} turn_labels for {turns} assistant turns (one label per turn)")
        out.append(LabelledTranscript(messages, [float(x) for x in labels], _tools(row, where), where))
    if not out:
        raise ValueError(f"{path}: no labelled transcripts")
    return out


T = TypeVar("T", PreferencePair, LabelledTranscript)


def split(items: Sequence[T], test_fraction: float, seed: int = 0) -> tuple[list[T], list[T]]:
    """``(train, test)``: an item is held out when the hash of ``(seed, its content)`` falls under ``test_fraction``.

    Deterministic and stable: an item's side depends only on its content and ``seed``, not on
    the file's order or size, so the held-out set of a growing file only grows. When the draw
    leaves one side empty (a tiny file) and both are wanted, the item with the lowest hash is
    moved to the test side (or the highest to the train side).

    Raises:
        ValueError: ``test_fraction`` not in [0, 1).
    """
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction}: must be in [0, 1)")
    draws = [int(content_key(seed, it.key())[:15], 16) / 16**15 for it in items]
    test_idx = {i for i, u in enumerate(draws) if u < test_fraction}
    order = sorted(range(len(items)), key=lambda i: draws[i])
    if test_fraction > 0 and len(items) >= 2:
        if not test_idx:
            test_idx = {order[0]}
        elif len(test_idx) == len(items):
            test_idx.discard(order[-1])
    train = [it for i, it in enumerate(items) if i not in test_idx]
    test = [it for i, it in enumerate(items) if i in test_idx]
    return train, test
