"""Mutation operators on hand-written snippets, and task synthesis end to end on a tiny project."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from agentgym.envs.coding import mutations
from agentgym.envs.coding.repo import check_task
from agentgym.envs.coding.synth import (
    PytestRunner,
    SandboxKind,
    SynthConfig,
    candidate_order,
    check_task_tests,
    flatten_src_layout,
    issue_text,
    load_project,
    open_sandbox,
    suite_limits,
    synthesize,
    yield_table,
)
from agentgym.sandboxes import LocalSandbox
from agentgym.testing import require_bwrap, require_docker


def only(operator: str, source: str, index: int = 0) -> str:
    return mutations.mutate(textwrap.dedent(source), operator, index)


@pytest.mark.parametrize(
    ("operator", "source", "index", "expected"),
    [
        ("comparison", "ok = a < b\n", 0, "ok = a <= b\n"),
        ("comparison", "ok = a >= b\n", 0, "ok = a > b\n"),
        ("comparison", "ok = x == 1\n", 0, "ok = x != 1\n"),
        ("comparison", "ok = k not in d\n", 0, "ok = k in d\n"),
        ("comparison", "ok = v is None\n", 0, "ok = v is not None\n"),
        ("comparison", "ok = 0 < x < 9\n", 1, "ok = 0 < x <= 9\n"),
        ("boolean", "ok = a and b\n", 0, "ok = a or b\n"),
        ("boolean", "ok = a or b\n", 0, "ok = a and b\n"),
        ("off_by_one", "n = 10\n", 0, "n = 9\n"),
        ("off_by_one", "n = 10\n", 1, "n = 11\n"),
        ("off_by_one", "n = 0\n", 0, "n = 1\n"),
        ("slice_bound", "y = xs[:n]\n", 0, "y = xs[:n - 1]\n"),
        ("slice_bound", "y = xs[i:]\n", 1, "y = xs[i + 1:]\n"),
        ("swap_args", "r = pow(a, b, m)\n", 0, "r = pow(b, a, m)\n"),
        ("invert_if", "if ready:\n    go()\n", 0, "if not ready:\n    go()\n"),
        ("invert_if", "if a and b:\n    go()\n", 0, "if not (a and b):\n    go()\n"),
        ("invert_if", "if not done:\n    go()\n", 0, "if done:\n    go()\n"),
        ("drop_statement", "def f():\n    x = 1\n    return x\n", 0, "def f():\n    return x\n"),
        ("drop_else", "if a:\n    x = 1\nelse:\n    x = 2\n", 0, "if a:\n    x = 1\n"),
        ("drop_else", "if a:\n    x = 1\nelif b:\n    x = 2\n", 0, "if a:\n    x = 1\n"),
        ("change_return", "def f():\n    return True\n", 0, "def f():\n    return False\n"),
        ("change_return", "def f(a, b):\n    return a < b\n", 0, "def f(a, b):\n    return not a < b\n"),
        ("change_return", "def f(a):\n    return a + 1\n", 0, "def f(a):\n    return None\n"),
    ],
)
def test_operator_produces_expected_code(operator: str, source: str, index: int, expected: str) -> None:
    assert only(operator, source, index) == expected


def test_every_operator_is_covered_above() -> None:
    assert set(mutations.OPERATORS) == {
        "comparison",
        "boolean",
        "off_by_one",
        "slice_bound",
        "swap_args",
        "invert_if",
        "drop_statement",
        "drop_else",
        "change_return",
    }


@pytest.mark.parametrize(
    ("operator", "source"),
    [
        ("swap_args", "r = f(a, a)\n"),  # swapping equal arguments changes nothing
        ("swap_args", "r = f(a, key=b)\n"),
        ("off_by_one", "import sys\nn = -0\n"),  # a literal zero never goes negative: only `1`
        ("slice_bound", "y = xs[1:-1]\n"),  # literal bounds belong to off_by_one
        ("drop_statement", "def f():\n    return 1\n"),  # a one-statement block stays
        ("drop_statement", 'def f():\n    """Doc."""\n    pass\n'),
        ("change_return", "def f():\n    return None\n"),
        ("comparison", 'if __name__ == "__main__":\n    main(a < b)\n'),
        ("invert_if", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\n"),
    ],
)
def test_sites_that_are_not_mutated(operator: str, source: str) -> None:
    sites = mutations.find_sites(source, operators=[operator])
    if operator == "off_by_one":
        assert [s.description for s in sites] == ["`0` -> `1`"]
    else:
        assert sites == []


def test_sites_are_numbered_stably_and_every_mutant_parses() -> None:
    source = textwrap.dedent('''
        def window(xs, n, strict=False):
            """Sliding sums."""
            out = []
            for i in range(len(xs) - n + 1):
                s = sum(xs[i:i + n])
                if s > 10 and strict:
                    continue
                elif s == 0:
                    out.append(None)
                else:
                    out.append(max(s, n))
            return out
    ''')
    sites = mutations.find_sites(source, "w.py")
    assert sites == mutations.find_sites(source, "w.py")
    assert {s.operator for s in sites} == set(mutations.OPERATORS)
    for site in sites:
        mutant = mutations.mutate(source, site.operator, site.index)
        assert mutant != source, site
        compile(mutant, "w.py", "exec")
        assert site.line >= 2


def test_mutate_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="unknown mutation operator"):
        mutations.mutate("x = 1\n", "nope", 0)
    with pytest.raises(IndexError, match="index 5 is out of range"):
        mutations.mutate("x = 1\n", "off_by_one", 5)


def test_src_layout_is_flattened() -> None:
    files = {"src/pkg/__init__.py": "", "tests/test_x.py": "", "pyproject.toml": ""}
    assert sorted(flatten_src_layout(files)) == ["pkg/__init__.py", "pyproject.toml", "tests/test_x.py"]


def test_issue_text_names_tests_and_messages_only() -> None:
    import random

    text = issue_text("demo", {"tests/test_a.py::test_parse_dates": "AssertionError: assert 1 == 2"}, random.Random(0))
    assert "parse dates" in text and "assert 1 == 2" in text and "tests/test_a.py::test_parse_dates" in text
    again = issue_text("demo", {"t.py::test_x": "assert <Obj at 0x7f3091759fd0> == 1"}, random.Random(0))
    assert "0x..." in again and "7f30" not in again


# --- end to end on a tiny project ---------------------------------------------------------

TINY = {
    "calc/__init__.py": textwrap.dedent("""
        def add(a, b):
            return a + b


        def is_even(n):
            return n % 2 == 0


        def clamp(x, lo, hi):
            if x < lo:
                return lo
            return min(x, hi)


        def unused(x):
            return x * 3
    """).lstrip(),
    "tests/test_parity.py": textwrap.dedent("""
        from calc import is_even


        def test_even():
            assert is_even(4)


        def test_odd():
            assert not is_even(3)
    """).lstrip(),
    "tests/test_arith.py": textwrap.dedent("""
        from calc import add, clamp


        def test_add():
            assert add(2, 3) == 5


        def test_clamp():
            assert clamp(5, 0, 10) == 5
            assert clamp(-1, 0, 10) == 0
            assert clamp(11, 0, 10) == 10
    """).lstrip(),
    "README.md": "tiny\n",
}


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    for rel, content in TINY.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return tmp_path


def test_load_project_skips_vcs(tiny_project: Path) -> None:
    assert sorted(load_project(tiny_project)) == sorted(TINY)


def test_synthesize_classifies_fail_to_pass_and_pass_to_pass(tiny_project: Path) -> None:
    files = load_project(tiny_project)
    cfg = SynthConfig(operators=["comparison", "change_return"], max_per_operator=10, sandbox="none", name="tiny")
    result = synthesize(files, cfg)

    by_mutation = {t.metadata["mutation"]["description"]: t for t in result.tasks}
    parity = by_mutation["`==` -> `!=`"]
    check_task(parity)
    assert parity.verifier["fail_to_pass"] == ["tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"]
    assert parity.verifier["pass_to_pass"] == ["tests/test_arith.py::test_add", "tests/test_arith.py::test_clamp"]
    # the failing tests' file is hidden; the other test file stays visible
    assert set(parity.verifier["hidden_tests"]) == {"tests/test_parity.py"}
    assert "tests/test_parity.py" not in parity.setup["files"] and "tests/test_arith.py" in parity.setup["files"]
    assert "n % 2 != 0" in parity.setup["files"]["calc/__init__.py"]
    assert parity.solution == {"files": {"calc/__init__.py": TINY["calc/__init__.py"]}}
    assert parity.metadata["source"] == "synth" and parity.metadata["operator"] == "comparison"
    assert "!=" not in parity.prompt and "calc/__init__.py" not in parity.prompt and "test_even" in parity.prompt

    stats = result.stats
    # `x < lo` -> `x <= lo` is equivalent on these tests; `unused` is never run by any test
    assert stats["comparison"].tried == 2 and stats["comparison"].kept == 1 and stats["comparison"].survived == 1
    assert stats["change_return"].uncovered == 1
    assert stats["change_return"].kept == 4  # the returns of add, is_even and both of clamp
    assert sum(s.tried for s in stats.values()) == sum(
        s.kept + s.survived + s.uncovered + s.broken + s.timeout for s in stats.values()
    )
    assert "| comparison" in yield_table(stats) and "| total" in yield_table(stats)

    assert check_task_tests(parity) == []


def test_candidate_order_is_seeded_round_robin_and_capped() -> None:
    sites = {
        op: [mutations.Site("m.py", op, i, i + 1, i + 1, "") for i in range(6)] for op in ("boolean", "comparison")
    }
    cfg = SynthConfig(operators=["comparison", "boolean"], max_per_operator=4, seed=7)
    order = candidate_order(sites, cfg)
    assert order == candidate_order(sites, cfg)
    assert [s.operator for s in order] == ["comparison", "boolean"] * 4
    assert order != candidate_order(sites, SynthConfig(operators=["comparison", "boolean"], max_per_operator=4, seed=8))


def test_max_tasks_stops_synthesis(tiny_project: Path) -> None:
    cfg = SynthConfig(operators=["change_return"], max_tasks=1, sandbox="none", name="tiny")
    result = synthesize(load_project(tiny_project), cfg)
    assert len(result.tasks) == 1 and result.stats["change_return"].kept == 1


def test_broken_baseline_is_reported(tiny_project: Path) -> None:
    files = {**load_project(tiny_project), "tests/test_broken.py": "import nonexistent_module_xyz\n"}
    with pytest.raises(RuntimeError, match="baseline test run of tiny is not usable"):
        synthesize(files, SynthConfig(sandbox="none", name="tiny"))


def test_synthesize_in_the_local_sandbox(tiny_project: Path) -> None:
    require_bwrap()  # a skip outside CI without bubblewrap; a failure in CI
    cfg = SynthConfig(operators=["comparison"], max_per_operator=5, sandbox="local", name="tiny")
    result = synthesize(load_project(tiny_project), cfg)
    assert [t.verifier["fail_to_pass"] for t in result.tasks] == [
        ["tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"]
    ]


def test_cli_writes_tasks_and_prints_the_yield_table(
    tiny_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentgym.cli import main
    from agentgym.tasks import TaskSet

    out = tmp_path / "tiny.jsonl"
    assert (
        main(
            [
                "tasks",
                "synth",
                str(tiny_project),
                "--sandbox",
                "none",
                "--operators",
                "comparison",
                "--out",
                str(out),
                "--name",
                "tiny",
            ]
        )
        == 0
    )
    tasks = TaskSet.from_jsonl(out)
    assert [t.verifier["fail_to_pass"] for t in tasks] == [
        ["tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"]
    ]
    printed = capsys.readouterr().out
    assert "1 tasks written" in printed and "| comparison |     2 |    1 |   50% |" in printed


def test_tests_whose_ids_change_with_the_hash_seed_are_left_out(tiny_project: Path) -> None:
    # ids such as "beta-expected0" number the list params by set order, which the hash seed decides
    (tiny_project / "tests" / "test_sets.py").write_text(
        textwrap.dedent("""
        import pytest

        from calc import is_even


        NAMES = {"alpha", "beta", "gamma", "delta", "omega", "sigma"}


        @pytest.mark.parametrize("name, expected", [(s, [len(s)]) for s in NAMES])
        def test_lengths(name, expected):
            assert is_even(len(name)) == (expected[0] % 2 == 0)
    """).lstrip()
    )
    cfg = SynthConfig(operators=["comparison"], max_per_operator=5, sandbox="none", name="tiny")
    result = synthesize(load_project(tiny_project), cfg)
    (task,) = result.tasks
    assert {"tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"} <= set(task.verifier["fail_to_pass"])
    from_sets = {t for t in task.verifier["fail_to_pass"] + task.verifier["pass_to_pass"] if "test_sets" in t}
    with LocalSandbox(tiny_project, isolation="none") as box:
        runner = PytestRunner(box, [sys.executable, "-m", "pytest"])
        one, two = (set(runner.run(collect_only=True, hash_seed=seed).collected) for seed in (1, 2))
    assert one != two and from_sets <= one & two


MORE = textwrap.dedent("""
    import pytest

    from calc import add


    def test_wrong():
        assert add(1, 1) == 3, "one and one"


    @pytest.mark.skip(reason="not today")
    def test_skipped():
        pass


    @pytest.mark.xfail(reason="known")
    def test_known():
        assert add(1, 1) == 3
""").lstrip()


@pytest.mark.parametrize("kind", ["none", "local", pytest.param("docker", marks=pytest.mark.docker)])
def test_the_runner_reports_the_same_run_through_any_sandbox(kind: SandboxKind) -> None:
    if kind == "local":
        require_bwrap()
    if kind == "docker":
        require_docker()
    box, python = open_sandbox(kind, {**TINY, "tests/test_more.py": MORE}, suite_limits(60))
    with box:
        runner = PytestRunner(box, [*python, "-m", "pytest"])
        run = runner.run(trace=["calc/__init__.py"], timeout=60)
        picked = runner.run(select=["tests/test_parity.py::test_odd", "tests/test_more.py::test_wrong"], timeout=60)
        collected = runner.run(collect_only=True, timeout=60)
    assert run.passed == {
        "tests/test_arith.py::test_add",
        "tests/test_arith.py::test_clamp",
        "tests/test_parity.py::test_even",
        "tests/test_parity.py::test_odd",
    }
    assert {t: run.outcome(t) for t in run.not_passed} == {
        "tests/test_more.py::test_wrong": "failed",
        "tests/test_more.py::test_skipped": "skipped",
        "tests/test_more.py::test_known": "xfailed",
    }
    assert "one and one" in run.tests["tests/test_more.py::test_wrong"]["message"]
    coverage = run.coverage["calc/__init__.py"]
    assert coverage[1] == {None}  # `def add` runs at import, outside any test
    assert coverage[6] == {"tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"}
    assert 15 in coverage and 16 not in coverage  # `unused` is defined, never called
    assert {t: picked.outcome(t) for t in picked.tests} == {
        "tests/test_parity.py::test_odd": "passed",
        "tests/test_more.py::test_wrong": "failed",
    }
    assert len(collected.collected) == 7 and collected.tests == {}


def test_an_unknown_sandbox_kind_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown sandbox kind 'podman': use one of local, docker, none"):
        open_sandbox("podman", TINY)  # type: ignore[arg-type]
