"""Synthesize bug-fix tasks from a real Python project and its own test suite.

The recipe (in the spirit of SWE-smith, with mutation operators instead of an LLM):

1. Load the project's files (a local directory, or a PyPI sdist that ships its tests).
   A ``src/`` layout is flattened so ``python -m pytest`` at the root imports the package.
2. Run the whole test suite once in a sandbox, with a line tracer that records which
   tests execute which source lines (lines run at import time count for every test).
   Tests whose node ids change with the hash seed (parameters built from sets) are left
   out: a grader could not find them again.
3. For each mutation site (:mod:`.mutations`, in a seeded order, round-robin over
   operators): write the mutant, run only the passing tests that execute the mutated
   lines, and if any fails, run the whole suite to classify every test. Keep the mutant
   when some tests fail (FAIL_TO_PASS) and the others still pass (PASS_TO_PASS).
4. Write a task: the mutant is the base state, the original file the reference fix.
   Test files holding a FAIL_TO_PASS test are hidden (``verifier.hidden_tests``, added at
   grading time); the other test files stay visible. The issue text is written from the
   failing tests' names and assertion messages only, never from the mutation.

Tests run in ``agentgym.sandboxes.make_sandbox(kind)`` (``local``: bubblewrap, ``docker``);
``kind="none"`` runs them as plain host subprocesses and is only for trusted code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentgym.sandboxes.base import ExecResult, Sandbox
from agentgym.tasks import Task

from . import mutations
from .repo import CONFIG_NAMES, is_test_file, make_task

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".tox",
        ".nox",
        "__pycache__",
        "build",
        "dist",
        "docs",
        "doc",
        "benchmark",
        "benchmarks",
        "examples",
        ".github",
        "node_modules",
        ".venv",
        "venv",
    }
)
MAX_FILE_BYTES = 256 * 1024
MAX_PROJECT_BYTES = 8 * 1024 * 1024
PLUGIN_DIR = ".agentgym_synth"
"""Helper files live in a hidden directory: pytest does not collect it, and it never enters a task."""


# --- loading a project ------------------------------------------------------------------


def load_project(root: str | Path) -> dict[str, str]:
    """The project's text files as ``{relpath: content}`` (no VCS, build or docs folders)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} is not a directory: give the project's root folder (the one holding its tests)"
        )
    files: dict[str, str] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if (
                name.startswith(".")
                or name.endswith((".pyc", ".pyo", ".so"))
                or path.is_symlink()
                or path.stat().st_size > MAX_FILE_BYTES
            ):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            total += len(text)
            if total > MAX_PROJECT_BYTES:
                raise ValueError(
                    f"{root} holds more than {MAX_PROJECT_BYTES} bytes of text: synthesize from a smaller project"
                )
            files[rel] = text
    return flatten_src_layout(files)


def flatten_src_layout(files: dict[str, str]) -> dict[str, str]:
    """Move ``src/<pkg>`` to ``<pkg>`` so tests import the package from the repository root."""
    src = [p for p in files if p.startswith("src/")]
    if not src:
        return files
    moved = {p[len("src/") :]: c for p, c in files.items() if p.startswith("src/")}
    if set(moved) & set(files):
        return files  # a clash: leave the layout alone
    return {**{p: c for p, c in files.items() if not p.startswith("src/")}, **moved}


def download_sdist(spec: str, dest: str | Path) -> Path:
    """``pip download`` the source distribution ``NAME==VER`` into ``dest`` and unpack it; returns its root."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", spec, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not download the sdist of {spec!r}:\n{done.stderr[-2000:]}")
    archives = sorted(p for p in dest.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".zip", ".tar.bz2")))
    if not archives:
        raise RuntimeError(f"no source archive for {spec!r} in {dest}")
    archive = archives[0]
    out = dest / "unpacked"
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(out)
    else:
        with tarfile.open(archive) as t:
            try:
                t.extractall(out, filter="data")  # refuses absolute paths, links out of the tree, devices
            except TypeError:  # Python without extraction filters (< 3.10.12)
                t.extractall(out)
    roots = [p for p in out.iterdir() if p.is_dir()]
    return roots[0] if len(roots) == 1 else out


# --- running pytest in a sandbox --------------------------------------------------------

PLUGIN = r'''
"""pytest plugin for agentgym synth: per-test outcomes, optional selection, optional line tracing."""
import json, os, sys, threading
import pytest

_report = os.environ["AGENTGYM_REPORT"]
_select = os.environ.get("AGENTGYM_SELECT")
_trace = os.environ.get("AGENTGYM_TRACE")
_root = os.getcwd()
_tests, _errors, _names, _current, _collected = {}, [], [], [-1], []
_hits = {}
_targets = {}
if _trace:
    with open(_trace) as f:
        _targets = {os.path.join(_root, p): p for p in json.load(f)}


def _local(frame, event, arg):
    if event == "line":
        _hits.setdefault(_targets[frame.f_code.co_filename], {}).setdefault(frame.f_lineno, set()).add(_current[0])
    return _local


def _global(frame, event, arg):
    return _local if frame.f_code.co_filename in _targets else None


def pytest_configure(config):
    if _targets:
        threading.settrace(_global)
        sys.settrace(_global)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    _collected[:] = [i.nodeid for i in items]
    if _select:
        with open(_select) as f:
            keep = set(json.load(f))
        chosen = [i for i in items if i.nodeid in keep]
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in keep])
        items[:] = chosen


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current[0] = len(_names)
    _names.append(item.nodeid)
    yield
    _current[0] = -1


def _message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text[:2000]


def pytest_runtest_logreport(report):
    prev = _tests.get(report.nodeid, {"outcome": "passed"})
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        outcome = "xfailed" if xfail and report.skipped else "xpassed" if xfail else report.outcome
    elif report.failed:
        outcome = "error"
    elif report.skipped:
        outcome = "xfailed" if xfail else "skipped"
    else:
        outcome = prev["outcome"]
    if prev["outcome"] in ("failed", "error") and outcome != prev["outcome"]:
        return
    entry = {"outcome": outcome}
    if report.failed:
        entry["message"] = _message(report)
    elif "message" in prev:
        entry["message"] = prev["message"]
    _tests[report.nodeid] = entry


def pytest_collectreport(report):
    if report.failed:
        _errors.append({"nodeid": report.nodeid, "message": str(report.longrepr)[-3000:]})


def pytest_sessionfinish(session, exitstatus):
    sys.settrace(None)
    threading.settrace(None)
    cover = {p: {str(n): sorted(t) for n, t in lines.items()} for p, lines in _hits.items()}
    with open(_report, "w") as f:
        json.dump({"tests": _tests, "collect_errors": _errors, "names": _names, "collected": _collected, "coverage": cover, "exitstatus": int(exitstatus)}, f)
'''


@dataclass
class PytestRun:
    """One pytest session: per-test outcomes (``passed``, ``failed``, ``error``, ``skipped``, ...)."""

    tests: dict[str, dict[str, str]]
    collect_errors: list[dict[str, str]]
    result: ExecResult
    coverage: dict[str, dict[int, set[str | None]]] = field(default_factory=dict)
    """relpath -> line -> node ids that executed it (None: run outside any test, e.g. at import)."""
    collected: list[str] = field(default_factory=list)
    """Node ids collected (before selection)."""

    @property
    def passed(self) -> set[str]:
        return {t for t, r in self.tests.items() if r["outcome"] == "passed"}

    @property
    def not_passed(self) -> set[str]:
        return {t for t, r in self.tests.items() if r["outcome"] != "passed"}


class UnsandboxedWorkspace(Sandbox):
    """A temporary host directory; commands run as ordinary subprocesses.

    Isolates nothing (no namespaces, no limits beyond the timeout, which kills the
    process group). Use only for code you trust; ``make_sandbox("local")`` is the default.
    """

    def __init__(self, files: str | Path | None = None) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="agentgym-synth-"))
        self.workdir = str(self._root)
        if files is not None:
            self.upload(files)

    def _path(self, path: str) -> Path:
        return self._root / path

    def exec(self, cmd, *, timeout=None, cwd=None, env=None, stdin=None) -> ExecResult:  # type: ignore[override]
        start = time.monotonic()
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(
            cmd,
            shell=isinstance(cmd, str),
            cwd=self._path(cwd or "."),
            env=full_env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        data = stdin.encode() if isinstance(stdin, str) else stdin
        try:
            out, err = proc.communicate(data, timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        return ExecResult(
            proc.returncode if not timed_out else -9,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            timed_out=timed_out,
            duration=time.monotonic() - start,
        )

    def read_file(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def write_file(self, path: str, data: str | bytes) -> None:
        p = self._path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    def upload(self, local_dir: str | Path, dest: str = ".") -> None:
        shutil.copytree(local_dir, self._path(dest), dirs_exist_ok=True)

    def download(self, path: str, local_dir: str | Path) -> None:
        src = self._path(path)
        if src.is_dir():
            shutil.copytree(src, Path(local_dir) / src.name, dirs_exist_ok=True)
        else:
            shutil.copy2(src, local_dir)

    def reset(self) -> None:
        raise NotImplementedError("UnsandboxedWorkspace keeps no snapshot; rewrite the files instead")

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


def open_sandbox(kind: str, files: str | Path) -> tuple[Sandbox, list[str]]:
    """A sandbox holding ``files`` and the python command that runs pytest inside it."""
    if kind == "none":
        return UnsandboxedWorkspace(files), [sys.executable]
    from agentgym.sandboxes import make_sandbox

    return make_sandbox(kind, files=str(files)), ["python3"]  # type: ignore[arg-type]


class PytestRunner:
    """Runs pytest in a sandbox's workspace and reads back per-test outcomes."""

    def __init__(self, sandbox: Sandbox, test_cmd: Sequence[str]) -> None:
        self.sandbox = sandbox
        self.test_cmd = list(test_cmd)
        sandbox.write_file(f"{PLUGIN_DIR}/agentgym_synth_plugin.py", PLUGIN)

    def _abs(self, rel: str) -> str:
        return f"{self.sandbox.workdir.rstrip('/')}/{rel}"

    def run(
        self,
        *,
        select: Sequence[str] | None = None,
        trace: Sequence[str] | None = None,
        timeout: float = 300.0,
        collect_only: bool = False,
        hash_seed: int | None = None,
    ) -> PytestRun:
        env = {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONPATH": self._abs(PLUGIN_DIR),
            "AGENTGYM_REPORT": self._abs(f"{PLUGIN_DIR}/report.json"),
            **({"PYTHONHASHSEED": str(hash_seed)} if hash_seed is not None else {}),
        }
        args: list[str] = []
        if select is not None:
            self.sandbox.write_file(f"{PLUGIN_DIR}/select.json", json.dumps(sorted(select)))
            env["AGENTGYM_SELECT"] = self._abs(f"{PLUGIN_DIR}/select.json")
            args = sorted({nodeid.split("::", 1)[0] for nodeid in select})
        if trace is not None:
            self.sandbox.write_file(f"{PLUGIN_DIR}/trace.json", json.dumps(sorted(trace)))
            env["AGENTGYM_TRACE"] = self._abs(f"{PLUGIN_DIR}/trace.json")
        self.sandbox.write_file(f"{PLUGIN_DIR}/report.json", "")
        cmd = [
            *self.test_cmd,
            "-p",
            "agentgym_synth_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            *(["--collect-only"] if collect_only else []),
            *args,
        ]
        result = self.sandbox.exec(cmd, timeout=timeout, env=env)
        raw = self.sandbox.read_file(f"{PLUGIN_DIR}/report.json")
        if result.timed_out or not raw.strip():
            return PytestRun(
                {},
                [{"nodeid": "", "message": "pytest timed out" if result.timed_out else "pytest wrote no report"}],
                result,
            )
        data = json.loads(raw)
        names = data["names"]
        coverage = {
            p: {int(n): {names[i] if i >= 0 else None for i in idx} for n, idx in lines.items()}
            for p, lines in data["coverage"].items()
        }
        return PytestRun(data["tests"], data["collect_errors"], result, coverage, data["collected"])


# --- synthesis --------------------------------------------------------------------------


@dataclass
class SynthConfig:
    """How many mutants to try and how to run the tests."""

    max_tasks: int = 50
    """Stop after this many tasks are kept."""
    max_per_operator: int = 25
    """Try at most this many mutants per operator (the yield denominator)."""
    seed: int = 0
    """Seeds the order in which sites are tried; the same seed gives the same tasks."""
    operators: Sequence[str] = tuple(mutations.OPERATORS)
    sandbox: str = "local"
    """``local`` (bubblewrap), ``docker``, or ``none`` (host subprocesses; trusted code only)."""
    test_cmd: Sequence[str] | None = None
    """Command prefix that runs pytest (default: ``python3 -m pytest`` in the sandbox)."""
    baseline_timeout: float = 900.0
    mutant_timeout: float | None = None
    """Seconds per mutant run (default: 3x the traced baseline, at least 20)."""
    name: str | None = None
    """Project name used in task ids (default: the folder name)."""


@dataclass
class OperatorStats:
    tried: int = 0
    kept: int = 0
    survived: int = 0
    """No test failed (an equivalent mutant, or the suite does not check this)."""
    uncovered: int = 0
    """No passing test executes the mutated lines (rejected without running)."""
    broken: int = 0
    """Collection errors, or every test failed."""
    timeout: int = 0

    @property
    def yield_pct(self) -> float:
        return 100.0 * self.kept / self.tried if self.tried else 0.0


@dataclass
class SynthResult:
    tasks: list[Task]
    stats: dict[str, OperatorStats]
    baseline_passed: int
    baseline_not_passed: int
    seconds: float

    def table(self) -> str:
        return yield_table(self.stats)


def yield_table(stats: Mapping[str, OperatorStats]) -> str:
    """Per-operator yield as a Markdown table."""
    rows = [("operator", "tried", "kept", "yield", "survived", "uncovered", "broken", "timeout")]
    total = OperatorStats()
    for name, s in stats.items():
        rows.append(
            (
                name,
                str(s.tried),
                str(s.kept),
                f"{s.yield_pct:.0f}%",
                str(s.survived),
                str(s.uncovered),
                str(s.broken),
                str(s.timeout),
            )
        )
        for f in ("tried", "kept", "survived", "uncovered", "broken", "timeout"):
            setattr(total, f, getattr(total, f) + getattr(s, f))
    rows.append(
        (
            "total",
            str(total.tried),
            str(total.kept),
            f"{total.yield_pct:.0f}%",
            str(total.survived),
            str(total.uncovered),
            str(total.broken),
            str(total.timeout),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: (
        "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    )
    sep = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([fmt(rows[0]), sep, *map(fmt, rows[1:])])


def source_files(files: Mapping[str, str]) -> list[str]:
    """Python files that mutations may touch: not tests, not configuration, not scripts at the root."""
    return sorted(
        p
        for p in files
        if p.endswith(".py")
        and not is_test_file(p)
        and p.split("/")[-1] not in CONFIG_NAMES
        and p.split("/")[-1] != "__main__.py"
    )


def _words(test_name: str) -> str:
    name = re.sub(r"\[.*\]$", "", test_name.split("::")[-1])
    return re.sub(r"^test_?", "", name).replace("_", " ").strip() or name


_OPENINGS = [
    "Something regressed: {n} of the project's own tests now fail.",
    "Since the last change, {n} test(s) in the suite fail.",
    "I'm seeing wrong behaviour; {n} existing test(s) fail on the current code.",
]


def issue_text(project: str, failing: Mapping[str, str], rng: random.Random) -> str:
    """A plain bug report from failing tests (node id -> crash message); it never names the cause."""
    ids = sorted(failing)
    subjects = list(dict.fromkeys(_words(t) for t in ids))
    title = f"{project}: wrong results in {', '.join(f'`{s}`' for s in subjects[:2])}" + (
        " and more" if len(subjects) > 2 else ""
    )
    lines = [title, "", rng.choice(_OPENINGS).format(n=len(ids)), "", "Failures:", ""]
    for t in ids[:4]:
        message = "\n".join(failing[t].strip().splitlines()[:4])[:400] or "(no message)"
        message = re.sub(r"0x[0-9a-fA-F]{6,}", "0x...", message)  # object addresses change from run to run
        lines += [f"- `{t}`", "", "  ```", *("  " + m for m in message.splitlines()), "  ```"]
    if len(ids) > 4:
        lines.append(f"- ... and {len(ids) - 4} more")
    lines += [
        "",
        "Expected: these tests pass again and every other test keeps passing. "
        "The failing tests may not be in your checkout; they are run when the fix is checked.",
    ]
    return "\n".join(lines)


def _candidate_order(sites: Mapping[str, list[mutations.Site]], cfg: SynthConfig) -> list[mutations.Site]:
    rng = random.Random(cfg.seed)
    queues = {}
    for op in cfg.operators:
        ops = list(sites.get(op, []))
        rng.shuffle(ops)
        queues[op] = ops[: cfg.max_per_operator]
    order = []
    for i in range(max((len(q) for q in queues.values()), default=0)):
        order += [q[i] for q in queues.values() if i < len(q)]
    return order


def synthesize(
    files: Mapping[str, str], cfg: SynthConfig | None = None, *, log: Callable[[str], None] | None = None
) -> SynthResult:
    """Mutate ``files`` (a project with its tests) and keep the mutants its tests catch."""
    cfg = cfg or SynthConfig()
    log = log or (lambda msg: None)
    unknown = set(cfg.operators) - set(mutations.OPERATORS)
    if unknown:
        raise ValueError(f"unknown operators {sorted(unknown)}; choose from {', '.join(mutations.OPERATORS)}")
    project = cfg.name or "project"
    started = time.monotonic()
    sources = source_files(files)
    tests = sorted(p for p in files if p.endswith(".py") and is_test_file(p) and p.split("/")[-1] != "conftest.py")
    with tempfile.TemporaryDirectory(prefix="agentgym-synth-src-") as tmp:
        for rel, content in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(content)
        sandbox, python = open_sandbox(cfg.sandbox, tmp)
    with sandbox:
        runner = PytestRunner(sandbox, list(cfg.test_cmd) if cfg.test_cmd else [*python, "-m", "pytest"])
        log(f"baseline: running the test suite of {project} with line tracing ...")
        base = runner.run(trace=sources, timeout=cfg.baseline_timeout)
        if base.collect_errors or not base.passed:
            detail = (
                "; ".join(f"{e['nodeid']}: {e['message'][-500:]}" for e in base.collect_errors[:3])
                or base.result.output[-2000:]
            )
            raise RuntimeError(
                f"the baseline test run of {project} is not usable ({len(base.passed)} passed): {detail}"
            )
        # Parametrized ids built from sets or dicts change with the hash seed; a grader could
        # not find such tests again, so they are never used as FAIL_TO_PASS or PASS_TO_PASS.
        stable = set(base.collected)
        for seed in (1, 2):
            stable &= set(runner.run(collect_only=True, hash_seed=seed, timeout=cfg.baseline_timeout).collected)
        passed = base.passed & stable
        timeout = cfg.mutant_timeout or max(20.0, 3 * base.result.duration)
        log(
            f"baseline: {len(passed)} passed, {len(base.not_passed)} not passed, {len(base.passed - passed)} passing tests "
            f"left out (their ids change with the hash seed), {base.result.duration:.1f}s"
        )

        modules = {p: mutations.parse(files[p]) for p in sources}
        by_op: dict[str, list[mutations.Site]] = {op: [] for op in cfg.operators}
        for p in sources:
            for site in mutations.find_sites(modules[p], p, cfg.operators):
                by_op[site.operator].append(site)
        stats = {op: OperatorStats() for op in cfg.operators}
        tasks: list[Task] = []
        seen: set[tuple[str, str]] = set()
        issue_rng = random.Random(cfg.seed)
        for site in _candidate_order(by_op, cfg):
            if len(tasks) >= cfg.max_tasks:
                break
            mutant = mutations.mutate(modules[site.path], site.operator, site.index)
            if mutant == files[site.path] or (site.path, mutant) in seen:
                continue
            seen.add((site.path, mutant))
            s = stats[site.operator]
            s.tried += 1
            lines = base.coverage.get(site.path, {})
            covering: set[str | None] = set()
            for n in range(site.line, site.end_line + 1):
                covering |= lines.get(n, set())
            selected = passed if None in covering else passed & covering
            if not selected:
                s.uncovered += 1
                continue
            sandbox.write_file(site.path, mutant)
            try:
                quick = runner.run(select=sorted(selected), timeout=timeout)
                if quick.result.timed_out:
                    s.timeout += 1
                    continue
                if quick.collect_errors:
                    s.broken += 1
                    continue
                if not (selected - quick.passed):
                    s.survived += 1
                    continue
                # tests outside ``selected`` do not run the mutated lines; run them anyway to be sure
                full = quick if selected == passed else runner.run(timeout=timeout)
            finally:
                sandbox.write_file(site.path, files[site.path])
            if full.result.timed_out:
                s.timeout += 1
                continue
            f2p = sorted(passed - full.passed)
            p2p = sorted(passed & full.passed)
            if full.collect_errors or not p2p or not f2p:
                s.broken += 1
                continue
            s.kept += 1
            tasks.append(_make_task(project, files, tests, site, mutant, f2p, p2p, full, issue_rng, cfg))
            log(f"kept {tasks[-1].id}: {len(f2p)} fail-to-pass, {len(p2p)} pass-to-pass ({site.description})")
    return SynthResult(tasks, stats, len(passed), len(base.not_passed), time.monotonic() - started)


def _make_task(
    project: str,
    files: Mapping[str, str],
    tests: list[str],
    site: mutations.Site,
    mutant: str,
    f2p: list[str],
    p2p: list[str],
    run: PytestRun,
    rng: random.Random,
    cfg: SynthConfig,
) -> Task:
    hidden_paths = sorted({t.split("::", 1)[0] for t in f2p})
    visible = {p: c for p, c in files.items() if p not in hidden_paths}
    visible[site.path] = mutant
    failing = {t: run.tests.get(t, {}).get("message", "") for t in f2p}
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", project)
    module = site.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    task_id = f"{slug}__{module}__{site.operator}-{site.index}"
    return make_task(
        task_id,
        issue_text(project, failing, rng),
        visible,
        f2p,
        {site.path: files[site.path]},
        pass_to_pass=p2p,
        hidden_tests={p: files[p] for p in hidden_paths},
        test_paths=tests,
        source="synth",
        project=project,
        operator=site.operator,
        mutation={"path": site.path, "line": site.line, "description": site.description},
        seed=cfg.seed,
    )


def run_task_tests(
    files: Mapping[str, str], sandbox: str = "none", timeout: float = 300.0, test_cmd: Sequence[str] | None = None
) -> PytestRun:
    """Run the whole pytest suite of a repository given as ``{relpath: content}`` (used to validate tasks)."""
    with tempfile.TemporaryDirectory(prefix="agentgym-check-") as tmp:
        for rel, content in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(content)
        box, python = open_sandbox(sandbox, tmp)
    with box:
        return PytestRunner(box, list(test_cmd) if test_cmd else [*python, "-m", "pytest"]).run(timeout=timeout)


def check_task_tests(task: Task, sandbox: str = "none", timeout: float = 300.0) -> list[str]:
    """Problems with a coding task: base+hidden must fail every FAIL_TO_PASS and pass every
    PASS_TO_PASS; base+solution+hidden must pass them all. Empty when the task is sound.
    """
    v = task.verifier
    base = {**task.setup["files"], **v.get("hidden_tests", {})}
    fixed = {**task.setup["files"], **task.solution["files"], **v.get("hidden_tests", {})}
    problems = []
    before, after = run_task_tests(base, sandbox, timeout), run_task_tests(fixed, sandbox, timeout)
    for t in v["fail_to_pass"]:
        if t in before.passed:
            problems.append(f"FAIL_TO_PASS {t} passes before the fix")
        if t not in after.passed:
            problems.append(
                f"FAIL_TO_PASS {t} does not pass with the fix ({after.tests.get(t, {}).get('outcome', 'not run')})"
            )
    for t in v.get("pass_to_pass", []):
        for name, run in (("before", before), ("with", after)):
            if t not in run.passed:
                problems.append(
                    f"PASS_TO_PASS {t} does not pass {name} the fix ({run.tests.get(t, {}).get('outcome', 'not run')})"
                )
    return problems
