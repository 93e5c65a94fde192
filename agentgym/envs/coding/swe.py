"""SWE-bench-style instances in and out of the coding-task format (see :mod:`.repo`).

An instance is one JSON object (SWE-bench, SWE-Gym and SWE-smith rows share these keys)::

    instance_id, repo ("owner/name"), base_commit, patch (the gold fix), test_patch (may be empty),
    problem_statement, FAIL_TO_PASS, PASS_TO_PASS   (lists of pytest node ids, or JSON strings of them)

**Import** (:func:`load_swe`, :func:`swe_task`) reads the repository from a *local* git mirror,
never the network: the tree at ``base_commit`` with ``git ls-tree``/``git cat-file`` (UTF-8 text
files only, sizes capped as in :mod:`.synth.project`), then applies ``patch`` and ``test_patch``
each on its own to a scratch index (``git apply --cached``; new objects go to a temporary object
directory, the mirror is never written) and reads what they change. The task's base is the tree
at ``base_commit`` without the test patch, so the tests it adds or changes are hidden until
grading; the gold patch's result is the reference solution.

**Export** (:func:`to_swe`) turns any coding task into such a row: unified diffs made with
:mod:`difflib` that ``git apply`` accepts, ``repo``/``base_commit`` from the task's metadata
when it has them, else ``agentgym/<source>`` and the id of a deterministic git commit of the base
tree, which :func:`write_mirror` writes into a bare repository so the row imports again.

What does not travel: test patches that delete files, binary files, symlinks and submodules are
refused on import; a gold patch's changes to files the grader ignores (tests, configuration,
hidden folders, new files outside the packages) are left out of the solution and listed in
``metadata["ignored_patch_files"]``. Function-level grading specs (HumanEval) have no SWE form;
their hidden pytest files do.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from agentgym.tasks import Task, TaskSet

from .repo import TaskFormatError, classify_change, make_task, solution_files
from .synth.project import MAX_FILE_BYTES, MAX_PROJECT_BYTES

SWE_KEYS = (
    "instance_id",
    "repo",
    "base_commit",
    "patch",
    "test_patch",
    "problem_statement",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)
"""The keys every instance has; other keys are kept in the task's metadata."""
MIRROR_REF_PREFIX = "refs/agentgym/"
""":func:`write_mirror` keeps each base commit alive under this ref."""
_IDENT = "agentgym <agentgym@localhost>"
_DATE = "946684800 +0000"  # 2000-01-01: fixed, so the commit id is a hash of the tree alone
_MESSAGE = "agentgym base tree"
_GIT_TIMEOUT = 300.0


class SWEError(ValueError):
    """An instance cannot be imported or exported; the message says why and how to fix it."""


# --- git plumbing ---------------------------------------------------------------------------------


def _git(args: list[str], *, env: Mapping[str, str] | None = None, input: bytes | None = None) -> bytes:
    """Run ``git ARGS`` without a terminal prompt or lazy fetches; :class:`SWEError` on failure."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_NO_LAZY_FETCH": "1", **(env or {})}
    try:
        done = subprocess.run(
            ["git", *args], input=input, capture_output=True, env=full_env, timeout=_GIT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise SWEError("git is not installed: install it (apt-get install git)") from None
    if done.returncode != 0:
        raise SWEError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()[-2000:]}")
    return done.stdout


def _read_blobs(git_dir: Path, shas: Iterable[str], env: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """The contents of blobs ``shas`` (one ``git cat-file --batch`` call)."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = _git(["--git-dir", str(git_dir), "cat-file", "--batch"], env=env, input="\n".join(wanted).encode() + b"\n")
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3:
            raise SWEError(f"object {sha} is missing from the mirror: update the mirror (git fetch)")
        size = int(header[2])
        blobs[sha] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return blobs


def _text(data: bytes) -> str | None:
    """``data`` as text, or None when it is binary (NUL bytes, not UTF-8)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def find_mirror(repo: str, repos: Mapping[str, str | Path] | str | Path) -> Path:
    """The git directory of the local mirror of ``repo`` (``owner/name``).

    Args:
        repo: The instance's ``repo``.
        repos: ``{owner/name: path}``, or a folder holding ``owner__name`` or ``name`` (a clone or a
            bare mirror, e.g. ``git clone --mirror``).

    Raises:
        SWEError: No mirror, or not a git repository; the message names the paths looked at.
    """
    if isinstance(repos, Mapping):
        if repo not in repos:
            raise SWEError(f"no mirror given for repository {repo!r}: add {repo!r}: PATH to repos")
        candidates = [Path(repos[repo])]
    else:
        root = Path(repos)
        candidates = [root / repo.replace("/", "__"), root / repo.rsplit("/", 1)[-1]]
    for path in candidates:
        if path.is_dir():
            try:
                out = _git(["-C", str(path), "rev-parse", "--path-format=absolute", "--git-dir"])
            except SWEError as e:
                raise SWEError(f"{path} (mirror of {repo!r}) is not a git repository: {e}") from None
            return Path(out.decode().strip())
    looked = " or ".join(str(p) for p in candidates)
    how = (
        "write it with agentgym tasks export swe SOURCE --out FILE --repos DIR"
        if repo.startswith("agentgym/")
        else f"clone it there first, e.g. git clone --mirror https://github.com/{repo} {candidates[0]}"
    )
    raise SWEError(f"no local mirror of {repo!r}: looked for {looked}; {how}")


def _tree(git_dir: Path, commit: str) -> dict[str, tuple[str, str, int]]:
    """``{path: (mode, sha, size)}`` of every blob in ``commit``'s tree (submodules left out)."""
    try:
        _git(["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"])
    except SWEError:
        raise SWEError(
            f"commit {commit!r} is not in the mirror {git_dir}: update the mirror "
            f"(git --git-dir {git_dir} fetch --all) or check base_commit"
        ) from None
    out = _git(["--git-dir", str(git_dir), "ls-tree", "-r", "-z", "-l", "--full-tree", commit])
    entries: dict[str, tuple[str, str, int]] = {}
    for record in out.split(b"\x00"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode().split()
        if kind != "blob":
            continue
        try:
            path = raw_path.decode("utf-8")
        except UnicodeDecodeError:
            continue
        entries[path] = (mode, sha, int(size))
    return entries


def _base_files(
    git_dir: Path, entries: Mapping[str, tuple[str, str, int]], max_file_bytes: int, max_repo_bytes: int
) -> dict[str, str]:
    """The text files of the tree: regular files up to ``max_file_bytes``, UTF-8, no NUL bytes."""
    keep = {p: e for p, e in entries.items() if e[0] in ("100644", "100755") and e[2] <= max_file_bytes}
    blobs = _read_blobs(git_dir, (e[1] for e in keep.values()))
    files: dict[str, str] = {}
    total = 0
    for path, (_, sha, _) in sorted(keep.items()):
        text = _text(blobs[sha])
        if text is None:
            continue
        total += len(text)
        if total > max_repo_bytes:
            raise SWEError(
                f"the repository holds more than {max_repo_bytes} bytes of text at this commit: "
                "raise max_repo_bytes (--max-repo-bytes) to import it"
            )
        files[path] = text
    return files


def _apply(git_dir: Path, commit: str, patch: str, what: str) -> dict[str, str | None]:
    """``{path: new text | None (deleted)}`` of the files ``patch`` changes in ``commit``'s tree.

    The patch is applied to a scratch index; the index and any new objects live in a temporary
    folder, so the mirror is only read.
    """
    if not patch.strip():
        return {}
    if "GIT binary patch" in patch or "\nBinary files " in f"\n{patch}":
        raise SWEError(f"the {what} changes binary files, which coding tasks cannot hold: drop them from the {what}")
    with tempfile.TemporaryDirectory(prefix="agentgym-swe-") as tmp:
        objects = Path(tmp, "objects")
        objects.mkdir()
        common = _git(["--git-dir", str(git_dir), "rev-parse", "--path-format=absolute", "--git-common-dir"])
        env = {
            "GIT_DIR": str(git_dir),
            "GIT_INDEX_FILE": str(Path(tmp, "index")),
            "GIT_OBJECT_DIRECTORY": str(objects),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(Path(common.decode().strip(), "objects")),
        }
        patch_file = Path(tmp, "change.diff")
        patch_file.write_bytes(patch.encode() + (b"" if patch.endswith("\n") else b"\n"))  # git needs the last newline
        _git(["read-tree", commit], env=env)
        try:
            _git(["apply", "--cached", "--whitespace=nowarn", str(patch_file)], env=env)
        except SWEError as e:
            lines = str(e).removeprefix("git apply failed: ").splitlines()
            raise SWEError(
                f"the {what} does not apply to {commit}: {'; '.join(x.removeprefix('error: ') for x in lines)} "
                f"(is base_commit right? regenerate the {what} against it with git diff)"
            ) from None
        out = _git(["diff-index", "--cached", "-z", "--raw", "--no-renames", commit], env=env)
        fields = out.split(b"\x00")
        new_blobs: dict[str, str | None] = {}
        for meta, raw_path in zip(fields[0::2], fields[1::2], strict=False):
            _, new_mode, _, new_sha, status = meta.decode().lstrip(":").split()
            path = raw_path.decode("utf-8", errors="replace")
            if status == "D":
                new_blobs[path] = None
            elif new_mode not in ("100644", "100755"):
                raise SWEError(f"the {what} makes {path!r} a symlink or submodule, which coding tasks cannot hold")
            else:
                new_blobs[path] = new_sha
        contents = _read_blobs(git_dir, (s for s in new_blobs.values() if s), env=env)
    changed: dict[str, str | None] = {}
    for path, sha in new_blobs.items():
        if sha is None:
            changed[path] = None
            continue
        text = _text(contents[sha])
        if text is None:
            raise SWEError(f"the {what} leaves {path!r} binary (not UTF-8 text): coding tasks hold text files only")
        changed[path] = text
    return changed


# --- import ---------------------------------------------------------------------------------------


def _node_ids(row: Mapping[str, Any], key: str) -> list[str]:
    value = row.get(key, [])
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as e:
            raise SWEError(f"{key} is a string but not JSON ({e}): give a list of node ids or its JSON text") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SWEError(f"{key} must be a list of pytest node ids (or its JSON text), got {type(value).__name__}")
    return value


def swe_task(
    row: Mapping[str, Any],
    repos: Mapping[str, str | Path] | str | Path,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_repo_bytes: int = MAX_PROJECT_BYTES,
) -> Task:
    """The coding task of one SWE-style instance (see the module docstring).

    Args:
        row: The instance (the keys of :data:`SWE_KEYS`; others go into the metadata).
        repos: Where the mirrors are (see :func:`find_mirror`).
        max_file_bytes: Larger files of the base tree are left out.
        max_repo_bytes: An instance whose base tree holds more text is refused.

    Raises:
        SWEError: The instance cannot be imported; the message starts with its id and says why.
    """
    instance = str(row.get("instance_id", "?"))
    try:
        return _swe_task(row, repos, max_file_bytes, max_repo_bytes)
    except (SWEError, TaskFormatError) as e:
        raise SWEError(f"{instance}: {str(e).removeprefix(f'task {instance!r}: ')}") from None


def _swe_task(
    row: Mapping[str, Any], repos: Mapping[str, str | Path] | str | Path, max_file_bytes: int, max_repo_bytes: int
) -> Task:
    missing = [k for k in ("instance_id", "repo", "base_commit", "patch", "FAIL_TO_PASS") if not row.get(k)]
    if missing:
        raise SWEError(f"the instance has no {', '.join(missing)}: every SWE-style row needs {', '.join(SWE_KEYS)}")
    for key in ("instance_id", "repo", "base_commit", "patch", "test_patch"):
        if not isinstance(row.get(key, ""), str):
            raise SWEError(f"{key} must be a string, got {type(row[key]).__name__}")
    fail_to_pass, pass_to_pass = _node_ids(row, "FAIL_TO_PASS"), _node_ids(row, "PASS_TO_PASS")
    repo, commit = row["repo"], row["base_commit"]
    git_dir = find_mirror(repo, repos)
    entries = _tree(git_dir, commit)
    files = _base_files(git_dir, entries, max_file_bytes, max_repo_bytes)
    gold = _apply(git_dir, commit, row["patch"], "patch")
    tests = _apply(git_dir, commit, row.get("test_patch") or "", "test_patch")
    both = sorted(set(gold) & set(tests))
    if both:
        raise SWEError(f"patch and test_patch both change {', '.join(both)}: a file must belong to one of them")
    deleted = sorted(p for p, c in tests.items() if c is None)
    if deleted:
        raise SWEError(f"the test_patch deletes {', '.join(deleted)}: deleting test files is not supported")
    hidden = {p: c for p, c in tests.items() if c is not None and files.get(p) != c}
    for nodeid in [*fail_to_pass, *pass_to_pass]:
        module = nodeid.split("::", 1)[0]
        if "::" not in nodeid or (module not in files and module not in hidden):
            raise SWEError(
                f"test {nodeid!r} is not a pytest node id of a file in the repository (path/to/test_x.py::name): "
                "agentgym grades with pytest, so FAIL_TO_PASS and PASS_TO_PASS must be pytest node ids"
            )
    test_paths = sorted(hidden)
    solution: dict[str, str | None] = {}
    ignored: dict[str, str] = {}
    for path, content in sorted(gold.items()):
        if content is None and path not in files:
            continue  # a deleted file the base tree leaves out (binary, too large)
        if content is not None and path in entries and path not in files:
            raise SWEError(
                f"the patch changes {path!r}, which the base tree leaves out (binary, or larger than "
                f"{max_file_bytes} bytes): raise max_file_bytes (--max-file-bytes) if it is text"
            )
        why = classify_change(path, files, test_paths)
        if why is None:
            solution[path] = content
        else:
            ignored[path] = why
    if not solution:
        raise SWEError(
            "the gold patch changes only files the grader ignores "
            f"({'; '.join(f'{p}: {w}' for p, w in ignored.items()) or 'none'}): it has no source change to grade"
        )
    task = make_task(
        row["instance_id"],
        str(row.get("problem_statement") or ""),
        files,
        fail_to_pass,
        solution,
        pass_to_pass=pass_to_pass,
        hidden_tests=hidden,
        test_paths=test_paths,
        source="swe",
        repo=repo,
        base_commit=commit,
        instance_id=row["instance_id"],
    )
    if ignored:
        task.metadata["ignored_patch_files"] = ignored
    for key, value in row.items():
        if key not in SWE_KEYS and key not in task.metadata:
            task.metadata[key] = value
    return task


def read_swe_rows(path: str | Path) -> list[dict[str, Any]]:
    """The instances of a JSONL file (one JSON object a line; blank lines skipped).

    Raises:
        SWEError: A line is not a JSON object (the message says ``path:line``).
    """
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SWEError(f"{path}:{lineno}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise SWEError(f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
            rows.append(row)
    return rows


def iter_swe(
    path: str | Path, repos: Mapping[str, str | Path] | str | Path, **caps: int
) -> Iterator[tuple[str, Task | SWEError]]:
    """``(instance_id, task or the error saying why not)`` for every instance of a JSONL file."""
    for row in read_swe_rows(path):
        try:
            yield str(row.get("instance_id", "?")), swe_task(row, repos, **caps)
        except SWEError as e:
            yield str(row.get("instance_id", "?")), e


def load_swe(path: str | Path, repos: Mapping[str, str | Path] | str | Path, **caps: int) -> TaskSet:
    """The coding tasks of a SWE-bench / SWE-Gym / SWE-smith JSONL file, read against local mirrors.

    Args:
        path: The JSONL file.
        repos: ``{owner/name: mirror path}``, or a folder holding ``owner__name`` or ``name`` mirrors.
        **caps: ``max_file_bytes``, ``max_repo_bytes`` (see :func:`swe_task`).

    Raises:
        SWEError: The first instance that cannot be imported, with its id and the reason
            (use :func:`iter_swe` to import what can be and report the rest).
    """
    tasks = []
    for _, result in iter_swe(path, repos, **caps):
        if isinstance(result, SWEError):
            raise result
        tasks.append(result)
    return TaskSet(tasks, name=Path(path).stem)


# --- export ---------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines split at newlines only (``str.splitlines`` also splits at form feeds and others)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def file_diff(path: str, old: str | None, new: str | None) -> str:
    """A git-style unified diff of one file (``None``: absent), empty when nothing changes."""
    if old == new:
        return ""
    head = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        head.append("new file mode 100644\n")
    elif new is None:
        head.append("deleted file mode 100644\n")
    body = list(
        difflib.unified_diff(
            _lines(old or ""),
            _lines(new or ""),
            "/dev/null" if old is None else f"a/{path}",
            "/dev/null" if new is None else f"b/{path}",
        )
    )
    out = []
    for line in body:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(head + out)


def unified_diff(base: Mapping[str, str], changes: Mapping[str, str | None]) -> str:
    """The diff that turns ``base`` into ``base`` with ``changes`` (``None`` deletes), git-apply ready."""
    return "".join(file_diff(p, base.get(p), changes[p]) for p in sorted(changes))


def _blob_id(data: bytes) -> bytes:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).digest()


def _tree_id(files: Mapping[str, bytes]) -> bytes:
    children: dict[str, dict[str, bytes]] = {}
    entries: list[tuple[bytes, bytes, bytes]] = []  # (sort key, mode, id)
    for path, data in files.items():
        head, sep, rest = path.partition("/")
        if sep:
            children.setdefault(head, {})[rest] = data
        else:
            entries.append((head.encode(), b"100644 " + head.encode(), _blob_id(data)))
    for name, sub in children.items():
        entries.append((name.encode() + b"/", b"40000 " + name.encode(), _tree_id(sub)))
    body = b"".join(mode + b"\x00" + oid for _, mode, oid in sorted(entries))
    return hashlib.sha1(b"tree %d\x00" % len(body) + body, usedforsecurity=False).digest()


def base_commit_of(files: Mapping[str, str]) -> str:
    """The id of the git commit :func:`write_mirror` makes of ``files`` (a content hash of the tree)."""
    tree = _tree_id({p: c.encode() for p, c in files.items()}).hex()
    body = f"tree {tree}\nauthor {_IDENT} {_DATE}\ncommitter {_IDENT} {_DATE}\n\n{_MESSAGE}\n".encode()
    return hashlib.sha1(b"commit %d\x00" % len(body) + body, usedforsecurity=False).hexdigest()


def _coding_files(task: Task) -> dict[str, str]:
    files = task.setup.get("files") if isinstance(task.setup, dict) else None
    if not isinstance(files, dict) or not files:
        raise SWEError(f"task {task.id!r} is not a coding task (setup has no files): it has no SWE form")
    return files


def swe_repo(task: Task) -> tuple[str, str]:
    """``(repo, base_commit)`` of ``task``: its metadata's, else ``agentgym/<source>`` and :func:`base_commit_of`."""
    meta = task.metadata
    repo = meta["repo"] if isinstance(meta.get("repo"), str) else f"agentgym/{meta.get('source') or 'custom'}"
    commit = meta.get("base_commit")
    return repo, commit if isinstance(commit, str) and commit else base_commit_of(_coding_files(task))


def to_swe(task: Task) -> dict[str, Any]:
    """A coding task as a SWE-style instance (see the module docstring).

    The task's other metadata (not ``source``, nor the ones this function computes) comes along
    as extra keys, which :func:`swe_task` keeps in the metadata again.
    """
    files = _coding_files(task)
    repo, commit = swe_repo(task)
    row: dict[str, Any] = {
        "instance_id": task.id,
        "repo": repo,
        "base_commit": commit,
        "patch": unified_diff(files, solution_files(task)),
        "test_patch": unified_diff(files, task.verifier.get("hidden_tests", {})),
        "problem_statement": task.prompt,
        "FAIL_TO_PASS": list(task.verifier.get("fail_to_pass", [])),
        "PASS_TO_PASS": list(task.verifier.get("pass_to_pass", [])),
    }
    for key, value in task.metadata.items():
        if key not in row and key not in ("source", "ignored_patch_files"):
            row[key] = value
    return row


def write_mirror(task: Task, root: str | Path) -> Path:
    """Write ``task``'s base tree as a commit of the bare repository ``root/owner__name``.

    The commit is the one :func:`to_swe` names (author, date and message fixed), kept under
    ``refs/agentgym/<commit>``; several tasks of one ``repo`` share the repository.

    Returns:
        The repository's path.

    Raises:
        SWEError: The task's ``base_commit`` comes from elsewhere (an imported instance): mirror that
            repository instead.
    """
    files = _coding_files(task)
    repo, commit = swe_repo(task)
    if commit != base_commit_of(files):
        raise SWEError(
            f"task {task.id!r} names base commit {commit} of {repo}, which is not a commit of its files alone: "
            f"use a mirror of {repo} itself"
        )
    mirror = Path(root, repo.replace("/", "__"))
    if not mirror.is_dir():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        _git(["init", "-q", "--bare", str(mirror)])
    env = {
        "GIT_DIR": str(mirror),
        "GIT_AUTHOR_NAME": "agentgym",
        "GIT_AUTHOR_EMAIL": "agentgym@localhost",
        "GIT_AUTHOR_DATE": _DATE,
        "GIT_COMMITTER_NAME": "agentgym",
        "GIT_COMMITTER_EMAIL": "agentgym@localhost",
        "GIT_COMMITTER_DATE": _DATE,
    }
    with tempfile.TemporaryDirectory(prefix="agentgym-mirror-") as tmp:
        env["GIT_INDEX_FILE"] = str(Path(tmp, "index"))
        tree_dir = Path(tmp, "tree")
        paths = sorted(files)
        for path in paths:
            dest = tree_dir / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(files[path].encode())
        listing = "".join(f"{tree_dir / p}\n" for p in paths).encode()
        shas = _git(["hash-object", "-w", "--no-filters", "--stdin-paths"], env=env, input=listing).decode().split()
        records = [f"100644 {sha}\t{path}\x00" for sha, path in zip(shas, paths, strict=True)]
        _git(["update-index", "-z", "--add", "--index-info"], env=env, input="".join(records).encode())
        tree = _git(["write-tree"], env=env).decode().strip()
        made = _git(["-c", "i18n.commitEncoding=UTF-8", "commit-tree", "--no-gpg-sign", tree, "-m", _MESSAGE], env=env)
    made_id = made.decode().strip()
    if made_id != commit:
        raise SWEError(f"git made commit {made_id} of task {task.id!r}'s tree, expected {commit}: report this as a bug")
    _git(["update-ref", MIRROR_REF_PREFIX + commit, commit], env=env)
    return mirror
