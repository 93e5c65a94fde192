"""The one test harness behind ``run_tests`` and the hidden grading run (host side).

:data:`RUNNER_SOURCE` (the text of ``_internals.py`` and ``_runner.py``) runs in the sandbox as
``python3 -I -B -c RUNNER_SOURCE`` for both, with the same environment (the sandbox's),
cwd (the repository root), argv, ``__main__`` names and output locations (a fresh
``mkdtemp`` directory). The configuration comes as one JSON line on stdin and differs
only in the tests to run, the nonce and, when grading, the name of the canary test the
runner writes next to its junit file. :func:`harness_config` builds it and
:func:`parse_run` reads the nonce-tagged records back.

What the harness does inside the process (the audit hook, the snapshots, the guard
plugin) is described in ``_runner.py``. What it cannot hide: the hidden test files exist
only while grading, and ``os.stat``/``os.path.exists`` raise no audit event, so code can
tell that it is being graded. The checks therefore flag the cheating acts themselves
(reading those files, the stack, pytest's internals ...) whether or not the code knows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentgym.envs.coding.repo import is_test_file, test_paths_of
from agentgym.envs.coding.testdeps import DEPS_DIR, test_requirements
from agentgym.tasks import Task

if TYPE_CHECKING:
    from agentgym.sandboxes import ExecResult

_HERE = Path(__file__).resolve().parent
RUNNER_SOURCE = "\n".join((_HERE / name).read_text(encoding="utf-8") for name in ("_internals.py", "_runner.py"))
"""The harness program: the shared table of internals, then the runner (which ends by running)."""
HARNESS_ARGV = ["python3", "-I", "-B", "-c", RUNNER_SOURCE]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def harness_config(task: Task, nodeids: list[str], *, grading: bool) -> tuple[dict[str, Any], str | None]:
    """The stdin configuration of one run, and the canary's function name when ``grading``.

    Trusted files are the pristine repository (and, when grading, the hidden tests): the
    runner hashes what it finds, so every file the agent changed or added is *changed code*.
    """
    files = dict(task.setup["files"])
    if grading:
        files.update(task.verifier.get("hidden_tests", {}))
    tests = set(test_paths_of(task))
    trusted = {p: [_sha(c), is_test_file(p, tests)] for p, c in files.items()}
    canary = f"canary_{secrets.token_hex(6)}" if grading else None
    cfg = {
        "nonce": "@@agentgym-run-" + secrets.token_hex(16) + "@@",
        "nodeids": list(nodeids),
        "trusted": trusted,
        "pythonpath": ["."] + (["src"] if any(p.startswith("src/") for p in files) else []),
    }
    if test_requirements(task):
        cfg["libpath"] = [DEPS_DIR]  # uploaded by :func:`agentgym.envs.coding.testdeps.provide`
    if canary:
        cfg["canary"] = canary
    return cfg, (f"test_{canary}" if canary else None)


@dataclass
class HarnessRun:
    """What one harness run reported."""

    records: int = 0
    """Result records found (exactly one when the runner finished normally)."""
    exit: int | None = None
    junit: bytes = b""
    outcomes: dict[str, str] = field(default_factory=dict)
    integrity: list[str] = field(default_factory=list)
    """Tampering the runner saw, in the order reported."""
    error: str | None = None
    """Why the record could not be read."""
    output: str = ""
    """stdout and stderr without the runner's records (what pytest printed)."""


def parse_run(res: ExecResult, nonce: str) -> HarnessRun:
    """The records of one run read back from its output (``nonce`` tells them from the rest)."""
    run = HarnessRun()
    kept = []
    for line in res.stdout.splitlines():
        if not line.startswith(nonce):
            kept.append(line)
            continue
        body = line[len(nonce) :]
        if body.startswith("I"):
            try:
                reason = json.loads(body[1:])
            except ValueError:
                reason = "unreadable integrity record"
            if isinstance(reason, str) and reason not in run.integrity:
                run.integrity.append(reason)
        elif body.startswith("R"):
            run.records += 1
            try:
                record = json.loads(body[1:])
                run.junit = zlib.decompress(base64.b64decode(record["junit"]))
                run.outcomes = {str(k): str(v) for k, v in dict(record["outcomes"]).items()}
                run.exit = int(record["exit"])
                for reason in record.get("integrity", []):
                    if isinstance(reason, str) and reason not in run.integrity:
                        run.integrity.append(reason)
            except (ValueError, KeyError, TypeError, AttributeError, zlib.error) as e:
                run.error = f"unreadable result record ({type(e).__name__})"
        else:
            run.records += 1
            run.error = "unknown record kind"
    text = "\n".join(kept).strip("\n")
    if res.stderr.strip():
        text = (text + "\n" + res.stderr.strip("\n")).strip("\n")
    run.output = text
    return run
