"""Turning a kept mutant into a coding task: the issue text and the task record.

The mutant is the base state and the original file the reference fix. Test files that
hold a FAIL_TO_PASS test are hidden (added at grading time); the other test files stay
visible. The issue is written from the failing tests' names and messages only, never
from the mutation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentgym.tasks import Task

from ..mutations import Site
from ..repo import make_task

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


def issue_text(project: str, failing: Mapping[str, str], rng: random.Random) -> str:
    """A plain bug report from failing tests; it never names the cause.

    Args:
        project: The project's name, for the title.
        failing: Node id -> the test's crash message.
        rng: Picks the opening sentence.

    Returns:
        A title, a sentence, and the first few failing tests with their messages
        (object addresses masked, since they change from run to run).
    """
    ids = sorted(failing)
    subjects = list(dict.fromkeys(_words(t) for t in ids))
    title = f"{project}: wrong results in {', '.join(f'`{s}`' for s in subjects[:2])}"
    title += " and more" if len(subjects) > 2 else ""
    lines = [title, "", rng.choice(_OPENINGS).format(n=len(ids)), "", "Failures:", ""]
    for t in ids[:SHOWN_FAILURES]:
        message = "\n".join(failing[t].strip().splitlines()[:4])[:400] or "(no message)"
        message = re.sub(r"0x[0-9a-fA-F]{6,}", "0x...", message)
        lines += [f"- `{t}`", "", "  ```", *("  " + m for m in message.splitlines()), "  ```"]
    if len(ids) > SHOWN_FAILURES:
        lines.append(f"- ... and {len(ids) - SHOWN_FAILURES} more")
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

    Returns:
        A task in the shared coding-task format (``metadata["source"] == "synth"``).
    """
    hidden_paths = sorted({t.split("::", 1)[0] for t in fail_to_pass})
    visible = {p: c for p, c in files.items() if p not in hidden_paths}
    visible[site.path] = mutant
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", project)
    module = site.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    extra: dict[str, Any] = {"test_requirements": list(requirements)} if requirements else {}
    return make_task(
        f"{slug}__{module}__{site.operator}-{site.index}",
        issue_text(project, {t: messages.get(t, "") for t in fail_to_pass}, rng),
        visible,
        list(fail_to_pass),
        {site.path: files[site.path]},
        pass_to_pass=list(pass_to_pass),
        hidden_tests={p: files[p] for p in hidden_paths},
        test_paths=list(test_paths),
        source="synth",
        project=project,
        operator=site.operator,
        mutation={"path": site.path, "line": site.line, "description": site.description},
        seed=seed,
        **extra,
    )
