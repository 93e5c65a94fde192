"""Running a project's pytest suite in a sandbox and reading back what happened.

:class:`PytestRunner` works through the :class:`~agentgym.sandboxes.Sandbox` protocol
alone (write files, exec, read files), so any backend serves: :func:`open_sandbox`
picks one by name. ``none`` is :class:`~agentgym.sandboxes.LocalSandbox` with
``isolation="none"``: the same helper, running on the host in a temporary folder with
the host's interpreter, for trusted code only.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from agentgym.sandboxes import ExecResult, LocalSandbox, Sandbox, SandboxConfig, make_sandbox

from .config import SYNTH_INI, read_pytest_config, suite_files

SandboxKind = Literal["local", "docker", "none"]
"""``local`` (bubblewrap), ``docker``, or ``none`` (host subprocesses; trusted code only)."""
SANDBOX_KINDS: tuple[SandboxKind, ...] = ("local", "docker", "none")

PLUGIN_DIR = ".agentgym_synth"
"""Workspace folder for the plugin and its files: hidden, so pytest does not collect it and no task holds it."""
PLUGIN_NAME = "agentgym_synth_plugin"
DEPS_DIR = f"{PLUGIN_DIR}/deps"
"""Where installed dependencies are uploaded (on ``PYTHONPATH``)."""
PLUGIN_SOURCE = resources.files(__name__.rpartition(".")[0]).joinpath("_pytest_plugin.py").read_text(encoding="utf-8")
"""The text of :mod:`agentgym.envs.coding.synth._pytest_plugin`, written into every sandbox."""


@dataclass
class PytestRun:
    """One pytest session, as the plugin reported it."""

    tests: dict[str, dict[str, str]]
    """Node id -> ``{"outcome": ..., "message": ...}``; outcomes are ``passed``, ``failed``,
    ``error``, ``skipped``, ``xfailed`` and ``xpassed``; failures carry a message."""
    collect_errors: list[dict[str, str]]
    """``{"nodeid", "message"}`` per file that failed to collect (or one entry when
    pytest timed out or wrote no report)."""
    result: ExecResult
    """The pytest command's own result (exit code, output, duration)."""
    coverage: dict[str, dict[int, set[str | None]]] = field(default_factory=dict)
    """relpath -> line -> node ids that executed it (None: run outside any test, e.g. at import)."""
    collected: list[str] = field(default_factory=list)
    """Node ids collected (before selection)."""

    @property
    def passed(self) -> set[str]:
        """Node ids that passed."""
        return {t for t, r in self.tests.items() if r["outcome"] == "passed"}

    @property
    def not_passed(self) -> set[str]:
        """Node ids with any other outcome (failed, error, skipped, xfailed, ...)."""
        return {t for t, r in self.tests.items() if r["outcome"] != "passed"}

    def outcome(self, nodeid: str) -> str:
        """The outcome of one test, or ``"not run"``."""
        return self.tests.get(nodeid, {}).get("outcome", "not run")


class PytestRunner:
    """Runs pytest in a sandbox's workspace and reads back per-test outcomes.

    pytest runs as the coding environments' grader runs it: with an ini file of its own
    (``-c``, see :mod:`.config`), ``--rootdir`` and ``--confcutdir`` at the workspace, plugin
    autoloading off. The project's configuration files are not read.

    Args:
        sandbox: Any :class:`~agentgym.sandboxes.Sandbox` whose workspace holds the project.
        test_cmd: The command prefix that runs pytest there, e.g. ``["python3", "-m", "pytest"]``.
        paths: The test files a whole-suite run collects (see :func:`~.config.suite_files`);
            None: whatever pytest finds from the workspace root.
        deps: A host folder of installed dependencies (:mod:`.deps`), uploaded into the
            workspace's hidden plugin folder and put on ``PYTHONPATH``.
        pythonpath: More workspace-relative folders for ``PYTHONPATH`` (``src`` for a ``src/``
            layout, as the grader adds it).
    """

    def __init__(
        self,
        sandbox: Sandbox,
        test_cmd: Sequence[str],
        *,
        paths: Sequence[str] | None = None,
        deps: str | Path | None = None,
        pythonpath: Sequence[str] = (),
    ) -> None:
        self.sandbox = sandbox
        self.test_cmd = list(test_cmd)
        self.paths = None if paths is None else list(paths)
        sandbox.write_file(f"{PLUGIN_DIR}/{PLUGIN_NAME}.py", PLUGIN_SOURCE)
        sandbox.write_file(f"{PLUGIN_DIR}/pytest.ini", SYNTH_INI)
        self.pythonpath = [self._abs(PLUGIN_DIR), *(self._abs(p) for p in pythonpath)]
        if deps is not None:
            sandbox.upload(deps, DEPS_DIR)
            self.pythonpath.append(self._abs(DEPS_DIR))

    def _abs(self, rel: str) -> str:
        return f"{self.sandbox.workdir.rstrip('/')}/{rel}".rstrip("/")

    def run(
        self,
        *,
        select: Sequence[str] | None = None,
        trace: Sequence[str] | None = None,
        timeout: float = 300.0,
        collect_only: bool = False,
        hash_seed: int | None = None,
    ) -> PytestRun:
        """Run the suite once.

        Args:
            select: Run only these node ids (and only their files are collected).
            trace: Record which lines of these relative paths each test executes.
            timeout: Seconds before the run is killed (the result then has ``timed_out``).
            collect_only: Collect without running (``--collect-only``).
            hash_seed: ``PYTHONHASHSEED`` for the run (default: random).

        Returns:
            The outcomes; when pytest timed out or wrote no report, no tests and one
            collection error saying so.
        """
        env = {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONPATH": ":".join(self.pythonpath),
            "AGENTGYM_REPORT": self._abs(f"{PLUGIN_DIR}/report.json"),
        }
        if hash_seed is not None:
            env["PYTHONHASHSEED"] = str(hash_seed)
        args: list[str] = list(self.paths or [])
        if select is not None:
            self.sandbox.write_file(f"{PLUGIN_DIR}/select.json", json.dumps(sorted(select)))
            env["AGENTGYM_SELECT"] = self._abs(f"{PLUGIN_DIR}/select.json")
            args = sorted({nodeid.split("::", 1)[0] for nodeid in select})
        if trace is not None:
            self.sandbox.write_file(f"{PLUGIN_DIR}/trace.json", json.dumps(sorted(trace)))
            env["AGENTGYM_TRACE"] = self._abs(f"{PLUGIN_DIR}/trace.json")
        self.sandbox.write_file(f"{PLUGIN_DIR}/report.json", "")
        cmd = [*self.test_cmd, "-c", self._abs(f"{PLUGIN_DIR}/pytest.ini"), "--rootdir", self._abs(""), "--confcutdir"]
        cmd += [self._abs(""), "-p", PLUGIN_NAME, "-p", "no:cacheprovider", "-q"]
        cmd += ["--collect-only"] if collect_only else []
        result = self.sandbox.exec([*cmd, *args], timeout=timeout, env=env)
        raw = self.sandbox.read_file(f"{PLUGIN_DIR}/report.json")
        if result.timed_out or not raw.strip():
            message = "pytest timed out" if result.timed_out else "pytest wrote no report"
            return PytestRun({}, [{"nodeid": "", "message": message}], result)
        data = json.loads(raw)
        names = data["names"]
        coverage = {
            p: {int(n): {names[i] if i >= 0 else None for i in idx} for n, idx in lines.items()}
            for p, lines in data["coverage"].items()
        }
        return PytestRun(data["tests"], data["collect_errors"], result, coverage, data["collected"])


def suite_limits(timeout: float) -> SandboxConfig:
    """Sandbox limits for running a test suite: the defaults, with CPU time for a run of ``timeout`` seconds."""
    return SandboxConfig(cpu_seconds=max(SandboxConfig.cpu_seconds, math.ceil(timeout)))


def open_sandbox(
    kind: SandboxKind, files: Mapping[str, str], config: SandboxConfig | None = None
) -> tuple[Sandbox, list[str]]:
    """Open a sandbox holding a project, and say how to run Python in it.

    Args:
        kind: Which backend (see :data:`SandboxKind`).
        files: The project as ``{relpath: content}``.
        config: The sandbox's limits (default: :class:`~agentgym.sandboxes.SandboxConfig`).

    Returns:
        The sandbox (the caller closes it) and the Python command inside it: the host's
        interpreter for ``none``, whose pytest then runs the tests; ``python3`` otherwise.

    Raises:
        ValueError: An unknown ``kind``.
    """
    if kind not in SANDBOX_KINDS:
        raise ValueError(f"unknown sandbox kind {kind!r}: use one of {', '.join(SANDBOX_KINDS)}")
    with tempfile.TemporaryDirectory(prefix="agentgym-synth-src-") as tmp:
        for rel, content in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(content, encoding="utf-8")
        if kind == "none":
            return LocalSandbox(tmp, config, isolation="none", python=sys.executable), [sys.executable]
        return make_sandbox(kind, files=tmp, config=config), ["python3"]


def project_runner(
    sandbox: Sandbox,
    files: Mapping[str, str],
    test_cmd: Sequence[str],
    deps: str | Path | None = None,
) -> PytestRunner:
    """A runner for a project's whole suite: its test files named explicitly, ``src`` on the path when present."""
    return PytestRunner(
        sandbox,
        test_cmd,
        paths=suite_files(files, read_pytest_config(files)),
        deps=deps,
        pythonpath=["src"] if any(p.startswith("src/") for p in files) else [],
    )


def run_task_tests(
    files: Mapping[str, str],
    sandbox: SandboxKind = "none",
    timeout: float = 300.0,
    test_cmd: Sequence[str] | None = None,
    deps: str | Path | None = None,
) -> PytestRun:
    """Run the whole pytest suite of a project in a fresh sandbox.

    Args:
        files: The project as ``{relpath: content}``.
        sandbox: Which backend runs it.
        timeout: Seconds before the run is killed.
        test_cmd: The command prefix that runs pytest (default: ``<python> -m pytest``).
        deps: A host folder of installed dependencies (:mod:`.deps`) to make importable.

    Returns:
        The outcomes of every test.
    """
    box, python = open_sandbox(sandbox, files, suite_limits(timeout))
    with box:
        return project_runner(box, files, test_cmd or [*python, "-m", "pytest"], deps).run(timeout=timeout)
