"""Tasks and task sets with deterministic train/test splits."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "test")


@dataclass
class Task:
    """One task, as data.

    ``setup`` describes the starting state (files, repository), ``verifier`` how the
    outcome is checked, ``solution`` the reference solution the oracle plays.
    ``split`` pins the task to a split; ``None`` means "by stable hash of the id".
    """

    id: str
    prompt: str
    setup: dict[str, Any] = field(default_factory=dict)
    verifier: dict[str, Any] = field(default_factory=dict)
    solution: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The task as a JSON-ready dict (the inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        """A task from a dict with at least ``id`` and ``prompt``; unknown keys are ignored."""
        known = {k: d[k] for k in ("id", "prompt", "setup", "verifier", "solution", "metadata", "split") if k in d}
        if "id" not in known or "prompt" not in known:
            raise ValueError(f"a task needs 'id' and 'prompt'; got keys {sorted(d)}")
        known["id"] = str(known["id"])
        return cls(**known)


def stable_split(task_id: str, test_fraction: float = 0.2, salt: str = "agentgym") -> str:
    """'test' for a stable ``test_fraction`` of ids (SHA-256, independent of order and Python hash seed)."""
    h = int.from_bytes(hashlib.sha256(f"{salt}:{task_id}".encode()).digest()[:8], "big")
    return "test" if h / 2**64 < test_fraction else "train"


class TaskSet:
    """An ordered collection of tasks with unique ids."""

    def __init__(self, tasks: Iterable[Task], name: str = "tasks", test_fraction: float = 0.2):
        self.name = name
        self.test_fraction = test_fraction
        self._tasks: list[Task] = list(tasks)
        self._by_id: dict[str, Task] = {}
        for t in self._tasks:
            if t.id in self._by_id:
                raise ValueError(f"duplicate task id {t.id!r} in task set {name!r}")
            if t.split is not None and t.split not in SPLITS:
                raise ValueError(f"task {t.id!r} has split {t.split!r}; use one of {SPLITS} or None")
            self._by_id[t.id] = t

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def __getitem__(self, task_id: str) -> Task:
        try:
            return self._by_id[task_id]
        except KeyError:
            sample = ", ".join(list(self._by_id)[:5])
            raise KeyError(f"no task {task_id!r} in {self.name!r} ({len(self)} tasks, e.g. {sample})") from None

    @property
    def ids(self) -> list[str]:
        """The task ids, in order."""
        return [t.id for t in self._tasks]

    def split_of(self, task: Task) -> str:
        """The split of ``task``: its pinned ``split``, else the stable hash of its id."""
        return task.split or stable_split(task.id, self.test_fraction)

    def split(self, name: str) -> TaskSet:
        """The ``train`` or ``test`` subset (``all`` returns self)."""
        if name == "all":
            return self
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; use 'train', 'test' or 'all'")
        return TaskSet([t for t in self._tasks if self.split_of(t) == name], f"{self.name}:{name}", self.test_fraction)

    def filter(self, pred: Callable[[Task], bool]) -> TaskSet:
        """The tasks for which ``pred`` is true, as a new task set with the same name."""
        return TaskSet([t for t in self._tasks if pred(t)], self.name, self.test_fraction)

    def to_jsonl(self, path: str | Path) -> None:
        """Write one task per line, keys sorted, so the file diffs cleanly."""
        with open(path, "w") as f:
            for t in self._tasks:
                f.write(json.dumps(t.to_dict(), sort_keys=True) + "\n")

    @classmethod
    def from_jsonl(cls, path: str | Path, name: str | None = None, test_fraction: float = 0.2) -> TaskSet:
        """Read a task per non-blank line; the set is named after the file unless ``name`` is given."""
        tasks = []
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    tasks.append(Task.from_dict(json.loads(line)))
                except (json.JSONDecodeError, ValueError) as e:
                    raise ValueError(f"{path}:{lineno}: not a valid task: {e}") from e
        return cls(tasks, name or Path(path).stem, test_fraction)

    @classmethod
    def from_source(cls, spec: str, **kwargs: Any) -> TaskSet:
        """Load a task source: ``"module:function"``, a ``.jsonl`` path or a Harbor folder.

        ``module:function`` returns a TaskSet or an iterable of Tasks; a directory is read as a
        Harbor task folder or a folder of them (see :mod:`agentgym.harbor`).
        """
        if spec.endswith(".jsonl"):
            return cls.from_jsonl(spec)
        if Path(spec).is_dir():
            from agentgym.harbor import load_tasks

            return load_tasks(spec)
        module, _, attr = spec.partition(":")
        if not attr:
            raise ValueError(f"task source {spec!r} must be 'module:function' or a .jsonl path")
        obj = getattr(importlib.import_module(module), attr)
        result = obj(**kwargs) if callable(obj) else obj
        return result if isinstance(result, TaskSet) else cls(result, name=attr)
