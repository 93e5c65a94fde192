"""SWE-bench-style grading: hidden tests run on the pristine repository plus the agent's source changes.

How a submission is graded (:meth:`Grader.grade`):

1. :func:`collect_changes` lists the agent's workspace (regular files only; symlinks are
   never followed) and keeps the files that differ from the pristine repository.
   :func:`~agentgym.envs.coding.repo.split_changes` drops every change to tests,
   ``conftest.py``, pytest/tox/setup.cfg/pyproject configuration, ``sitecustomize``,
   ``.pth`` files, hidden directories, and new files outside the existing packages.
2. A **fresh** sandbox receives the pristine repository, the kept changes, the hidden
   tests (never present in the agent's sandbox) and a grader-owned *canary* test that
   must fail. No git history is created.
3. :data:`RUNNER` runs pytest once for all target tests plus the canary, under
   ``python3 -I -B`` (no ``PYTHON*`` variables, no user site, no bytecode), with a
   grader-owned ini (``-c``: the repository's ini/tox/setup.cfg/pyproject are not read,
   ``addopts`` is empty), ``-p no:cacheprovider``, plugin autoloading off,
   ``PYTEST_ADDOPTS`` removed, and the junit XML written to a fresh ``mkdtemp``
   directory outside the workspace. Its configuration (including a per-run nonce) comes
   on stdin, so it is not in ``argv`` or the environment. A guard plugin fails any test
   whose function's code comes from a file the agent changed (a replaced test), and
   records every outcome itself. After ``pytest.main`` returns, the runner writes one
   nonce-tagged line (exit status, junit, its own outcomes) to the stdout it saved
   before any graded code ran, and leaves with ``os._exit`` (no ``atexit`` handlers).
4. The grader accepts the run only when everything agrees: exactly one nonce line, the
   process exit status equals pytest's (which must be 1: the canary failed and the
   session was not interrupted), the canary is reported failed in both the junit XML and
   the runner's record, and the two agree on every target test. Otherwise the outcome is
   0 and the reason is recorded in ``GradeResult.anomalies``. Missing, skipped, xfailed,
   xpassed or errored target tests count as failed.

What this does not protect against: the graded code runs inside the pytest process
(as in SWE-bench), so code written to defeat *this* grader — finding the runner's
objects in memory and rewriting the guard's record, the junit file and the canary
consistently — is not ruled out. The canary, the nonce and the cross-checks make the
generic hacks (exit tricks, forged output, patched pytest internals, conftest or
start-up injection, edited tests) score 0; see ``tests/envs/coding/test_redteam.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from agentgym.envs.coding.repo import Changes, grading_files, junit_key, split_changes, target_tests, test_paths_of
from agentgym.tasks import Task

if TYPE_CHECKING:
    from agentgym.envs.coding.sandboxing import SandboxProvider
    from agentgym.sandboxes import ExecResult, Sandbox


RUNNER = r"""
import base64, json, os, sys, tempfile, zlib
result_fd = os.dup(1)
cfg = json.loads(sys.stdin.readline())
devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(devnull, 0)
nonce = cfg.pop("nonce")
for key in list(os.environ):
    if key.startswith(("PYTEST", "PYTHON", "_PYTEST", "COV_CORE")):
        del os.environ[key]
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
sys.dont_write_bytecode = True
root = os.getcwd()
sys.path[:0] = [os.path.join(root, p) for p in cfg["pythonpath"]]
out = tempfile.mkdtemp(prefix="g")
report = os.path.join(out, "r.xml")
ini = os.path.join(out, "pytest.ini")
with open(ini, "w") as f:
    f.write("[pytest]\naddopts =\njunit_family = xunit2\njunit_logging = no\njunit_log_passing_tests = false\n")
changed = {os.path.realpath(os.path.join(root, p)) for p in cfg["changed"]}
import pytest
outcomes = {}
RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 2, "failed": 2, "error": 3}

class Guard:
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        code = getattr(getattr(item, "obj", None), "__code__", None)
        if code is not None and os.path.realpath(code.co_filename) in changed:
            raise RuntimeError("agentgym grader: this test's function comes from a changed source file")

    def pytest_runtest_logreport(self, report):
        if report.passed:
            o = "xpassed" if hasattr(report, "wasxfail") else "passed"
        elif report.skipped:
            o = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        else:
            o = "failed" if report.when == "call" else "error"
        if report.when == "call" or o != "passed":
            old = outcomes.get(report.nodeid)
            if old is None or RANK[o] > RANK[old]:
                outcomes[report.nodeid] = o

try:
    code = int(pytest.main(["-q", "-p", "no:cacheprovider", "-c", ini, "--rootdir", root, "--confcutdir", root,
                            "--junitxml", report,
                            "--tb=short", "-o", "console_output_style=classic", *cfg["nodeids"]], plugins=[Guard()]))
except BaseException as e:
    code = 3
try:
    with open(report, "rb") as f:
        junit = f.read()
except OSError:
    junit = b""
line = json.dumps({"exit": code, "junit": base64.b64encode(zlib.compress(junit)).decode(), "outcomes": outcomes})
data = ("\n" + nonce + line + "\n").encode()
while data:
    data = data[os.write(result_fd, data):]
os._exit(code if 0 <= code < 256 else 3)
"""

# Lists regular files that differ from the pristine hashes (given on stdin), and deleted paths.
CHANGES_SCRIPT = r"""
import hashlib, json, os, stat, sys
pristine = json.loads(sys.stdin.read())
seen, changed, other = set(), [], []
for d, dirs, files in os.walk("."):
    dirs[:] = sorted(x for x in dirs if x not in ("__pycache__", ".pytest_cache", ".git"))
    for name in sorted(files):
        p = os.path.normpath(os.path.join(d, name))
        try:
            st = os.lstat(p)
        except OSError:
            continue
        seen.add(p)
        if not stat.S_ISREG(st.st_mode):
            other.append(p)
        elif st.st_size > (1 << 20):
            other.append(p)
        else:
            with open(p, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            if pristine.get(p) != h:
                changed.append(p)
        if len(changed) + len(other) > 5000:
            break
deleted = sorted(set(pristine) - seen)
print(json.dumps({"changed": changed, "other": other, "deleted": deleted}))
"""

CANARY = "def test_canary():\n    assert False, 'agentgym grader canary: this test must fail'\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def collect_changes(workspace: "Sandbox", task: Task) -> Changes:
    """Read the agent's workspace and split its changes into applied and ignored ones."""
    pristine = task.setup["files"]
    res = workspace.exec(["python3", "-I", "-S", "-c", CHANGES_SCRIPT],
                         stdin=json.dumps({p: _sha(c) for p, c in pristine.items()}), timeout=60)
    try:
        listing = json.loads(res.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        # Only code the agent ran (via run_tests) can break the listing, e.g. with millions of
        # files: grade the pristine repository (fails closed) rather than report infrastructure.
        return Changes({}, {".": f"the workspace could not be listed: {res.output[-300:]}"})
    current: dict[str, str | None] = {p: None for p in listing["deleted"]}
    ignored_extra = {p: "not a regular file, or larger than 1 MiB" for p in listing["other"]}
    test_paths = test_paths_of(task)
    provisional = split_changes(pristine, {p: "" for p in listing["changed"]}, test_paths)
    for path in listing["changed"]:
        if path in provisional.ignored:
            current[path] = ""  # content not needed: it is ignored
            continue
        try:
            current[path] = workspace.read_file(path).decode("utf-8")
        except UnicodeDecodeError:
            ignored_extra[path] = "not UTF-8 text"
        except OSError:
            ignored_extra[path] = "vanished while grading"
    changes = split_changes(pristine, {p: c for p, c in current.items() if p not in ignored_extra}, test_paths)
    return Changes(changes.applied, {**changes.ignored, **ignored_extra})


@dataclass
class GradeResult:
    """The verdict on one submission."""

    fail_to_pass: dict[str, str]
    """Node id -> outcome (passed, failed, error, skipped, xfailed, xpassed, missing)."""
    pass_to_pass: dict[str, str]
    applied: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    """Why the run itself was not trusted (then every target counts as failed)."""
    integrity: list[str] = field(default_factory=list)
    """Why the run was flagged as tampering (audit hook, integrity checks, diff scan); non-empty scores 0."""
    timed_out: bool = False
    exit_code: int | None = None
    log: str = ""
    duration: float = 0.0

    @staticmethod
    def _frac(d: Mapping[str, str]) -> float:
        return sum(o == "passed" for o in d.values()) / len(d) if d else 1.0

    @property
    def trusted(self) -> bool:
        return not self.anomalies and not self.integrity

    @property
    def f2p_fraction(self) -> float:
        return self._frac(self.fail_to_pass) if self.trusted else 0.0

    @property
    def p2p_fraction(self) -> float:
        return self._frac(self.pass_to_pass) if self.trusted else 0.0

    @property
    def resolved(self) -> bool:
        return self.trusted and self.f2p_fraction == 1.0 and self.p2p_fraction == 1.0

    @property
    def graded(self) -> float:
        """FAIL_TO_PASS fraction, when every PASS_TO_PASS test still passes (else 0)."""
        return self.f2p_fraction if self.p2p_fraction == 1.0 else 0.0

    def summary(self) -> dict:
        return {"resolved": self.resolved, "f2p": self.fail_to_pass, "p2p": self.pass_to_pass, "applied": self.applied,
                "ignored": self.ignored, "anomalies": self.anomalies, "integrity": self.integrity, "timed_out": self.timed_out}


def _junit_outcomes(xml: bytes) -> dict[tuple[str, str], str]:
    root = ET.fromstring(xml)
    out: dict[tuple[str, str], str] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    for case in root.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        tags = {child.tag for child in case}
        o = "error" if "error" in tags else "failed" if "failure" in tags else "skipped" if "skipped" in tags else "passed"
        if key not in out or rank[o] > rank[out[key]]:
            out[key] = o
    return out


class Grader:
    """Grades coding tasks in fresh sandboxes from ``provider``.

    ``timeout`` bounds the one pytest run per task (a timeout fails the submission).
    """

    def __init__(self, provider: "SandboxProvider", timeout: float = 120.0):
        self.provider = provider
        self.timeout = timeout

    def grade_workspace(self, task: Task, workspace: "Sandbox") -> GradeResult:
        """Grade the current state of the agent's ``workspace``."""
        return self.grade(task, collect_changes(workspace, task))

    def grade_files(self, task: Task, files: Mapping[str, str | None]) -> GradeResult:
        """Grade a set of changed files (``None`` deletes), e.g. a single-turn completion."""
        return self.grade(task, split_changes(task.setup["files"], files, test_paths_of(task)))

    def grade(self, task: Task, changes: Changes) -> GradeResult:
        from agentgym.sandboxes import SandboxError

        try:
            return self._grade(task, changes)
        except SandboxError as error:
            if not changes.applied:
                raise
            # The graded code can kill every process of its uid, the sandbox's helper included.
            # If the pristine repository grades fine, the agent's code broke the sandbox: a 0,
            # not an infrastructure failure that a trainer would mask.
            self._grade(task, Changes({}, {}))
            return GradeResult({t: "missing" for t in task.verifier.get("fail_to_pass", [])},
                               {t: "missing" for t in task.verifier.get("pass_to_pass", [])},
                               applied=sorted(changes.applied), ignored=dict(changes.ignored),
                               anomalies=[f"the sandbox died while the changed code ran ({type(error).__name__})"])

    def _grade(self, task: Task, changes: Changes) -> GradeResult:
        start = time.monotonic()
        nonce = "@@agentgym-grade-" + secrets.token_hex(16) + "@@"
        canary_file = f"test_agentgym_canary_{secrets.token_hex(6)}.py"
        canary = f"{canary_file}::test_canary"
        files = grading_files(task, changes)
        files[canary_file] = CANARY
        targets = target_tests(task)
        python_path = ["."] + (["src"] if any(p.startswith("src/") for p in files) else [])
        cfg = {"nonce": nonce, "nodeids": [*targets, canary], "changed": sorted(changes.applied), "pythonpath": python_path}
        with tempfile.TemporaryDirectory(prefix="agentgym-grade-") as tmp:
            for path, content in files.items():
                dest = Path(tmp, path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(content)
            sandbox = self.provider.acquire(tmp)
        try:
            res = sandbox.exec(["python3", "-I", "-B", "-c", RUNNER], stdin=json.dumps(cfg) + "\n", timeout=self.timeout)
        finally:
            self.provider.release(sandbox)
        result = GradeResult({t: "missing" for t in task.verifier.get("fail_to_pass", [])},
                             {t: "missing" for t in task.verifier.get("pass_to_pass", []) if t not in task.verifier.get("fail_to_pass", [])},
                             applied=sorted(changes.applied), ignored=dict(changes.ignored), timed_out=res.timed_out,
                             exit_code=res.exit_code, log=res.output[-4000:])
        self._verify(result, res, nonce, targets, canary)
        result.duration = time.monotonic() - start
        return result

    @staticmethod
    def _verify(result: GradeResult, res: "ExecResult", nonce: str, targets: list[str], canary: str) -> None:
        anomalies = result.anomalies
        if res.timed_out:
            return  # every target stays "missing": a timeout fails the submission
        lines = [line for line in res.stdout.splitlines() if line.startswith(nonce)]
        if len(lines) != 1:
            anomalies.append(f"expected one result record from the runner, found {len(lines)} (the run was cut short or tampered with)")
            return
        try:
            record = json.loads(lines[0][len(nonce):])
            junit = zlib.decompress(base64.b64decode(record["junit"]))
            mine: dict[str, str] = dict(record["outcomes"])
            exit_code = int(record["exit"])
        except (ValueError, KeyError, TypeError, zlib.error) as e:
            anomalies.append(f"unreadable result record ({type(e).__name__})")
            return
        if exit_code != res.exit_code:
            anomalies.append(f"process exit status {res.exit_code} disagrees with pytest's {exit_code}")
        if exit_code != 1:
            anomalies.append(f"pytest exit status {exit_code}; expected 1 (the canary fails, nothing interrupted)")
        if not junit:
            anomalies.append("no junit report")
            return
        try:
            reported = _junit_outcomes(junit)
        except ET.ParseError:
            anomalies.append("junit report does not parse")
            return
        if reported.get(junit_key(canary)) != "failed" or mine.get(canary) != "failed":
            anomalies.append("the canary test did not fail")
        for nodeid in targets:
            from_junit = reported.get(junit_key(nodeid), "missing")
            from_guard = mine.get(nodeid, "missing")
            if from_junit != from_guard and not (from_junit == "skipped" and from_guard in ("xfailed", "skipped")) \
                    and not (from_junit == "passed" and from_guard == "xpassed") \
                    and not (from_junit == "failed" and from_guard == "xpassed"):
                anomalies.append(f"{nodeid}: junit says {from_junit}, the runner saw {from_guard}")
            outcome = "passed" if from_junit == from_guard == "passed" else (from_guard if from_guard != "passed" else from_junit)
            if nodeid in result.fail_to_pass:
                result.fail_to_pass[nodeid] = outcome
            else:
                result.pass_to_pass[nodeid] = outcome
