"""The pytest plugin synth copies into the sandbox: per-test outcomes, selection, line tracing.

This file is shipped as source and runs inside the sandbox, under the sandbox's own
Python with the standard library and pytest only (agentgym is not installed there);
:mod:`~agentgym.envs.coding.synth.runner` writes it into the workspace and loads it with
``-p agentgym_synth_plugin``. Importing it does nothing: :func:`pytest_configure`
reads its settings from the environment and registers the recorder.

* ``AGENTGYM_REPORT`` (required): the JSON report is written there when the session ends.
* ``AGENTGYM_SELECT``: a JSON list of node ids; every other collected test is deselected.
* ``AGENTGYM_TRACE``: a JSON list of paths relative to the working directory; each line of
  these files that runs is recorded with the index (in ``names``) of the test running it,
  ``-1`` outside any test (module import, collection).

The report holds ``tests`` (node id -> ``{"outcome", "message"?}``), ``collect_errors``,
``names`` (tests in the order they ran), ``collected`` (node ids before selection),
``coverage`` (path -> line -> test indices) and ``exitstatus``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import pytest

MESSAGE_LIMIT = 2000
"""Characters of a failure message kept per test."""


class _Recorder:
    """The plugin proper, registered by :func:`pytest_configure` with the run's settings."""

    def __init__(self, report: str, select: str | None, targets: dict[str, str]) -> None:
        self.report = report
        self.select = select
        self.targets = targets
        """Absolute path -> the relative path it is reported under (the traced files)."""
        self.tests: dict[str, dict[str, str]] = {}
        self.errors: list[dict[str, str]] = []
        self.names: list[str] = []
        self.collected: list[str] = []
        self.current = -1
        self.hits: dict[str, dict[int, set[int]]] = {}
        if targets:
            tracer = self._tracer()
            threading.settrace(tracer)
            sys.settrace(tracer)

    def _tracer(self) -> Callable[[FrameType, str, Any], Any]:
        """A ``sys.settrace`` function that records which lines of the traced files run, and under which test."""
        targets, hits = self.targets, self.hits

        def line(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                lines = hits.setdefault(targets[frame.f_code.co_filename], {})
                lines.setdefault(frame.f_lineno, set()).add(self.current)
            return line

        def call(frame: FrameType, event: str, arg: Any) -> Any:
            return line if frame.f_code.co_filename in targets else None

        return call

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Remember every collected node id, then keep only the selected tests."""
        self.collected = [i.nodeid for i in items]
        if self.select:
            with open(self.select) as f:
                keep = set(json.load(f))
            config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in keep])
            items[:] = [i for i in items if i.nodeid in keep]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        """Attribute the lines that run during a test (setup, call, teardown) to that test."""
        self.current = len(self.names)
        self.names.append(item.nodeid)
        yield
        self.current = -1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Fold the setup, call and teardown reports of a test into one outcome.

        A failure or error in any phase sticks; ``xfail`` tests report ``xfailed``/``xpassed``.
        """
        prev = self.tests.get(report.nodeid, {"outcome": "passed"})
        xfail = hasattr(report, "wasxfail")
        outcome: str
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
        entry: dict[str, str] = {"outcome": outcome}
        if report.failed:
            entry["message"] = _message(report)
        elif "message" in prev:
            entry["message"] = prev["message"]
        self.tests[report.nodeid] = entry

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Record collection errors (a module that fails to import, a syntax error)."""
        if report.failed:
            self.errors.append({"nodeid": report.nodeid, "message": str(report.longrepr)[-3000:]})

    def pytest_sessionfinish(self, exitstatus: int | pytest.ExitCode) -> None:
        """Stop tracing and write the report."""
        sys.settrace(None)
        threading.settrace(None)
        coverage = {p: {str(n): sorted(t) for n, t in lines.items()} for p, lines in self.hits.items()}
        report = {
            "tests": self.tests,
            "collect_errors": self.errors,
            "names": self.names,
            "collected": self.collected,
            "coverage": coverage,
            "exitstatus": int(exitstatus),
        }
        with open(self.report, "w") as f:
            json.dump(report, f)


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return str(text)[:MESSAGE_LIMIT]


def pytest_configure(config: pytest.Config) -> None:
    """Read the settings from the environment and register the recorder."""
    targets: dict[str, str] = {}
    trace = os.environ.get("AGENTGYM_TRACE")
    if trace:
        with open(trace) as f:
            root = os.getcwd()
            targets = {os.path.join(root, p): p for p in json.load(f)}
    recorder = _Recorder(os.environ["AGENTGYM_REPORT"], os.environ.get("AGENTGYM_SELECT"), targets)
    config.pluginmanager.register(recorder, "agentgym_synth_recorder")
