"""Turning a kept mutant into a coding task: the issue text and the task record.

The mutant is the base state and the original file the reference fix. Test files that
hold a FAIL_TO_PASS test are hidden (added at grading time); the other test files stay
visible. The issue is written from the failing tests' names and messages only, never
from the mutation: no diff, no operator, and messages lose the frames that locate the
project's code and any quoted line the fix changes. A task may hold several mutants, one
file each (two-bug tasks, :mod:`.harder`); its fix restores every file.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.tasks import Task

from ..mutations import Site
from ..repo import is_test_file, make_task

_OPENINGS = [
    "Something regressed: {n} of the project's own tests now fail.",
    "Since the last change, {n} test(s) in the suite fail.",
    "I'm seeing wrong behaviour; {n} existing test(s) fail on the current code.",
]
SHOWN_FAILURES = 4
"""Failing tests quoted in an issue; the rest are counted."""


def _words(test_name: str) -> str:
    name = re.sub(r"\[.*\]$", "", test_name.split("::")[-1])
    return re.sub(r"^test_?", "", name).replace("_", " ").strip() or name


_LOCATIONS = (
    re.compile(r'File "(?P<path>[^"\n]+?\.py)", line \d+'),  # Python's traceback
    re.compile(r"(?P<path>[\w./\\-]+\.py):\d+"),  # pytest's traceback, warnings
)
HIDDEN_FRAME = "  [a frame in the project's code]"
"""What replaces a message line that locates code outside the tests (``path:line``, ``File ..., line``)."""
HIDDEN_TEXT = "[...]"
"""What replaces the text of a line the fix changes, where a message quotes it."""
MIN_SECRET = 4
"""Changed lines shorter than this (``)``, ``else:``...) are too common to mask."""


def _locates_source(line: str) -> bool:
    for pattern in _LOCATIONS:
        for m in pattern.finditer(line):
            path = m.group("path").replace("\\", "/")
            if not is_test_file(path.lstrip("/")):
                return True
    return False


def mask_message(message: str, secrets: Sequence[str] = ()) -> str:
    """A test's failure message with nothing that points at the fix.

    Lines that locate code outside the test files (a traceback frame's ``path:line``) are
    replaced by :data:`HIDDEN_FRAME` (consecutive ones by one), quoted ``secrets`` (the lines
    the fix changes) by :data:`HIDDEN_TEXT`, and object addresses by ``0x...`` (they change
    from run to run).
    """
    lines: list[str] = []
    for raw in message.splitlines():
        if _locates_source(raw):
            if not lines or lines[-1] != HIDDEN_FRAME:
                lines.append(HIDDEN_FRAME)
            continue
        line = raw
        for secret in secrets:
            line = line.replace(secret, HIDDEN_TEXT)
        lines.append(re.sub(r"0x[0-9a-fA-F]{6,}", "0x...", line))
    return "\n".join(lines)


def changed_lines(original: str, mutant: str, context: int = 3) -> list[str]:
    """The lines of the unified diff between two versions of a file (changed and context), stripped.

    These are what an issue must never quote: :func:`issue_text` masks them (the longer ones) in messages.
    """
    diff = difflib.unified_diff(original.splitlines(), mutant.splitlines(), n=context, lineterm="")
    out = [line[1:].strip() for line in diff if line[:1] in "+- " and not line.startswith(("+++", "---"))]
    return list(dict.fromkeys(line for line in out if line))


def _shown(ids: Sequence[str], groups: Sequence[Sequence[str]]) -> list[str]:
    """The failing tests quoted: round-robin over ``groups`` first (each bug of a pair shows), then the rest."""
    queues = [sorted(set(g) & set(ids)) for g in groups]
    order: list[str] = []
    while any(queues):
        order += [q.pop(0) for q in queues if q]
    order += [t for t in ids if t not in order]
    return sorted(dict.fromkeys(order[:SHOWN_FAILURES]))


def issue_text(
    project: str,
    failing: Mapping[str, str],
    rng: random.Random,
    *,
    secrets: Sequence[str] = (),
    groups: Sequence[Sequence[str]] = (),
) -> str:
    """A plain bug report from failing tests; it never names the cause.

    It holds no diff, no operator and no location of the bug: only test ids and their
    messages, masked by :func:`mask_message`.

    Args:
        project: The project's name, for the title.
        failing: Node id -> the test's crash message.
        rng: Picks the opening sentence.
        secrets: Lines a message must not quote (:func:`changed_lines` of the bug); shorter
            than :data:`MIN_SECRET` characters are left alone.
        groups: Tests to quote from first, in turn (one group per bug of a multi-bug task,
            so each bug shows).

    Returns:
        A title, a sentence, and the first few failing tests with their messages.
    """
    ids = sorted(failing)
    shown = _shown(ids, groups)
    subjects = list(dict.fromkeys(_words(t) for t in shown + ids))
    title = f"{project}: wrong results in {', '.join(f'`{s}`' for s in subjects[:2])}"
    title += " and more" if len(subjects) > 2 else ""
    lines = [title, "", rng.choice(_OPENINGS).format(n=len(ids)), "", "Failures:", ""]
    hidden = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)
    for t in shown:
        masked = mask_message(failing[t].strip(), hidden)
        message = "\n".join(masked.splitlines()[:4])[:400] or "(no message)"
        lines += [f"- `{t}`", "", "  ```", *("  " + m for m in message.splitlines()), "  ```"]
    if len(ids) > len(shown):
        lines.append(f"- ... and {len(ids) - len(shown)} more")
    lines += [
        "",
        "Expected: these tests pass again and every other test keeps passing. "
        "The failing tests may not be in your checkout; they are run when the fix is checked.",
    ]
    return "\n".join(lines)


def mutant_task(
    project: str,
    files: Mapping[str, str],
    site: Site,
    mutant: str,
    *,
    fail_to_pass: Sequence[str],
    pass_to_pass: Sequence[str],
    messages: Mapping[str, str],
    test_paths: Sequence[str],
    rng: random.Random,
    seed: int,
    requirements: Sequence[str] = (),
    distance: str | None = None,
) -> Task:
    """The task whose base state is ``mutant`` and whose fix is the original file.

    Args:
        project: The project's name (task ids start with it).
        files: The original project as ``{relpath: content}``.
        site: The mutation site; its file holds ``mutant`` in the task.
        mutant: The mutated file's text.
        fail_to_pass: Tests the mutant breaks (their files are hidden).
        pass_to_pass: Tests that pass with and without the mutant.
        messages: Node id -> crash message, for the issue text.
        test_paths: The project's test files (the task's ``test_paths``).
        rng: Writes the issue text.
        seed: The synthesis seed, kept in the metadata.
        requirements: Dependencies installed for the tests (``metadata["test_requirements"]``
            when any: the grader's sandbox must provide them).
        distance: ``far`` or ``near`` (:func:`~.harder.distance`), kept in the metadata when given.

    Returns:
        A task in the shared coding-task format (``metadata["source"] == "synth"``).
    """
    return mutants_task(
        project,
        files,
        [(site, mutant)],
        fail_to_pass=fail_to_pass,
        pass_to_pass=pass_to_pass,
        messages=messages,
        test_paths=test_paths,
        rng=rng,
        seed=seed,
        requirements=requirements,
        distance=distance,
    )


def mutants_task(
    project: str,
    files: Mapping[str, str],
    mutants: Sequence[tuple[Site, str]],
    *,
    fail_to_pass: Sequence[str],
    pass_to_pass: Sequence[str],
    messages: Mapping[str, str],
    test_paths: Sequence[str],
    rng: random.Random,
    seed: int,
    requirements: Sequence[str] = (),
    distance: str | None = None,
    groups: Sequence[Sequence[str]] = (),
) -> Task:
    """The task whose base state holds every mutant (one file each) and whose fix restores them all.

    One mutant is :func:`mutant_task`; two in different files are a two-bug task, whose
    ``metadata["operator"]`` is ``"pair"``. ``metadata["mutations"]`` lists every mutation
    (path, line, operator, description) and ``metadata["mutation"]`` is the first.

    Args:
        project: The project's name (task ids start with it).
        files: The original project as ``{relpath: content}``.
        mutants: ``(site, mutated file text)`` per bug, each in its own file.
        fail_to_pass: Tests the mutants break (their files are hidden).
        pass_to_pass: Tests that pass with and without the mutants.
        messages: Node id -> crash message, for the issue text.
        test_paths: The project's test files (the task's ``test_paths``).
        rng: Writes the issue text.
        seed: The synthesis seed, kept in the metadata.
        requirements: Dependencies installed for the tests (``metadata["test_requirements"]``).
        distance: ``far`` or ``near`` (:func:`~.harder.distance`), kept in the metadata when given.
        groups: The failing tests each bug explains, so the issue quotes every bug's.

    Returns:
        A task in the shared coding-task format (``metadata["source"] == "synth"``).

    Raises:
        ValueError: No mutant, or two in one file.
    """
    paths = [site.path for site, _ in mutants]
    if not mutants or len(set(paths)) != len(paths):
        raise ValueError(f"need one mutant per file, got {paths}")
    hidden_paths = sorted({t.split("::", 1)[0] for t in fail_to_pass})
    visible = {p: c for p, c in files.items() if p not in hidden_paths}
    secrets: list[str] = []
    for site, text in mutants:
        visible[site.path] = text
        secrets += changed_lines(files[site.path], text)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", project)
    names = [f"{_module(site.path)}__{site.operator}-{site.index}" for site, _ in mutants]
    records = [
        {"path": site.path, "line": site.line, "description": site.description, "operator": site.operator}
        for site, _ in mutants
    ]
    extra: dict[str, Any] = {"test_requirements": list(requirements)} if requirements else {}
    if distance is not None:
        extra["distance"] = distance
    return make_task(
        f"{slug}__{'+'.join(names)}",
        issue_text(project, {t: messages.get(t, "") for t in fail_to_pass}, rng, secrets=secrets, groups=groups),
        visible,
        list(fail_to_pass),
        {site.path: files[site.path] for site, _ in mutants},
        pass_to_pass=list(pass_to_pass),
        hidden_tests={p: files[p] for p in hidden_paths},
        test_paths=list(test_paths),
        source="synth",
        project=project,
        operator=mutants[0][0].operator if len(mutants) == 1 else "pair",
        mutation={k: v for k, v in records[0].items() if k != "operator"},
        mutations=records,
        seed=seed,
        **extra,
    )


def _module(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
