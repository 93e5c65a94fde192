"""SWE-bench-style grading in layers: hidden tests run on the pristine repository plus the agent's source changes.

How a submission is graded (:meth:`Grader.grade_workspace`, :meth:`Grader.grade`):

1. Every process the agent left in its workspace sandbox is killed
   (``Sandbox.kill_processes``), then :func:`collect_changes` lists the workspace (regular
   files only; symlinks are never followed) and keeps the files that differ from the pristine
   repository. :func:`~agentgym.envs.coding.repo.split_changes` drops every change to tests,
   ``conftest.py``, pytest/tox/setup.cfg/pyproject configuration, ``sitecustomize``,
   ``.pth`` files, hidden directories, and new files outside the existing packages.
2. A **fresh** sandbox receives the pristine repository, the kept changes and the hidden
   tests (never present in the agent's sandbox). No git history is created.
3. The harness (``_runner.py``, see :mod:`~agentgym.envs.coding.harness`) runs pytest once
   for all target tests plus a canary test that must fail, and the grader accepts the run
   only when everything agrees: one nonce-tagged record, the process exit status equals
   pytest's (which must be 1: the canary failed, nothing interrupted), the canary failed in
   both the junit XML and the runner's record, the two agree on every target. Missing,
   skipped, xfailed, xpassed or errored targets count as failed.

The integrity layers, and what each one stops:

* **Same harness** (layer 1). ``run_tests`` and grading run the same runner with the same
  interpreter flags (``-I -B``), argv, environment, ``__main__`` names, cwd and output
  locations; the configuration comes on stdin. Stops: telling the runs apart by flags,
  argv, environment variables, ``__main__`` or where output goes. Not covered: the hidden
  test files exist only while grading, and ``os.stat`` raises no audit event, so code can
  still learn it is being graded; the layers below flag the cheating act itself.
* **Tamper detection inside the run** (layer 2, in ``_runner.py``). An audit hook installed
  before any project code runs attributes events to the changed code (the nearest
  non-library frame on the stack) and flags: stack and frame access (``sys._getframe``,
  ``inspect``/``traceback`` stack walks, ``tb_frame``/``gi_frame``/``cr_frame``/``f_code``,
  ``sys._current_frames``, ``gc.get_objects/get_referrers/get_referents``), reading a test
  function's ``__code__``, opening/listing/renaming/linking the test files, the canary or the
  runner's files (by inode), writing Python files, ``sys.settrace/setprofile``, ``ctypes``,
  compiling or executing new code, building code objects, replacing ``__code__``, signals
  sent and processes started. Identity snapshots taken before project code runs are
  re-checked after collection, around each test and at the end: every attribute of every
  library module loaded (builtins, os, io, json, importlib, unittest, pytest, _pytest,
  pluggy, ...) and of its classes, ``sys.modules`` entries, ``sys.meta_path``/``path_hooks``,
  the registered plugins and hook implementations, the collected test functions and the
  test modules' globals (builtins shadowed by changed code), threads still running changed
  code, signal handlers, trace hooks. Classes of the changed code are probed for
  comparisons that accept two different values. Stops: always-equal return values, reading
  expected values from the caller's frame or code, answer keys from the hidden tests,
  patched pytest/pluggy/unittest internals and plugins registered at run time (also when
  only ``tests/`` outcomes are flipped), junit or outcome rewriting from threads or hooked
  ``open``, no-op ``assert*`` methods, patched or shadowed builtins.
* **Scan of the diff** (layer 3, :mod:`~agentgym.envs.coding.integrity`). Constructs the
  changed files newly introduce, compared with the pristine files: frame/inspect/gc/
  traceback internals, builtins, ``sys.modules``/import hooks, trace functions, ctypes,
  pytest/unittest internals in source code, atexit/``os._exit``/signals, reads of argv,
  flags, ``__main__`` or the environment, exec/eval/compile/``__import__``/importlib,
  computed ``getattr``, test paths in string literals, comparison methods that ignore the
  other operand, and module-level names that shadow builtins. Stops: the same classes
  again, before anything runs, including value-level tricks the probes cannot see (an
  always-equal object from a library such as ``unittest.mock.ANY``).
* **Process and channel death** (layer 4). Agent processes are killed before the listing;
  any ``SandboxError`` from the workspace after the agent's code ran in it, or from the
  grading sandbox once the changed code runs there, scores 0 (``anomalies``), never an
  infrastructure failure. A sandbox that cannot be started before any agent code ran is
  still an infrastructure failure.
* **Verdict** (layer 5). :class:`GradeResult` carries ``integrity`` (and ``anomalies``);
  either makes the run untrusted and the outcome 0; ``CodingEnv`` reports them as
  ``info["integrity"]``.

What is not covered: the graded code runs inside the pytest process (as in SWE-bench). An
attack that reaches the runner's objects without any audited operation and without
changing a snapshotted attribute (for example holding a test module object obtained during
import and reading its module-level data, which no audit event reveals) is caught only by
the diff scan (``sys.modules``, test imports); value-level always-equal objects of library
classes the scan does not know are not probed; rebinding plain data constants (ints,
strings) of library modules is not flagged.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentgym.envs.coding.harness import (
    HARNESS_ARGV,
    HarnessRun,
    harness_config,
    parse_run,
)
from agentgym.envs.coding.integrity import scan_changes
from agentgym.envs.coding.repo import (
    Changes,
    grading_files,
    junit_key,
    split_changes,
    target_tests,
    test_paths_of,
)
from agentgym.envs.coding.testdeps import DEPS_DIR, dependencies_folder
from agentgym.errors import SandboxError
from agentgym.tasks import Task

if TYPE_CHECKING:
    from agentgym.envs.coding.sandboxing import SandboxProvider
    from agentgym.sandboxes import ExecResult, Sandbox


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


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def collect_changes(workspace: Sandbox, task: Task) -> Changes:
    """Read the agent's workspace and split its changes into applied and ignored ones."""
    pristine = task.setup["files"]
    res = workspace.exec(
        ["python3", "-I", "-S", "-c", CHANGES_SCRIPT],
        stdin=json.dumps({p: _sha(c) for p, c in pristine.items()}),
        timeout=60,
    )
    try:
        listing = json.loads(res.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        # Only code the agent ran (via run_tests) can break the listing, e.g. with millions of
        # files: grade the pristine repository (fails closed) rather than report infrastructure.
        return Changes({}, {".": f"the workspace could not be listed: {res.output[-300:]}"})
    current: dict[str, str | None] = dict.fromkeys(listing["deleted"])
    ignored_extra = dict.fromkeys(listing["other"], "not a regular file, or larger than 1 MiB")
    test_paths = test_paths_of(task)
    provisional = split_changes(pristine, dict.fromkeys(listing["changed"], ""), test_paths)
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
        """Neither an anomaly nor an integrity flag: the run's outcomes count."""
        return not self.anomalies and not self.integrity

    @property
    def f2p_fraction(self) -> float:
        """Fraction of FAIL_TO_PASS tests passing (0 when the run is not trusted)."""
        return self._frac(self.fail_to_pass) if self.trusted else 0.0

    @property
    def p2p_fraction(self) -> float:
        """Fraction of PASS_TO_PASS tests passing (0 when the run is not trusted)."""
        return self._frac(self.pass_to_pass) if self.trusted else 0.0

    @property
    def resolved(self) -> bool:
        """Trusted, every FAIL_TO_PASS test passes and every PASS_TO_PASS test still passes."""
        return self.trusted and self.f2p_fraction == 1.0 and self.p2p_fraction == 1.0

    @property
    def graded(self) -> float:
        """FAIL_TO_PASS fraction, when every PASS_TO_PASS test still passes (else 0)."""
        return self.f2p_fraction if self.p2p_fraction == 1.0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The verdict as JSON data (for logs and ``info``)."""
        return {
            "resolved": self.resolved,
            "f2p": self.fail_to_pass,
            "p2p": self.pass_to_pass,
            "applied": self.applied,
            "ignored": self.ignored,
            "anomalies": self.anomalies,
            "integrity": self.integrity,
            "timed_out": self.timed_out,
        }


def _junit_outcomes(xml: bytes) -> dict[tuple[str, str], str]:
    root = ET.fromstring(xml)
    out: dict[tuple[str, str], str] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    for case in root.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        tags = {child.tag for child in case}
        o = (
            "error"
            if "error" in tags
            else "failed"
            if "failure" in tags
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
        if key not in out or rank[o] > rank[out[key]]:
            out[key] = o
    return out


def kill_agent_processes(sandbox: Sandbox) -> int:
    """Kill every process the agent left in ``sandbox`` (0 when the backend cannot)."""
    killer = getattr(sandbox, "kill_processes", None)
    if killer is None:
        return 0
    try:
        return int(killer())
    except NotImplementedError:
        return 0


class Grader:
    """Grades coding tasks in fresh sandboxes from ``provider``.

    ``timeout`` bounds the one pytest run per task (a timeout fails the submission);
    ``scan=False`` turns off the diff scan (layer 3), e.g. to test the run-time layers alone.

    Raises :class:`~agentgym.errors.SandboxError` (an infrastructure error, which the
    environment does not score) only when a sandbox fails before any code the agent wrote
    or ran was in it; every other failure of the run is a verdict of 0 with its reason in
    :attr:`GradeResult.anomalies` or :attr:`GradeResult.integrity`.
    """

    def __init__(self, provider: SandboxProvider, timeout: float = 120.0, scan: bool = True):
        self.provider = provider
        self.timeout = timeout
        self.scan = scan

    def grade_workspace(self, task: Task, workspace: Sandbox, agent_ran: bool = True) -> GradeResult:
        """Grade the current state of the agent's ``workspace``.

        ``agent_ran``: whether the agent's code has run in the workspace (``run_tests``). Then a
        sandbox failure while its processes are killed or its files listed scores 0 instead of
        raising an infrastructure error.
        """
        try:
            kill_agent_processes(workspace)
            changes = collect_changes(workspace, task)
        except SandboxError as error:
            if not agent_ran:
                raise
            return self._dead(
                task,
                Changes({}, {}),
                f"the workspace sandbox failed after the agent's code ran in it "
                f"({type(error).__name__}: {str(error)[:200]})",
            )
        return self.grade(task, changes)

    def grade_files(self, task: Task, files: Mapping[str, str | None]) -> GradeResult:
        """Grade a set of changed files (``None`` deletes), e.g. a single-turn completion."""
        return self.grade(task, split_changes(task.setup["files"], files, test_paths_of(task)))

    def grade(self, task: Task, changes: Changes) -> GradeResult:
        """The verdict on ``changes`` (from :func:`collect_changes` or ``split_changes``) for ``task``."""
        from agentgym.envs.coding.function_grading import (
            FunctionGrader,
            is_function_task,
        )

        if is_function_task(task):  # input/expected-output checks compare outside the candidate's process
            return FunctionGrader(self.provider, self.timeout).grade(task, changes)
        start = time.monotonic()
        flagged = scan_changes(task, changes) if self.scan else []
        if flagged:  # nothing needs to run: the outcome is 0 whatever the tests say
            result = self._result(task, changes)
            result.integrity.extend(flagged)
            result.log = "not run: the diff scan flagged the changes"
        else:
            result = self._run(task, changes)
        result.duration = time.monotonic() - start
        return result

    @staticmethod
    def _result(task: Task, changes: Changes) -> GradeResult:
        f2p = task.verifier.get("fail_to_pass", [])
        return GradeResult(
            dict.fromkeys(f2p, "missing"),
            {t: "missing" for t in task.verifier.get("pass_to_pass", []) if t not in f2p},
            applied=sorted(changes.applied),
            ignored=dict(changes.ignored),
        )

    def _dead(self, task: Task, changes: Changes, why: str) -> GradeResult:
        result = self._result(task, changes)
        result.anomalies.append(why)
        return result

    def _run(self, task: Task, changes: Changes) -> GradeResult:
        files = grading_files(task, changes)
        targets = target_tests(task)
        cfg, canary = harness_config(task, targets, grading=True)
        deps = dependencies_folder(task)  # installed before any sandbox starts; a failure is infrastructure
        with tempfile.TemporaryDirectory(prefix="agentgym-grade-") as tmp:
            for path, content in files.items():
                dest = Path(tmp, path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(content)
            sandbox = self.provider.acquire(tmp)  # fails before any agent code runs: infrastructure
        if deps is not None:
            try:
                sandbox.upload(deps, DEPS_DIR)
            except BaseException:
                self.provider.release(sandbox)
                raise
        try:
            res = sandbox.exec(HARNESS_ARGV, stdin=json.dumps(cfg) + "\n", timeout=self.timeout)
        except SandboxError as error:
            if not changes.applied:
                raise  # only pristine code ran: the infrastructure failed
            # The graded code can kill every process of its uid, the sandbox's helper included,
            # or garble its channel: a 0, not an infrastructure failure a trainer would mask.
            return self._dead(
                task,
                changes,
                f"the grading sandbox failed while the changed code ran ({type(error).__name__}: {str(error)[:200]})",
            )
        finally:
            try:
                self.provider.release(sandbox)
            except Exception:
                pass
        result = self._result(task, changes)
        result.timed_out, result.exit_code = res.timed_out, res.exit_code
        run = parse_run(res, cfg["nonce"])
        result.log = run.output[-4000:]
        result.integrity.extend(run.integrity)
        self._verify(result, res, run, targets, canary or "")
        return result

    @staticmethod
    def _verify(result: GradeResult, res: ExecResult, run: HarnessRun, targets: list[str], canary: str) -> None:
        anomalies = result.anomalies
        if res.timed_out:
            return  # every target stays "missing": a timeout fails the submission
        if run.records != 1:
            anomalies.append(
                f"expected one result record from the runner, found {run.records} "
                "(the run was cut short or tampered with)"
            )
            return
        if run.error or run.exit is None:
            anomalies.append(run.error or "unreadable result record")
            return
        if run.exit != res.exit_code:
            anomalies.append(f"process exit status {res.exit_code} disagrees with pytest's {run.exit}")
        if run.exit != 1:
            anomalies.append(f"pytest exit status {run.exit}; expected 1 (the canary fails, nothing interrupted)")
        if not run.junit:
            anomalies.append("no junit report")
            return
        try:
            reported = _junit_outcomes(run.junit)
        except ET.ParseError:
            anomalies.append("junit report does not parse")
            return
        mine = run.outcomes
        canary_junit = [o for (_, name), o in reported.items() if name == canary]
        canary_mine = [o for nodeid, o in mine.items() if nodeid.endswith("::" + canary)]
        if canary_junit != ["failed"] or canary_mine != ["failed"]:
            anomalies.append("the canary test did not fail")
        for nodeid in targets:
            from_junit = reported.get(junit_key(nodeid), "missing")
            from_guard = mine.get(nodeid, "missing")
            if (
                from_junit != from_guard
                and not (from_junit == "skipped" and from_guard in ("xfailed", "skipped"))
                and not (from_junit == "passed" and from_guard == "xpassed")
                and not (from_junit == "failed" and from_guard == "xpassed")
            ):
                anomalies.append(f"{nodeid}: junit says {from_junit}, the runner saw {from_guard}")
            outcome = (
                "passed"
                if from_junit == from_guard == "passed"
                else (from_guard if from_guard != "passed" else from_junit)
            )
            if nodeid in result.fail_to_pass:
                result.fail_to_pass[nodeid] = outcome
            else:
                result.pass_to_pass[nodeid] = outcome
