"""The type checker catches wrong calls against the public API, and accepts the documented usage.

``tests/typecheck_fixtures/wrong_calls.py`` marks each deliberately wrong line with ``# E: <error code>``;
mypy, run with the repository's configuration (``[tool.mypy]`` in pyproject.toml, strict), must report
exactly those codes on exactly those lines. ``correct_usage.py`` must pass without an error.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from agentgym.testing import require

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "typecheck_fixtures"
WRONG = FIXTURES / "wrong_calls.py"
CORRECT = FIXTURES / "correct_usage.py"
MARK = re.compile(r"#\s*E:\s*([\w-]+(?:\s*,\s*[\w-]+)*)\s*$")
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")


def expected_errors(path: Path) -> set[tuple[int, str]]:
    """``(line, code)`` for every ``# E: code[, code]`` mark of a fixture."""
    marks: set[tuple[int, str]] = set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        m = MARK.search(line)
        if m:
            marks |= {(lineno, code.strip()) for code in m.group(1).split(",")}
    return marks


def mypy_errors() -> dict[str, set[tuple[int, str]]]:
    """The errors mypy reports in the two fixtures, by file name (the repository's config and cache)."""
    require(importlib.util.find_spec("mypy") is not None, "mypy is a dev dependency: pip install -e '.[dev]'")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context", str(WRONG), str(CORRECT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # exit status 1 is the expected outcome: wrong_calls.py has errors
    )
    assert done.returncode in (0, 1), f"mypy crashed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    found: dict[str, set[tuple[int, str]]] = {WRONG.name: set(), CORRECT.name: set()}
    for line in done.stdout.splitlines():
        m = ERROR.match(line.strip())
        if m:
            found.setdefault(Path(m.group("path")).name, set()).add((int(m.group("line")), m.group("code")))
    return found


def test_each_wrong_call_is_caught_at_its_line_and_the_documented_usage_is_clean() -> None:
    found = mypy_errors()
    want = expected_errors(WRONG)
    assert len(want) >= 10, "the fixture lost its marks"
    assert found[WRONG.name] == want, (
        f"missed: {sorted(want - found[WRONG.name])}; unexpected: {sorted(found[WRONG.name] - want)}"
    )
    assert found[CORRECT.name] == set(), f"mypy rejects documented usage: {sorted(found[CORRECT.name])}"
    assert set(found) == {WRONG.name, CORRECT.name}, f"errors outside the fixtures: {sorted(found)}"
