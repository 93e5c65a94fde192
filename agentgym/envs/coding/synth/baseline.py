"""The baseline: the original project's suite, run once with tracing, and what makes it unusable.

Test files that fail to collect while others pass are left out of every later run (the
grader only runs the node ids a task names, so it never collects them). A baseline that
yields nothing becomes a :class:`~.errors.SynthError` whose category says why: no tests,
a missing dependency, the project's own compiled module, a collection error, failures
only, or a timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from .deps import top_level_modules
from .errors import SynthError
from .runner import PytestRun, PytestRunner

HASH_SEEDS = (1, 2)
"""Extra collections, under these hash seeds, that find node ids which are not stable."""
COMPILED_SUFFIXES = (".pyx", ".pxd", ".c", ".cpp", ".cc", ".rs")
"""Sources of compiled extensions: their presence turns a missing own module into ``compiled-extension``."""
NO_TEST_FILES = "no test files (test_*.py, *_test.py, or unittest modules under tests/)"
_MISSING = re.compile(r"No module named '([^']+)'")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _missing_modules(texts: Sequence[str]) -> list[str]:
    return sorted({m for text in texts for m in _MISSING.findall(text)})


def unusable(run: PytestRun, files: Mapping[str, str], timeout: float) -> SynthError:
    """Why a baseline run with collection errors or no passing test cannot be used."""
    if run.result.timed_out:
        return SynthError("timeout", f"the test suite ran past {timeout:.0f}s")
    messages = [e["message"] for e in run.collect_errors] + [r.get("message", "") for r in run.tests.values()]
    if not run.tests and not run.collected:  # pytest stopped early (a conftest that fails to import ...)
        messages.append(run.result.output)
    missing = _missing_modules(messages)
    own = set(top_level_modules(files))
    if missing:
        mine = [m for m in missing if m.split(".")[0] in own]
        if mine and any(p.endswith(COMPILED_SUFFIXES) for p in files):
            return SynthError(
                "compiled-extension", f"{', '.join(mine)} is built from C/Cython/Rust sources; build the project first"
            )
        where = sorted({e["nodeid"] for e in run.collect_errors if _MISSING.search(e["message"])})
        return SynthError(
            "missing-dependency",
            f"no module named {', '.join(missing)}" + (f" (in {', '.join(where[:3])})" if where else ""),
        )
    if run.collect_errors:
        first = run.collect_errors[0]
        if first["message"] == "pytest wrote no report":
            return SynthError("collection-error", f"pytest wrote no report: {_last_line(run.result.output)}")
        return SynthError("collection-error", f"{first['nodeid'] or '(session)'}: {_last_line(first['message'])}")
    if not run.tests:
        return SynthError("no-tests", "pytest collected no tests")
    failing = sorted(run.not_passed)
    detail = f"none of {len(run.tests)} tests passes"
    first_message = next((run.tests[t].get("message", "") for t in failing if run.tests[t].get("message")), "")
    return SynthError("baseline-failures", detail + (f"; {failing[0]}: {_last_line(first_message)}" if failing else ""))


def run_baseline(
    runner: PytestRunner,
    files: Mapping[str, str],
    sources: Sequence[str],
    timeout: float,
    log: Callable[[str], None],
) -> tuple[PytestRun, set[str]]:
    """The traced run of the original project, and its passing tests whose ids are stable.

    Test files that fail to collect are dropped from ``runner.paths`` (with a log line) when
    other tests pass.

    Raises:
        SynthError: No usable passing test (see :func:`unusable`).
    """
    if runner.paths is not None and not runner.paths:
        raise SynthError("no-tests", NO_TEST_FILES)
    base = runner.run(trace=sources, timeout=timeout)
    bad = {e["nodeid"] for e in base.collect_errors}
    paths = runner.paths
    if base.collect_errors and paths is not None and bad <= set(paths) and set(paths) - bad:
        runner.paths = [p for p in paths if p not in bad]
        retry = runner.run(trace=sources, timeout=timeout)
        if retry.result.timed_out or retry.collect_errors or not retry.passed:
            runner.paths = paths
            raise unusable(base, files, timeout)
        missing = _missing_modules([e["message"] for e in base.collect_errors])
        why = f" (no module named {', '.join(missing)})" if missing else ""
        log(f"baseline: leaving out {len(bad)} test file(s) that fail to collect{why}: {', '.join(sorted(bad)[:5])}")
        base = retry
    if base.result.timed_out or base.collect_errors or not base.passed:
        raise unusable(base, files, timeout)
    stable = set(base.collected)
    for seed in HASH_SEEDS:
        stable &= set(runner.run(collect_only=True, hash_seed=seed, timeout=timeout).collected)
    return base, base.passed & stable
