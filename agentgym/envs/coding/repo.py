"""The shared coding-task format, and helpers to build, check and diff such tasks.

A coding task is a :class:`~agentgym.tasks.Task` whose fields mean::

    setup    = {"files": {relpath: content}}            # the repository at its base commit,
                                                         # visible tests included
    verifier = {"fail_to_pass": [node ids],              # must pass after the fix
                "pass_to_pass": [node ids],              # must keep passing
                "hidden_tests": {relpath: content},      # added only at grading time
                "test_paths":   [relpaths]}              # optional: more files that count as tests
    solution = {"files": {relpath: content | None}}      # the reference fix (None deletes)
    metadata = {"source": "humaneval" | "curated" | "synth", ...}

Node ids are pytest node ids relative to the repository root
(``tests/test_core.py::test_add``). Hidden tests may overwrite visible test files.

What the grader takes from the agent's workspace is decided here, by
:func:`classify_change`: only *source* files count. Tests, ``conftest.py``, test and
packaging configuration, ``sitecustomize``/``usercustomize``, ``.pth`` files, files in
hidden directories and new files outside the repository's existing packages are
ignored, so none of them can change how the tests run.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from agentgym.tasks import Task

TEST_DIR_NAMES = frozenset({"tests", "test", "testing"})
CONFIG_NAMES = frozenset(
    {
        "conftest.py",
        "pytest.ini",
        "tox.ini",
        "setup.cfg",
        "setup.py",
        "pyproject.toml",
        "noxfile.py",
        ".coveragerc",
        "sitecustomize.py",
        "usercustomize.py",
    }
)
CONFIG_SUFFIXES = (".pth", ".ini", ".cfg", ".toml", ".so", ".pyd", ".pyc", ".egg-link")
NEW_FILE_SUFFIXES = (".py", ".json", ".txt", ".csv", ".md", ".rst", ".yaml", ".yml")
"""New files are taken only with these suffixes, and only inside an existing package."""
MAX_SOURCE_BYTES = 1 << 20


class TaskFormatError(ValueError):
    """A task does not follow the coding-task format."""


def normalize_path(path: str) -> str:
    """A workspace-relative POSIX path, or :class:`ValueError` saying why it is not one."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("empty path: give a path relative to the repository root, e.g. 'src/module.py'")
    if "\x00" in path:
        raise ValueError("path contains a NUL byte")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("path is not valid UTF-8 text") from None
    p = path.strip().replace("\\", "/")
    if p.startswith("/"):
        raise ValueError(
            f"absolute path {path!r} is outside the repository: use a path relative to the repository root"
        )
    norm = posixpath.normpath(p)
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"path {path!r} escapes the repository: '..' may not leave the repository root")
    return "." if norm in ("", ".") else norm


def is_test_file(path: str, extra: Iterable[str] = ()) -> bool:
    """True for test modules, test directories, conftest files and the task's own test paths."""
    parts = path.split("/")
    name = parts[-1]
    if path in set(extra) or name == "conftest.py":
        return True
    if any(part in TEST_DIR_NAMES for part in parts[:-1]):
        return True
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py") or name == "tests.py")


def package_dirs(files: Iterable[str]) -> set[str]:
    """Directories that are Python packages (hold ``__init__.py``) in the pristine repository."""
    return {posixpath.dirname(f) for f in files if posixpath.basename(f) == "__init__.py" and posixpath.dirname(f)}


def classify_change(path: str, pristine: Mapping[str, Any], test_paths: Iterable[str] = ()) -> str | None:
    """Why a changed ``path`` is ignored by the grader, or None when it is a source change that counts."""
    try:
        if normalize_path(path) != path:
            return "not a normalized relative path"
    except ValueError as e:
        return str(e)
    parts = path.split("/")
    name = parts[-1]
    if any(part.startswith(".") for part in parts) or "__pycache__" in parts:
        return "hidden or cache path"
    if is_test_file(path, test_paths):
        return "test file (tests are restored from the pristine repository)"
    if name in CONFIG_NAMES or name.endswith(CONFIG_SUFFIXES):
        return "configuration or start-up file (restored from the pristine repository)"
    if path in pristine:
        return None
    parent = posixpath.dirname(path)
    if (
        parent
        and parent in package_dirs(p for p in pristine if not is_test_file(p, test_paths))
        and name.endswith(NEW_FILE_SUFFIXES)
    ):
        return None
    return "new file outside the repository's packages (new top-level modules could shadow imports)"


@dataclass(frozen=True)
class Changes:
    """The agent's changes to a repository, split into what the grader applies and ignores."""

    applied: dict[str, str | None]
    """Source files to write (None: delete)."""
    ignored: dict[str, str]
    """Changed paths the grader ignores, with the reason."""


def split_changes(
    pristine: Mapping[str, str], current: Mapping[str, str | None], test_paths: Iterable[str] = ()
) -> Changes:
    """Compare ``current`` (changed or new files; None = deleted) with ``pristine``."""
    test_paths = list(test_paths)
    applied: dict[str, str | None] = {}
    ignored: dict[str, str] = {}
    for path in sorted(current):
        content = current[path]
        if content is not None and pristine.get(path) == content:
            continue
        if content is None and path not in pristine:
            continue
        reason = classify_change(path, pristine, test_paths)
        if reason is None and content is not None and len(content.encode()) > MAX_SOURCE_BYTES:
            reason = f"larger than {MAX_SOURCE_BYTES} bytes"
        if reason is None:
            applied[path] = content
        else:
            ignored[path] = reason
    return Changes(applied, ignored)


def changed_repository(task: Task, changes: Changes) -> dict[str, str]:
    """The pristine files with the applied changes (``None`` deletes a file)."""
    files = dict(task.setup["files"])
    for path, content in changes.applied.items():
        if content is None:
            files.pop(path, None)
        else:
            files[path] = content
    return files


def grading_files(task: Task, changes: Changes) -> dict[str, str]:
    """The repository the grader tests: pristine files, the applied changes, then the hidden tests."""
    files = changed_repository(task, changes)
    files.update(task.verifier.get("hidden_tests", {}))
    return files


def target_tests(task: Task) -> list[str]:
    """FAIL_TO_PASS then PASS_TO_PASS node ids, without duplicates."""
    v = task.verifier
    return list(dict.fromkeys([*v.get("fail_to_pass", []), *v.get("pass_to_pass", [])]))


def test_paths_of(task: Task) -> list[str]:
    """Every path that counts as a test for ``task``: declared, hidden, and test-named files."""
    v = task.verifier
    declared = [*v.get("test_paths", []), *v.get("hidden_tests", {})]
    return sorted(set(declared) | {p for p in task.setup.get("files", {}) if is_test_file(p)})


def visible_test_files(task: Task) -> list[str]:
    """Test modules the agent may run (present in its workspace)."""
    extra = task.verifier.get("test_paths", [])
    return sorted(
        p
        for p in task.setup.get("files", {})
        if p.endswith(".py")
        and is_test_file(p, extra)
        and posixpath.basename(p) != "conftest.py"
        and not posixpath.basename(p).startswith("__")
    )


def solution_files(task: Task) -> dict[str, str | None]:
    """The reference solution's changed files (``None`` deletes); :class:`TaskFormatError` if malformed."""
    sol = task.solution
    if not isinstance(sol, dict) or not isinstance(sol.get("files"), dict):
        raise TaskFormatError(f"task {task.id!r}: solution must be {{'files': {{path: content}}}}")
    return dict(sol["files"])


def check_task(task: Task) -> None:
    """Raise :class:`TaskFormatError` naming the first problem with ``task``'s format."""

    def fail(msg: str) -> NoReturn:
        raise TaskFormatError(f"task {task.id!r}: {msg}")

    files = task.setup.get("files") if isinstance(task.setup, dict) else None
    if not isinstance(files, dict) or not files:
        fail("setup must be {'files': {relpath: content}} with at least one file")
    v = task.verifier if isinstance(task.verifier, dict) else {}
    if not v.get("fail_to_pass"):
        fail("verifier.fail_to_pass must list at least one pytest node id")
    hidden = v.get("hidden_tests", {})
    if not isinstance(hidden, dict):
        fail("verifier.hidden_tests must map relpath -> content")
    for path in [*files, *hidden, *solution_files(task)]:
        try:
            if normalize_path(path) != path:
                fail(f"path {path!r} is not normalized")
        except ValueError as e:
            fail(str(e))
    for nodeid in target_tests(task):
        module = nodeid.split("::", 1)[0]
        if "::" not in nodeid or (module not in files and module not in hidden):
            fail(f"node id {nodeid!r} does not name a test in a file of the task")
    for path, content in solution_files(task).items():
        why = classify_change(path, files, test_paths_of(task)) if content is not None else None
        if why is not None:
            fail(f"solution changes {path!r}, which the grader ignores ({why})")


def make_task(
    task_id: str,
    prompt: str,
    files: Mapping[str, str],
    fail_to_pass: list[str],
    solution: Mapping[str, str | None],
    *,
    pass_to_pass: list[str] | None = None,
    hidden_tests: Mapping[str, str] | None = None,
    test_paths: list[str] | None = None,
    source: str = "custom",
    split: str | None = None,
    **metadata: Any,
) -> Task:
    """Build (and check) a coding task in the shared format."""
    verifier: dict[str, Any] = {
        "fail_to_pass": list(fail_to_pass),
        "pass_to_pass": list(pass_to_pass or []),
        "hidden_tests": dict(hidden_tests or {}),
    }
    if test_paths:
        verifier["test_paths"] = list(test_paths)
    task = Task(
        task_id,
        prompt,
        setup={"files": dict(files)},
        verifier=verifier,
        solution={"files": dict(solution)},
        metadata={"source": source, **metadata},
        split=split,
    )
    check_task(task)
    return task


def junit_key(nodeid: str) -> tuple[str, str]:
    """The ``(classname, name)`` pytest's junit XML gives the test ``nodeid`` (see ``mangle_test_address``)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".")
    if names[0].endswith(".py"):
        names[0] = names[0][: -len(".py")]
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]
