r"""Synthesized coding tasks stored compactly: one JSON line per task, the project fetched on first use.

A full synth task holds every file of its project (``tasks.jsonl`` from ``agentgym tasks synth``
is hundreds of kilobytes per task). Every file but the mutated one is the project's own, so a
compact record keeps only what differs, and names the project's source distribution::

    {"format": "agentgym.synth/1", "id": "idna-3.7__idna.core__swap_args-11",
     "project": "idna-3.7", "sdist": "idna==3.7", "sdist_sha256": "<archive sha256>",
     "files_sha256": "<sha256 of the project's files as synth loaded them>",
     "issue": "idna-3.7: wrong results in ...",          # the task's prompt
     "patch": "--- a/idna/core.py\n+++ b/idna/core.py\n@@ ...",   # project -> visible base state
     "removed": ["tests/test_idna.py"],                   # left out of the visible state
     "hidden_tests": ["tests/test_idna.py"],              # the project's files, added at grading
     "fix": ["idna/core.py"],                             # the reference fix: the project's files
     "fail_to_pass": [...], "pass_to_pass": [...], "test_paths": [...],
     "split": "train", "metadata": {"operator": ..., "mutation": ..., "seed": 0, ...},
     "task_sha256": "<sha256 of the full task>"}

:func:`load` rebuilds each task the way synth built it (the sdist downloaded once into
:func:`sdist_cache` and checked against ``sdist_sha256``; its files read with synth's own
:func:`~.synth.project.load_project` and :func:`~.synth.deps.with_package_metadata`; the
patch applied) and proves the result is the packed task: its ``task_sha256`` must match.
:func:`pack` is the inverse and checks every record by rebuilding it before writing it.

Files ending in ``.gz`` or ``.xz`` are compressed. The issue text is under ``issue`` (not
``prompt``) so a compact file read as a file of full tasks fails loudly.

Command line (until ``agentgym tasks pack`` exists)::

    python -m agentgym.envs.coding.dataset pack DIR/tasks.jsonl --out synth.jsonl.xz
    python -m agentgym.envs.coding.dataset fetch synth.jsonl.xz      # pre-fetch the sdists
    python -m agentgym.envs.coding.dataset sample synth.jsonl.xz --n 100 --seed 0 --out sample.jsonl.gz
    python -m agentgym.envs.coding.dataset unpack sample.jsonl.gz --out sample-full.jsonl
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import hashlib
import json
import lzma
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from agentgym.errors import AgentGymError
from agentgym.tasks import Task, TaskSet

from .repo import make_task
from .synth.deps import cache_root, with_package_metadata
from .synth.project import SDIST_SUFFIXES, _unpack, download_sdist, load_project

__all__ = [
    "FORMAT",
    "SHIPPED",
    "DatasetError",
    "PackReport",
    "apply_patch",
    "compact_record",
    "expand_record",
    "fetch_sdist",
    "is_compact",
    "load",
    "load_shipped",
    "make_patch",
    "pack",
    "project_files",
    "read_records",
    "sample",
    "sdist_cache",
    "task_digest",
    "write_records",
]

FORMAT = "agentgym.synth/1"
"""The ``format`` of every compact record; a loader refuses others."""
_R = TypeVar("_R", bound=Mapping[str, Any])
SHIPPED = Path(__file__).parent / "synth_data" / "pypi.jsonl.xz"
"""The shipped dataset: tasks synthesized from PyPI projects by ``scripts/build_synth_dataset.sh``."""
VERIFIER_KEYS = frozenset({"fail_to_pass", "pass_to_pass", "hidden_tests", "test_paths"})
"""The verifier fields a compact record holds (those of the shared coding-task format)."""


class DatasetError(AgentGymError, ValueError):
    """A compact dataset cannot be packed or rebuilt; the message names the task or project and the fix."""


def sdist_cache() -> Path:
    """Where downloaded sdists are kept: ``$AGENTGYM_CACHE/sdists`` (default ``~/.cache/agentgym/sdists``)."""
    return cache_root().parent / "sdists"


def _is_pypi(spec: str) -> bool:
    return "==" in spec and "/" not in spec


# -- hashes -------------------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def task_digest(task: Task) -> str:
    """The sha256 of a task's canonical JSON (every field: files, hidden tests, fix, verifier, metadata)."""
    return hashlib.sha256(_canonical(task.to_dict())).hexdigest()


def _files_digest(files: Mapping[str, str]) -> str:
    return hashlib.sha256(_canonical(dict(files))).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- unified diffs ------------------------------------------------------------------------

_NO_NEWLINE = "\\ No newline at end of file\n"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _lines(text: str) -> list[str]:
    r"""``text`` split after each ``\n`` only (``str.splitlines`` also splits at ``\r``, ``\f``...)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def make_patch(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    r"""A unified diff (``patch -p1`` style) turning ``old`` into ``new`` for the files ``new`` changes or adds.

    Files of ``old`` missing from ``new`` are not deleted by the patch (a record lists them in
    ``removed``). A last line without a newline is marked ``\ No newline at end of file``.
    """
    out: list[str] = []
    for path in sorted(new):
        if path in old and old[path] == new[path]:
            continue
        out.append(f"--- {'a/' + path if path in old else '/dev/null'}\n+++ b/{path}\n")
        before, after = _lines(old.get(path, "")), _lines(new[path])
        for line in list(difflib.unified_diff(before, after, n=3))[2:]:
            out.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE)
    return "".join(out)


def apply_patch(old: Mapping[str, str], patch: str) -> dict[str, str]:
    """``old`` with ``patch`` (from :func:`make_patch`) applied; every context line must match exactly.

    Raises:
        ValueError: The patch is malformed or does not apply (the message names the file and line).
    """
    files = dict(old)
    lines = _lines(patch)
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ b/")):
            raise ValueError(f"patch line {i + 1}: expected a '--- a/PATH' and '+++ b/PATH' header")
        path = lines[i + 1][len("+++ b/") :].rstrip("\n")
        new_file = lines[i].rstrip("\n") == "--- /dev/null"
        if not new_file and path not in files:
            raise ValueError(f"patch changes {path!r}, which the project does not have")
        source = [] if new_file else _lines(files[path])
        result: list[str] = []
        pos = 0
        i += 2
        while i < len(lines) and lines[i].startswith("@@"):
            m = _HUNK.match(lines[i])
            if not m:
                raise ValueError(f"patch line {i + 1}: malformed hunk header {lines[i].rstrip()!r}")
            start, length = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
            at = start - 1 if length else start
            if at < pos or at > len(source):
                raise ValueError(f"{path}: hunk at line {start} is out of order or past the end of the file")
            result += source[pos:at]
            pos = at
            i += 1
            body: list[tuple[str, str]] = []
            # the header's counts say where the hunk ends (a removed line may itself start with "--- ")
            old_left, new_left = length, int(m.group(4) if m.group(4) is not None else 1)
            while i < len(lines) and (old_left or new_left or lines[i][:1] == "\\"):
                tag = lines[i][:1]
                if tag == "\\":
                    if not body:
                        raise ValueError(f"patch line {i + 1}: a no-newline marker without a line before it")
                    body[-1] = (body[-1][0], body[-1][1].removesuffix("\n"))
                elif tag in (" ", "-", "+"):
                    body.append((tag, lines[i][1:]))
                    old_left -= tag in " -"
                    new_left -= tag in " +"
                    if old_left < 0 or new_left < 0:
                        raise ValueError(f"patch line {i + 1}: more lines than the hunk header at line {start} says")
                else:
                    raise ValueError(f"patch line {i + 1}: the hunk at line {start} ends early")
                i += 1
            if old_left or new_left:
                raise ValueError(f"{path}: the hunk at line {start} is cut short")
            for tag, text in body:
                if tag in " -":
                    if pos >= len(source) or source[pos] != text:
                        raise ValueError(f"{path}: the patch does not apply at line {pos + 1}")
                    pos += 1
                if tag in " +":
                    result.append(text)
        files[path] = "".join(result + source[pos:])
    return files


# -- where a project's files come from ----------------------------------------------------


def _cache_dir(spec: str, cache: Path) -> Path:
    return cache / re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.replace("==", "-"))


def _cached_archive(folder: Path) -> Path | None:
    archives = sorted(p for p in folder.glob("*") if p.name.endswith(SDIST_SUFFIXES)) if folder.is_dir() else []
    return archives[0] if archives else None


def fetch_sdist(spec: str, cache: str | Path | None = None, *, sha256: str | None = None) -> Path:
    """The source archive of ``spec`` (``NAME==VERSION``), downloaded from PyPI once into ``cache``.

    Args:
        spec: The release, e.g. ``"idna==3.7"``.
        cache: The sdist cache (default: :func:`sdist_cache`).
        sha256: The archive's expected sha256, checked whether cached or downloaded.

    Raises:
        DatasetError: pip could not download it (no network: the message says how to pre-fetch
            it), or its sha256 is not ``sha256``.
    """
    folder = _cache_dir(spec, Path(cache) if cache is not None else sdist_cache())
    archive = _cached_archive(folder)
    if archive is None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="agentgym-sdist-", dir=folder.parent) as tmp:
            try:
                download_sdist(spec, tmp)  # the same pip call as synth (it unpacks too; the archive is kept)
            except RuntimeError as e:
                raise DatasetError(
                    f"cannot download the sdist of {spec}: {str(e).splitlines()[0]}\n"
                    f"Pre-fetch it where PyPI is reachable (`python -m agentgym.envs.coding.dataset fetch FILE` "
                    f"fills {folder.parent}), or download it with `pip download --no-deps --no-binary :all: {spec} "
                    f"-d DIR` and pass sources={{{spec!r}: 'DIR/<archive>'}} (--source {spec}=DIR/<archive>)"
                ) from None
            downloaded = _cached_archive(Path(tmp))
            if downloaded is None:
                raise DatasetError(f"pip left no source archive for {spec}")
            staged = Path(tmp) / "staged"
            staged.mkdir()
            os.replace(downloaded, staged / downloaded.name)
            try:
                os.replace(staged, folder)
            except OSError:  # another process cached it first
                pass
        archive = _cached_archive(folder)
        if archive is None:
            raise DatasetError(f"{folder} holds no source archive of {spec}: delete it and try again")
    if sha256 is not None and (got := _file_sha256(archive)) != sha256:
        raise DatasetError(
            f"the sdist of {spec} ({archive}) has sha256 {got}, the dataset expects {sha256}: "
            f"delete {archive.parent} to download it again, or give the archive the dataset was built from"
        )
    return archive


def project_files(source: str | Path) -> dict[str, str]:
    """A project's files as synth reads them: a folder or an sdist archive, with package metadata added.

    The same steps as ``agentgym tasks synth``: :func:`~.synth.project.load_project` (which
    flattens a ``src/`` layout), then :func:`~.synth.deps.with_package_metadata`.
    """
    path = Path(source)
    if path.is_dir():
        return with_package_metadata(load_project(path))
    with tempfile.TemporaryDirectory(prefix="agentgym-sdist-") as tmp:
        out = Path(tmp) / "unpacked"
        _unpack(path, out)
        roots = [p for p in out.iterdir() if p.is_dir()]  # the root download_sdist picks
        return with_package_metadata(load_project(roots[0] if len(roots) == 1 else out))


def _source_sha256(path: Path) -> str:
    """An archive's sha256, or for a folder the sha256 of the files synth reads from it."""
    return _files_digest(load_project(path)) if path.is_dir() else _file_sha256(path)


@dataclass
class _Project:
    spec: str
    path: Path
    sha256: str
    files: dict[str, str]


class _Sources:
    """Resolves ``sdist`` specs to local archives or folders, and loads each project once."""

    def __init__(self, sources: Mapping[str, str | Path] | None, cache: str | Path | None):
        self.overrides = {k: Path(v) for k, v in (sources or {}).items()}
        self.cache = Path(cache) if cache is not None else sdist_cache()
        self.loaded: dict[str, _Project] = {}

    def get(self, spec: str, project: str, sha256: str | None = None) -> _Project:
        if spec in self.loaded:
            return self.loaded[spec]
        path = self.overrides.get(spec) or self.overrides.get(project)
        if path is None and _is_pypi(spec):
            path = fetch_sdist(spec, self.cache, sha256=sha256)
        elif path is None:
            path = Path(spec)
        if not path.exists():
            raise DatasetError(
                f"project {project}: its source {str(path)!r} does not exist; pass sources={{{spec!r}: PATH}} "
                "(a folder or an sdist archive)"
            )
        got = _source_sha256(path)
        if sha256 is not None and got != sha256:
            raise DatasetError(
                f"project {project}: the source {path} has sha256 {got}, the dataset expects {sha256} "
                f"(the sdist of {spec}): give the archive the dataset was built from"
            )
        self.loaded[spec] = _Project(spec, path, got, project_files(path))
        return self.loaded[spec]


# -- records ------------------------------------------------------------------------------


def compact_record(task: Task, spec: str, sha256: str, project: Mapping[str, str]) -> dict[str, Any]:
    """The compact record of ``task``, whose project's files (as synth read them) are ``project``.

    Raises:
        DatasetError: The task's hidden tests or fix are not the project's own files, or its
            verifier has fields the format does not hold.
    """
    files = task.setup["files"]
    v = task.verifier
    hidden = v.get("hidden_tests", {})
    fix = task.solution["files"]
    extra = set(v) - VERIFIER_KEYS
    bad = [p for p, c in hidden.items() if project.get(p) != c] + [p for p, c in fix.items() if project.get(p) != c]
    if bad or extra:
        what = f"verifier fields {sorted(extra)}" if extra else f"{bad[0]!r}, which differs from the project's file"
        raise DatasetError(f"task {task.id}: the compact format cannot hold {what}")
    record: dict[str, Any] = {
        "format": FORMAT,
        "id": task.id,
        "project": task.metadata.get("project", ""),
        "sdist": spec,
        "sdist_sha256": sha256,
        "files_sha256": _files_digest(project),
        "issue": task.prompt,
        "patch": make_patch(project, files),
        "removed": sorted(set(project) - set(files)),
        "hidden_tests": sorted(hidden),
        "fix": sorted(fix),
        "fail_to_pass": v["fail_to_pass"],
        "pass_to_pass": v.get("pass_to_pass", []),
        "split": task.split,
        "metadata": task.metadata,
        "task_sha256": task_digest(task),
    }
    if "test_paths" in v:
        record["test_paths"] = v["test_paths"]
    return record


def expand_record(record: Mapping[str, Any], project: Mapping[str, str]) -> Task:
    """The full task of a compact ``record`` (the inverse of :func:`compact_record`), digest checked.

    Raises:
        DatasetError: The record is not in :data:`FORMAT`, its patch does not apply, or the
            rebuilt task is not the packed one.
    """
    task_id = record.get("id", "?")
    if record.get("format") != FORMAT:
        raise DatasetError(f"task {task_id}: format {record.get('format')!r} is not {FORMAT!r}")
    if _files_digest(project) != record["files_sha256"]:
        raise DatasetError(
            f"project {record['project']}: the files agentgym reads from {record['sdist']} differ from those the "
            "dataset was packed from: synth's project loader (load_project, with_package_metadata) has changed "
            "since; rebuild the dataset, or load it with the agentgym version that packed it"
        )
    removed = set(record["removed"])
    try:
        files = apply_patch({p: c for p, c in project.items() if p not in removed}, record["patch"])
    except ValueError as e:
        raise DatasetError(f"task {task_id}: its patch does not apply: {e}") from None
    metadata = dict(record["metadata"])
    try:
        task = make_task(
            task_id,
            record["issue"],
            files,
            list(record["fail_to_pass"]),
            {p: project.get(p) for p in record["fix"]},
            pass_to_pass=list(record["pass_to_pass"]),
            hidden_tests={p: project[p] for p in record["hidden_tests"]},
            test_paths=record.get("test_paths"),
            source=metadata.pop("source", "custom"),
            split=record["split"],
            **metadata,
        )
    except (KeyError, ValueError) as e:
        raise DatasetError(f"task {task_id}: cannot be rebuilt: {e}") from None
    if task_digest(task) != record["task_sha256"]:
        raise DatasetError(
            f"task {task_id}: the rebuilt task differs from the packed one (sha256 {task_digest(task)[:12]}..., "
            f"expected {record['task_sha256'][:12]}...): the record or the project's files were changed"
        )
    return task


# -- files --------------------------------------------------------------------------------


def _open(path: str | Path, mode: str) -> IO[str]:
    name = str(path)
    if name.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    if name.endswith(".xz"):
        return lzma.open(path, mode + "t", encoding="utf-8", preset=9 if mode == "w" else None)  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The compact records of a file (``.jsonl``, ``.jsonl.gz`` or ``.jsonl.xz``), one per non-blank line."""
    with _open(path, "r") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{lineno}: not JSON: {e}") from None
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise DatasetError(f"{path}:{lineno}: not a compact task record (format {FORMAT!r})")
            yield record


def write_records(records: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write records one per line, keys sorted (compressed for ``.gz``/``.xz``); returns how many."""
    n = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            n += 1
    return n


def is_compact(path: str | Path) -> bool:
    """True when ``path`` is a file of compact records (its first record has this ``format``)."""
    try:
        with _open(path, "r") as f:
            for line in f:
                if line.strip():
                    return bool(json.loads(line).get("format") == FORMAT)
    except (OSError, ValueError, EOFError, lzma.LZMAError):
        return False
    return False


# -- pack, load, sample -------------------------------------------------------------------


@dataclass
class PackReport:
    """What :func:`pack` wrote."""

    tasks: int = 0
    projects: dict[str, str] = field(default_factory=dict)
    """Project name -> its sdist spec (or local path)."""
    splits: dict[str, int] = field(default_factory=dict)
    out_bytes: int = 0

    def describe(self, full_bytes: int | None = None) -> str:
        """One line: tasks, projects, splits, size (and the ratio to ``full_bytes``)."""
        splits = ", ".join(f"{n} {s}" for s, n in sorted(self.splits.items()))
        size = _size(self.out_bytes)
        if full_bytes:
            size += f" (full tasks: {_size(full_bytes)}, {full_bytes / max(self.out_bytes, 1):.0f}x smaller)"
        return f"{self.tasks} tasks from {len(self.projects)} projects ({splits}): {size}"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _status_sources(status_dir: Path) -> dict[str, str]:
    """Project name -> source, from a synth batch's ``status/*.json``."""
    found = {}
    for path in sorted(status_dir.glob("*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("project") and status.get("source"):
            found[str(status["project"])] = str(status["source"])
    return found


def pack(
    tasks: Iterable[Task],
    out: str | Path,
    *,
    sources: Mapping[str, str] | None = None,
    status_dir: str | Path | None = None,
    cache: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> PackReport:
    """Write ``tasks`` as compact records, each checked by rebuilding it from its project.

    A task's project source is, first found: ``sources[project]`` (``NAME==VERSION`` or a local
    folder or archive), ``metadata["sdist"]``, or the ``source`` in a synth batch's
    ``status_dir/<project>.json``. PyPI sdists are downloaded once into ``cache``.

    Raises:
        DatasetError: A task's source is unknown or cannot be fetched, or the task cannot be
            held by the format (see :func:`compact_record`).
    """
    known = {**(_status_sources(Path(status_dir)) if status_dir else {}), **(sources or {})}
    resolver = _Sources({}, cache)
    report = PackReport()

    def records() -> Iterator[dict[str, Any]]:
        for task in tasks:
            name = str(task.metadata.get("project", ""))
            spec = known.get(name) or task.metadata.get("sdist")
            if not spec:
                raise DatasetError(
                    f"task {task.id}: the source of project {name!r} is unknown: give the batch's status folder "
                    f"(status_dir / --status-dir) or sources={{{name!r}: 'NAME==VERSION'}} (--source {name}=SPEC)"
                )
            if spec not in resolver.loaded and log:
                log(f"{name}: reading {spec} ...")
            project = resolver.get(str(spec), name)
            record = compact_record(task, project.spec, project.sha256, project.files)
            if expand_record(record, project.files) != task:
                raise DatasetError(f"task {task.id}: rebuilding it does not give the same task")
            report.projects[name] = project.spec
            report.splits[str(task.split)] = report.splits.get(str(task.split), 0) + 1
            yield record

    report.tasks = write_records(records(), out)
    report.out_bytes = Path(out).stat().st_size
    return report


def load(
    path: str | Path,
    *,
    cache: str | Path | None = None,
    sources: Mapping[str, str | Path] | None = None,
    name: str | None = None,
) -> TaskSet:
    """The full tasks of a compact file, rebuilt and digest-checked.

    Args:
        path: A compact file (``.jsonl``, ``.jsonl.gz`` or ``.jsonl.xz``).
        cache: The sdist cache (default: :func:`sdist_cache`); each sdist is downloaded once.
        sources: Local folders or archives to use instead of downloading, keyed by ``sdist``
            spec (``"idna==3.7"``) or project name; checked against the recorded sha256.
        name: The task set's name (default: the file's name without suffixes).

    Raises:
        DatasetError: An sdist cannot be fetched (the message says how to pre-fetch it), a source's
            sha256 is wrong, or a rebuilt task is not the packed one (the message names it).
    """
    resolver = _Sources(sources, cache)
    tasks = []
    for record in read_records(path):
        project = resolver.get(record["sdist"], record["project"], record["sdist_sha256"])
        tasks.append(expand_record(record, project.files))
    return TaskSet(tasks, name or Path(path).name.split(".")[0])


def load_shipped(**kwargs: Any) -> TaskSet:
    """The shipped dataset (:data:`SHIPPED`), rebuilt with :func:`load` (its keyword arguments).

    Raises:
        DatasetError: The file is not in this checkout (build it with ``scripts/build_synth_dataset.sh``).
    """
    if not SHIPPED.exists():
        raise DatasetError(f"{SHIPPED} is missing: build it with scripts/build_synth_dataset.sh (see its --help)")
    return load(SHIPPED, name="synth", **kwargs)


def sample(records: Sequence[_R], n: int, seed: int = 0) -> list[_R]:
    """``n`` records drawn at random, stratified by project, in their original order.

    Every project gets one record (when ``n`` is at least the number of projects; otherwise
    ``n`` projects drawn at random get one), the rest in proportion to the projects' sizes.
    """
    by_project: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_project.setdefault(str(r.get("project", "")), []).append(i)
    names = sorted(by_project)
    n = min(n, len(records))
    rng = random.Random(seed)
    if n < len(names):
        quota = dict.fromkeys(rng.sample(names, n), 1)
    else:
        share = {p: (n - len(names)) * len(by_project[p]) / len(records) for p in names}
        quota = {p: 1 + int(share[p]) for p in names}  # never more than the project has
        for p in sorted(names, key=lambda p: (int(share[p]) - share[p], p)):  # largest remainders first
            if sum(quota.values()) < n and quota[p] < len(by_project[p]):
                quota[p] += 1
    picked = sorted(i for p in sorted(quota) for i in rng.sample(by_project[p], quota[p]))
    return [records[i] for i in picked]


# -- command line -------------------------------------------------------------------------


def _pairs(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise SystemExit(f"--source takes NAME=SPEC (a project or sdist, then a spec, folder or archive): {v!r}")
        out[key] = value
    return out


def _full_tasks(path: Path) -> Iterator[Task]:
    with _open(path, "r") as f:
        for line in f:
            if line.strip():
                yield Task.from_dict(json.loads(line))


def cmd_pack(args: argparse.Namespace) -> int:
    """Pack full synth tasks into a compact file; print the sizes."""
    status = args.status_dir or args.tasks.parent / "status"
    report = pack(
        _full_tasks(args.tasks),
        args.out,
        sources=_pairs(args.source),
        status_dir=status if status.is_dir() else None,
        cache=args.cache,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(f"{args.out}: {report.describe(args.tasks.stat().st_size)}")
    local = sorted(p for p, s in report.projects.items() if not _is_pypi(s))
    if local:
        print(f"note: {len(local)} project(s) come from local paths, not PyPI: {', '.join(local[:5])}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download (or find) and check every sdist a compact file needs."""
    resolver = _Sources(_pairs(args.source), args.cache)
    for r in read_records(args.file):
        if r["sdist"] not in resolver.loaded:
            project = resolver.get(r["sdist"], r["project"], r["sdist_sha256"])
            print(f"{r['sdist']}: {project.path}", flush=True)
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    """Rebuild the full tasks of a compact file."""
    tasks = load(args.file, cache=args.cache, sources=_pairs(args.source))
    tasks.to_jsonl(args.out)
    print(f"{args.out}: {len(tasks)} tasks")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Write a random sample of a compact file, stratified by project."""
    records = list(read_records(args.file))
    picked = sample(records, args.n, args.seed)
    write_records(picked, args.out)
    projects = len({r["project"] for r in picked})
    print(f"{args.out}: {len(picked)} of {len(records)} tasks, {projects} projects (seed {args.seed})")
    return 0


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except DatasetError as e:
            raise SystemExit(f"error: {e}") from None

    return run


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pack``, ``unpack``, ``fetch`` and ``sample`` (compact synth task files) to a command group."""
    p = subparsers.add_parser(
        "pack",
        help="write synthesized tasks compactly (patches against their project's sdist)",
        description="Write full synth tasks (DIR/tasks.jsonl of `agentgym tasks synth --out-dir DIR`) as compact "
        "records: a patch against the project's files, hidden tests and fix by name, the sdist's sha256 and the "
        "task's sha256. Each record is checked by rebuilding it first. The project of each task is read from "
        "DIR/status (the batch's status files) or --source.",
    )
    p.add_argument("tasks", type=Path, help="full tasks, e.g. DIR/tasks.jsonl")
    p.add_argument("--out", type=Path, required=True, help="compact file: .jsonl, .jsonl.gz or .jsonl.xz")
    p.add_argument("--status-dir", type=Path, default=None, help="the batch's status folder (default: TASKS/../status)")
    p.add_argument(
        "--source", action="append", default=[], metavar="PROJECT=SPEC", help="a project's NAME==VERSION or path"
    )
    p.set_defaults(fn=_guarded(cmd_pack))
    p_unpack = subparsers.add_parser("unpack", help="rebuild the full tasks of a compact file (JSONL)")
    p_unpack.add_argument("file", type=Path)
    p_unpack.add_argument("--out", type=Path, required=True, help="full tasks JSONL")
    p_unpack.set_defaults(fn=_guarded(cmd_unpack))
    p_fetch = subparsers.add_parser(
        "fetch", help="download every sdist a compact file needs into the cache (once; for offline use later)"
    )
    p_fetch.add_argument("file", type=Path)
    p_fetch.set_defaults(fn=_guarded(cmd_fetch))
    for q in (p, p_unpack, p_fetch):
        q.add_argument("--cache", type=Path, default=None, help="sdist cache (default: $AGENTGYM_CACHE/sdists)")
    for q in (p_unpack, p_fetch):
        q.add_argument(
            "--source", action="append", default=[], metavar="SDIST=PATH", help="use a local folder or archive"
        )
    s = subparsers.add_parser("sample", help="a random sample of a compact file, stratified by project")
    s.add_argument("file", type=Path)
    s.add_argument("--n", type=int, default=100, help="tasks to draw (default: 100)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, required=True, help="compact file of the sample")
    s.set_defaults(fn=_guarded(cmd_sample))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agentgym.envs.coding.dataset {pack,unpack,fetch,sample}``."""
    parser = argparse.ArgumentParser(
        prog="python -m agentgym.envs.coding.dataset",
        description="Compact synth task files.",
    )
    add_commands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
