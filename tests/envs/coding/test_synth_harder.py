"""Harder synthesized tasks: two bugs across files, far bugs, and issue texts that never reveal the fix."""

from __future__ import annotations

import random
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentgym.envs.coding import mutations
from agentgym.envs.coding.grading import Grader
from agentgym.envs.coding.sandboxing import SandboxProvider
from agentgym.envs.coding.synth import SynthConfig, SynthResult, synthesize, yield_table
from agentgym.envs.coding.synth.harder import distance, is_two_bugs, mutated_names, source_of_test
from agentgym.envs.coding.synth.stats import OperatorStats
from agentgym.envs.coding.synth.task import HIDDEN_FRAME, HIDDEN_TEXT, changed_lines, issue_text, mask_message
from agentgym.tasks import Task, TaskSet
from agentgym.testing import require_bwrap

# Two modules; each has a helper that only its caller's test reaches (far) and functions tested by name (near).
GEO = {
    "geo/__init__.py": "",
    "geo/units.py": textwrap.dedent("""
        FACTORS = {"cm": 1, "m": 100, "km": 100000}


        def _factor(unit):
            return FACTORS[unit]


        def to_cm(value, unit):
            return value * _factor(unit)
    """).lstrip(),
    "geo/text.py": textwrap.dedent("""
        def _mark():
            return "!"


        def shout(words):
            return words.upper() + _mark()


        def greet(name):
            return "hello " + name
    """).lstrip(),
    "tests/test_units.py": textwrap.dedent("""
        from geo.units import to_cm


        def test_to_cm():
            assert to_cm(2, "m") == 200
    """).lstrip(),
    "tests/test_text.py": textwrap.dedent("""
        from geo.text import greet, shout


        def test_shout():
            assert shout("hey") == "HEY!"


        def test_greet():
            assert greet("ann") == "hello ann"
    """).lstrip(),
}
FAR_SITES = {("geo/units.py", 5), ("geo/text.py", 2)}
"""(path, line) of the helpers' returns: their tests only call ``to_cm`` and ``shout``."""


def _line_of(files: dict[str, str], path: str, text: str) -> int:
    return next(i for i, line in enumerate(files[path].splitlines(), 1) if text in line)


def assert_reveals_nothing(task: Task) -> None:
    """The issue quotes no line of the diff, no ``path:line`` of a mutated file, no operator name."""
    prompt = task.prompt
    for mutation in task.metadata["mutations"]:
        path = mutation["path"]
        for line in changed_lines(task.solution["files"][path], task.setup["files"][path]):
            assert len(line) < 4 or line not in prompt, (task.id, line)
        assert not re.search(rf"{re.escape(path)}:\d+", prompt), task.id
        assert f"line {mutation['line']}" not in prompt
    for name in mutations.OPERATORS:
        assert name not in prompt and name.replace("_", " ") not in prompt, (task.id, name)
    assert "diff" not in prompt.lower() and "->" not in prompt


# --- pure parts ----------------------------------------------------------------------------


def test_mutated_names_are_what_a_test_would_write() -> None:
    source = textwrap.dedent("""
        LIMIT = 3


        class Box:
            size = 2

            def __init__(self, n):
                self.n = n

            def grow(self):
                def step(k):
                    return k + 1
                return step(self.n)


        def top():
            return LIMIT


        if LIMIT > 2:
            LIMIT = 2
    """)

    def line(text: str) -> int:
        return source.splitlines().index(text) + 1

    assert mutated_names(source, line("LIMIT = 3")) == ["LIMIT"]
    assert mutated_names(source, line("    size = 2")) == ["Box"]
    assert mutated_names(source, line("        self.n = n")) == ["Box"]  # nobody writes __init__
    assert mutated_names(source, line("            return k + 1")) == ["grow", "step"]
    assert mutated_names(source, line("    return LIMIT")) == ["top"]
    assert mutated_names(source, line("if LIMIT > 2:")) == []  # cannot tell: counts as near
    assert mutated_names("def (", 1) == []


def test_source_of_test_finds_functions_methods_and_parametrized_ids() -> None:
    files = {
        "tests/test_a.py": textwrap.dedent("""
            import pytest


            @pytest.mark.parametrize("n", [1, 2])
            def test_one(n):
                assert helper(n)


            class TestGroup:
                def test_two(self):
                    assert other()
        """).lstrip()
    }
    one = source_of_test(files, "tests/test_a.py::test_one[1]")
    assert one is not None and one.startswith("@pytest.mark.parametrize") and "helper(n)" in one
    two = source_of_test(files, "tests/test_a.py::TestGroup::test_two")
    assert two is not None and "other()" in two and "helper" not in two
    assert source_of_test(files, "tests/test_a.py::test_missing") is None
    assert source_of_test(files, "tests/test_b.py::test_one") is None


def test_distance_is_far_only_when_no_failing_test_names_the_function() -> None:
    def site(path: str, text: str) -> mutations.Site:
        line = _line_of(GEO, path, text)
        return mutations.Site(path, "change_return", 0, line, line, "")

    factor, to_cm = site("geo/units.py", "return FACTORS"), site("geo/units.py", "return value")
    mark, shout = site("geo/text.py", 'return "!"'), site("geo/text.py", "return words")
    assert distance(GEO, [factor], ["tests/test_units.py::test_to_cm"]) == "far"
    assert distance(GEO, [to_cm], ["tests/test_units.py::test_to_cm"]) == "near"
    both = ["tests/test_units.py::test_to_cm", "tests/test_text.py::test_shout"]
    assert distance(GEO, [factor, mark], both) == "far"
    assert distance(GEO, [factor, shout], both) == "near"
    assert distance(GEO, [factor], ["tests/test_units.py::test_gone"]) == "near"  # a test it cannot read


@pytest.mark.parametrize(
    ("pair", "first", "second", "expected"),
    [
        ({"a", "b"}, {"a"}, {"b"}, True),
        ({"a", "b", "c"}, {"a", "c"}, {"b", "c"}, True),
        ({"a", "b"}, {"a", "b"}, {"b"}, False),  # the first explains every failure
        ({"a"}, {"a"}, {"b"}, False),  # the second's failure is masked by the first
        ({"a", "b"}, {"a", "b"}, {"a", "b"}, False),  # one bug twice
    ],
)
def test_a_pair_is_two_bugs_only_when_each_explains_a_failure_of_its_own(
    pair: set[str], first: set[str], second: set[str], expected: bool
) -> None:
    assert is_two_bugs(pair, first, second) is expected
    assert is_two_bugs(pair, second, first) is expected


def test_messages_lose_source_locations_and_changed_lines_but_keep_test_locations() -> None:
    message = textwrap.dedent("""
        tests/test_units.py:5: in test_to_cm
            assert to_cm(2, "m") == 200
        geo/units.py:9: in to_cm
            return value * _factor(unit)
        /workspace/geo/units.py:5: in _factor
        E   TypeError: unsupported operand at 0x7f3091759fd0
          File "/workspace/geo/units.py", line 5, in _factor
    """).strip()
    masked = mask_message(message, ["return value * _factor(unit)"])
    assert masked.splitlines() == [
        "tests/test_units.py:5: in test_to_cm",
        '    assert to_cm(2, "m") == 200',
        HIDDEN_FRAME,
        f"    {HIDDEN_TEXT}",
        HIDDEN_FRAME,
        "E   TypeError: unsupported operand at 0x...",
        HIDDEN_FRAME,
    ]
    text = issue_text(
        "geo", {"tests/test_units.py::test_to_cm": message}, random.Random(0), secrets=["return value * _factor(unit)"]
    )
    assert "geo/units.py" not in text and "_factor(unit)" not in text and "test_to_cm" in text


def test_changed_lines_are_the_diff_without_headers() -> None:
    original = "a = 1\nb = 2\nc = 3\n"
    assert changed_lines(original, "a = 1\nb = 3\nc = 3\n", context=1) == ["a = 1", "b = 2", "b = 3", "c = 3"]
    assert changed_lines(original, original) == []


def test_a_pair_issue_quotes_failures_of_both_bugs() -> None:
    first = [f"tests/test_a.py::test_a{i}" for i in range(6)]
    second = ["tests/test_z.py::test_z"]
    failing = dict.fromkeys(first + second, "AssertionError")
    plain = issue_text("p", failing, random.Random(0))
    assert "test_z" not in plain.split("- ... and")[0]  # sorted, the first bug's tests fill the quote
    paired = issue_text("p", failing, random.Random(0), groups=[first, second])
    assert "`tests/test_z.py::test_z`" in paired and "`tests/test_a.py::test_a0`" in paired
    assert "- ... and 3 more" in paired


def test_the_yield_table_shows_near_and_overlap_only_when_counted() -> None:
    stats = {"comparison": OperatorStats(tried=2, kept=1, survived=1)}
    assert "near" not in yield_table(stats) and "overlap" not in yield_table(stats)
    stats["pair"] = OperatorStats()
    stats["pair"].record("overlap")
    stats["comparison"].record("near")
    table = yield_table(stats)
    assert table.splitlines()[0].endswith("| near | overlap |")
    assert "| pair       |     1 |    0 |    0% |" in table and table.splitlines()[-1].endswith("|    1 |       1 |")


# --- synthesis in the local sandbox, graded by the real grader ------------------------------


@pytest.fixture(scope="module")
def far_pairs() -> SynthResult:
    require_bwrap()  # a skip outside CI without bubblewrap; a failure in CI
    cfg = SynthConfig(operators=["change_return"], sandbox="local", name="geo", far=True, pairs=1)
    return synthesize(GEO, cfg)


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    require_bwrap()
    provider = SandboxProvider("local", pool_size=1)
    try:
        yield Grader(provider, timeout=60)
    finally:
        provider.close()


def test_far_keeps_bugs_reached_through_a_caller_and_drops_those_a_test_names(far_pairs: SynthResult) -> None:
    singles = [t for t in far_pairs.tasks if len(t.metadata["mutations"]) == 1]
    assert {(t.metadata["mutation"]["path"], t.metadata["mutation"]["line"]) for t in singles} == FAR_SITES
    assert all(t.metadata["distance"] == "far" for t in far_pairs.tasks)
    # the returns of to_cm, shout and greet: each failing test calls the mutated function by name
    assert far_pairs.stats["change_return"].near == 3 and far_pairs.stats["change_return"].kept == 2


def test_a_pair_across_two_files_needs_both_fixes(far_pairs: SynthResult, grader: Grader) -> None:
    (pair,) = [t for t in far_pairs.tasks if t.metadata["operator"] == "pair"]
    assert {(m["path"], m["line"]) for m in pair.metadata["mutations"]} == FAR_SITES
    assert pair.metadata["mutation"] == {k: v for k, v in pair.metadata["mutations"][0].items() if k != "operator"}
    # both helpers' returns are the first return of their module
    assert pair.id == "geo__" + "+".join(
        f"geo.{Path(m['path']).stem}__change_return-0" for m in pair.metadata["mutations"]
    )
    assert pair.verifier["fail_to_pass"] == ["tests/test_text.py::test_shout", "tests/test_units.py::test_to_cm"]
    assert pair.verifier["pass_to_pass"] == ["tests/test_text.py::test_greet"]
    assert set(pair.solution["files"]) == {"geo/units.py", "geo/text.py"}
    assert far_pairs.stats["pair"].kept == 1

    assert grader.grade_files(pair, pair.solution["files"]).resolved
    assert not grader.grade_files(pair, {}).resolved
    for path, original in pair.solution["files"].items():
        one_file = grader.grade_files(pair, {path: original})
        assert not one_file.resolved, path
        assert one_file.integrity == [] and any(o != "passed" for o in one_file.fail_to_pass.values())
    assert "test_shout" in pair.prompt and "test_to_cm" in pair.prompt  # the issue lists both bugs' failures


def test_no_kept_task_reveals_its_fix(far_pairs: SynthResult) -> None:
    assert far_pairs.tasks
    for task in far_pairs.tasks:
        assert_reveals_nothing(task)


def test_cli_pairs_and_far_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agentgym.cli import main

    for rel, content in GEO.items():
        (tmp_path / "geo-src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "geo-src" / rel).write_text(content)
    common = ["tasks", "synth", str(tmp_path / "geo-src"), "--sandbox", "none", "--no-grade"]
    common += ["--operators", "change_return", "--name", "geo"]
    out = tmp_path / "all.jsonl"
    assert main([*common, "--pairs", "2", "--out", str(out)]) == 0
    tasks = list(TaskSet.from_jsonl(out))
    assert sorted(t.metadata["distance"] for t in tasks if t.metadata["operator"] != "pair") == [
        "far",
        "far",
        "near",
        "near",
        "near",
    ]
    pairs = [t for t in tasks if t.metadata["operator"] == "pair"]
    assert len(pairs) == 2 and all(len({m["path"] for m in t.metadata["mutations"]}) == 2 for t in pairs)
    assert "| pair " in capsys.readouterr().out
    for task in tasks:
        assert_reveals_nothing(task)

    far = tmp_path / "far.jsonl"
    assert main([*common, "--far", "--out", str(far)]) == 0
    assert {t.metadata["distance"] for t in TaskSet.from_jsonl(far)} == {"far"}
    assert "| near |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--pairs must be 0 or more, got -1"):
        main([*common, "--pairs", "-1"])
