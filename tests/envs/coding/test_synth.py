"""Mutation operators on hand-written snippets, and task synthesis end to end on a tiny project."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from agentgym.envs.coding import CodeRepairEnv, mutations
from agentgym.envs.coding.repo import check_task
from agentgym.envs.coding.synth import (
    PytestRunner,
    SandboxKind,
    SynthConfig,
    SynthError,
    candidate_order,
    check_task_tests,
    declared_requirements,
    flatten_src_layout,
    install_requirements,
    issue_text,
    load_project,
    open_sandbox,
    read_pytest_config,
    suite_files,
    suite_limits,
    synthesize,
    with_package_metadata,
    yield_table,
)
from agentgym.sandboxes import LocalSandbox
from agentgym.tasks import TaskSet
from agentgym.testing import require_bwrap, require_docker
from agentgym.validate import validate


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
        s.kept + s.survived + s.uncovered + s.broken + s.timeout + s.rejected for s in stats.values()
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


def test_a_test_file_that_fails_to_collect_is_left_out(tiny_project: Path) -> None:
    files = {**load_project(tiny_project), "tests/test_broken.py": "import nonexistent_module_xyz\n"}
    logged: list[str] = []
    cfg = SynthConfig(operators=["comparison"], max_per_operator=5, sandbox="none", name="tiny")
    result = synthesize(files, cfg, log=logged.append)
    assert [t.verifier["fail_to_pass"] for t in result.tasks] == [
        ["tests/test_parity.py::test_even", "tests/test_parity.py::test_odd"]
    ]
    assert (
        "baseline: leaving out 1 test file(s) that fail to collect (no module named nonexistent_module_xyz): "
        "tests/test_broken.py" in logged
    )
    assert "tests/test_broken.py" in result.tasks[0].setup["files"]  # still in the task, never graded


def test_broken_baseline_is_reported(tiny_project: Path) -> None:
    files = {**load_project(tiny_project), "tests/conftest.py": "import nonexistent_module_xyz\n"}
    with pytest.raises(SynthError, match=r"^missing-dependency: no module named nonexistent_module_xyz"):
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


# --- the variety of real projects: tests/fixtures/synth_projects -----------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "synth_projects"


def fixture_files(name: str) -> dict[str, str]:
    return load_project(FIXTURES / name)


def test_the_pytest_configuration_is_read_from_the_file_pytest_picks() -> None:
    config = read_pytest_config(fixture_files("plugin_config"))
    assert config.source == "pyproject.toml [tool.pytest.ini_options]"
    assert config.testpaths == ["tests"]
    assert sorted(config.not_applied) == ["addopts", "filterwarnings", "markers", "minversion", "required_plugins"]
    assert "--cov=shapes" in config.not_applied["addopts"] and "addopts = '--cov=shapes" in config.describe()
    assert read_pytest_config(fixture_files("src_layout")).source == "setup.cfg [tool:pytest]"
    assert read_pytest_config(fixture_files("unittest_only")).source is None
    # pytest's own order: pytest.ini, pyproject.toml (with a pytest table), tox.ini [pytest], setup.cfg [tool:pytest]
    both = {"tox.ini": "[pytest]\naddopts = -x\n", "setup.cfg": "[tool:pytest]\naddopts = --cov\n"}
    assert read_pytest_config(both).values == {"addopts": "-x"}
    assert read_pytest_config({**both, "pytest.ini": "[pytest]\ntestpaths = t\n"}).testpaths == ["t"]
    assert read_pytest_config({**both, "pyproject.toml": "[project]\nname = 'x'\n"}).source == "tox.ini [pytest]"
    assert read_pytest_config({"tox.ini": "[tox]\nenvlist = py3\n"}).source is None


def test_suite_files_follow_testpaths_python_files_norecursedirs_and_unittest_names() -> None:
    files = {
        "pkg/__init__.py": "",
        "tests/__init__.py": "",
        "tests/conftest.py": "",
        "tests/test_a.py": "",
        "tests/b_test.py": "",
        "tests/testlegacy.py": "import unittest\n",
        "tests/testhelpers.py": "x = 1\n",  # not test_*.py and no unittest: a helper
        "tests/data/test_fixture.py": "",
        "other/test_elsewhere.py": "",
    }
    config = read_pytest_config(files)
    assert suite_files(files, config) == [
        "other/test_elsewhere.py",
        "tests/b_test.py",
        "tests/data/test_fixture.py",
        "tests/test_a.py",
        "tests/testlegacy.py",
    ]
    files["pytest.ini"] = "[pytest]\ntestpaths = tests\nnorecursedirs = data\npython_files = test_*.py\n"
    assert suite_files(files, read_pytest_config(files)) == ["tests/test_a.py", "tests/testlegacy.py"]


def test_plain_pytest_cannot_run_the_plugin_config_fixture_but_synth_can() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        check=False,
        cwd=FIXTURES / "plugin_config",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert done.returncode != 0 and "tests passed" not in done.stdout  # minversion, required_plugins, --cov ...
    logged: list[str] = []
    cfg = SynthConfig(operators=["boolean", "change_return"], max_per_operator=4, sandbox="none", name="shapes")
    result = synthesize(fixture_files("plugin_config"), cfg, log=logged.append)
    assert (
        result.baseline_passed == 4
    )  # test_legacy's DeprecationWarning is not an error: filterwarnings is not applied
    assert result.tasks and all(t.metadata["mutation"]["path"] == "shapes/__init__.py" for t in result.tasks)
    assert any(line.startswith("pyproject.toml [tool.pytest.ini_options]: not applied") for line in logged)
    assert result.deps is None  # the project declares no dependencies


@pytest.mark.parametrize(
    ("name", "module", "node"),
    [
        ("plugin_config", "shapes/__init__.py", "tests/test_shapes.py::test_rectangle"),
        ("unittest_only", "textkit/__init__.py", "tests/testwords.py::ShoutTest::test_shout"),
        ("src_layout", "mathx/__init__.py", "tests/test_mathx.py::test_clamp"),
        ("installed_metadata", "verpkg/__init__.py", "tests/test_version.py::test_bump"),
    ],
)
def test_tasks_from_each_kind_of_project_pass_the_coding_grader(name: str, module: str, node: str) -> None:
    require_bwrap()  # a skip outside CI without bubblewrap; a failure in CI
    from agentgym.envs.coding import CodeRepairEnv
    from agentgym.policies import make_policy
    from agentgym.rollout import run_episode
    from agentgym.tasks import TaskSet

    cfg = SynthConfig(max_tasks=2, max_per_operator=3, sandbox="local", name=name)
    result = synthesize(fixture_files(name), cfg)
    assert len(result.tasks) == 2
    assert {t.metadata["mutation"]["path"] for t in result.tasks} == {module}
    ids = {n for t in result.tasks for n in t.verifier["fail_to_pass"] + t.verifier["pass_to_pass"]}
    assert node in ids
    env = CodeRepairEnv(tasks=TaskSet(result.tasks), sandbox="local", grade_timeout=60)
    try:
        for task in result.tasks:
            assert run_episode(env, make_policy("oracle"), task_id=task.id).outcome_reward == 1.0, task.id
            assert run_episode(env, make_policy("noop"), task_id=task.id).outcome_reward == 0.0, task.id
    finally:
        env.close()


def test_package_metadata_is_added_as_an_editable_install_leaves_it() -> None:
    files = with_package_metadata(fixture_files("installed_metadata"))
    assert files["verpkg.egg-info/PKG-INFO"] == "Metadata-Version: 2.1\nName: verpkg\nVersion: 2.5.1\n"
    sdist = {"PKG-INFO": "Metadata-Version: 2.1\nName: my-pkg\nVersion: 1.0\n", "my_pkg/__init__.py": ""}
    assert with_package_metadata(sdist)["my_pkg.egg-info/PKG-INFO"] == sdist["PKG-INFO"]
    assert with_package_metadata({"x.dist-info/METADATA": "", "a.py": ""}) == {"x.dist-info/METADATA": "", "a.py": ""}
    assert with_package_metadata({"a.py": ""}) == {"a.py": ""}  # no name: nothing to add
    result = synthesize(fixture_files("installed_metadata"), SynthConfig(max_tasks=1, sandbox="none", name="verpkg"))
    assert result.baseline_passed == 2 and "verpkg.egg-info/PKG-INFO" in result.tasks[0].setup["files"]


def test_declared_requirements_of_the_with_deps_fixture() -> None:
    files = fixture_files("with_deps")
    reqs = declared_requirements(files)
    assert reqs.install == ["rangehelper>=1.0"]
    assert reqs.skipped == ["pytest-mock", "coverage[toml]"]  # pytest, its plugins and tools are never installed
    # requirements.txt counts as runtime requirements when the project declares none elsewhere
    assert reqs.sources == ["requirements.txt", "pyproject.toml optional-dependencies tests"]
    # without test extras: the test requirement file
    no_extras = {**files, "pyproject.toml": '[project]\nname = "ranges"\n'}
    reqs = declared_requirements(no_extras)
    assert (reqs.install, reqs.skipped) == (["rangehelper>=1.0"], ["pytest>=7"])
    assert reqs.sources == ["requirements.txt", "requirements/test.txt"]
    # then tox.ini's deps (factor conditions dropped), then the dev extra; `ranges[tests]` pulls in that extra
    tox_only = {p: c for p, c in no_extras.items() if not p.startswith("requirements")}
    assert declared_requirements(tox_only).skipped == ["pytest-timeout"]
    dev = {
        "pyproject.toml": files["pyproject.toml"]
        .replace("tests = [", "other = [")
        .replace("ranges[tests]", "ranges[other]")
    }
    reqs = declared_requirements(dev)
    assert (reqs.install, reqs.skipped) == (["rangehelper>=1.0"], ["mypy", "pytest-mock", "coverage[toml]"])
    assert reqs.sources == [
        "pyproject.toml optional-dependencies dev",
        "pyproject.toml optional-dependencies dev -> [other]",
    ]
    versions = {f"requirements-tests3{v}.{ext}": "" for v in (6, 9) for ext in ("txt", "in")}
    versions["requirements-tests39.in"] = "hypothesis\n"
    assert declared_requirements({**versions, "requirements-develop.txt": "pylint\n"}).install == ["hypothesis"]
    assert declared_requirements({"tests/requirements.txt": "pretend\npytest\n"}).install == ["pretend"]


def test_declared_requirements_from_setup_py_setup_cfg_and_dependency_groups() -> None:
    setup_py = textwrap.dedent("""
        from setuptools import setup

        TESTS = ["hypothesis>=6", "pytest-cov"]
        setup(
            name="demo",
            install_requires=["attrs"],
            extras_require={"tests": TESTS, "docs": ["sphinx"]},
            tests_require=["freezegun; python_version >= '3'"],
            version=open("VERSION").read(),
        )
    """)
    reqs = declared_requirements({"setup.py": setup_py})
    assert reqs.install == ["attrs", "freezegun; python_version >= '3'", "hypothesis>=6"]
    assert reqs.skipped == ["pytest-cov"]
    setup_cfg = (
        "[metadata]\nname = demo\n[options]\ninstall_requires =\n    six\n"
        "[options.extras_require]\ntesting =\n    pretend\n    demo[extra]\nextra = jaraco.itertools\n"
    )
    assert declared_requirements({"setup.cfg": setup_cfg}).install == ["six", "pretend", "jaraco.itertools"]
    groups = '[dependency-groups]\ntest = ["big-O", {include-group = "typing"}]\ntyping = ["typing-extensions"]\n'
    assert declared_requirements({"pyproject.toml": groups}).install == ["big-O", "typing-extensions"]
    assert declared_requirements({"setup.py": "import setuptools\nsetuptools.setup(**kw)\n"}).install == []
    continued = (
        "[options.extras_require]\ntesting =\n    pytest-mypy; \\\n    python_implementation != 'PyPy'\n    big-O\n"
    )
    assert declared_requirements({"setup.cfg": continued}).install == ["big-O"]


def make_wheel(folder: Path, name: str, modules: dict[str, str]) -> Path:
    """A minimal pure-Python wheel (pip installs it from ``--find-links`` without a network)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        for rel, text in modules.items():
            z.writestr(rel, text)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


RANGEHELPER = "def ranges_from(text):\n    return [tuple(int(x) for x in p.split('-')) for p in text.split(',')]\n"


def test_dependencies_install_offline_once_then_come_from_the_cache(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "rangehelper", {"rangehelper/__init__.py": RANGEHELPER})
    # a dependency that ships its own copy of pytest and of the project: both are removed
    make_wheel(wheels, "shadowing", {"pytest.py": "", "_pytest/__init__.py": "", "ranges/__init__.py": "", "sh.py": ""})
    # two distributions sharing the namespace package `ns`: both modules must survive the retry after a failure
    make_wheel(wheels, "ns.one", {"ns/one.py": ""})
    make_wheel(wheels, "ns.two", {"ns/two.py": ""})
    pip_args = ["--no-index", "--find-links", str(wheels)]
    first = install_requirements(
        ["rangehelper>=1.0", "shadowing", "ns.one", "no-such-package-xyz", "ns.two"],
        tmp_path / "cache",
        project="ranges",
        top_level=["ranges"],
        pip_args=pip_args,
    )
    assert not first.cached and first.failed == ["no-such-package-xyz"]
    assert first.installed == ["rangehelper>=1.0", "shadowing", "ns.one", "ns.two"]
    assert (first.path / "ns" / "one.py").exists() and (first.path / "ns" / "two.py").exists()
    assert (first.path / "rangehelper" / "__init__.py").read_text() == RANGEHELPER
    assert (first.path / "sh.py").exists()
    assert not any((first.path / p).exists() for p in ("pytest.py", "_pytest", "ranges"))
    assert "could not install: no-such-package-xyz" in first.describe()
    again = install_requirements(
        ["ns.two", "shadowing", "rangehelper>=1.0", "no-such-package-xyz", "ns.one"],
        tmp_path / "cache",
        project="ranges",
        top_level=["ranges"],
        pip_args=pip_args,
    )
    assert again.cached and again.path == first.path and again.installed == first.installed
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [first.path.name]


@pytest.mark.parametrize("kind", ["none", "local", pytest.param("docker", marks=pytest.mark.docker)])
def test_a_project_with_test_dependencies_runs_with_them_installed(tmp_path: Path, kind: SandboxKind) -> None:
    if kind == "local":
        require_bwrap()
    if kind == "docker":
        require_docker()
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "rangehelper", {"rangehelper/__init__.py": RANGEHELPER})
    files = fixture_files("with_deps")
    with pytest.raises(SynthError, match=r"^missing-dependency: no module named rangehelper \(in tests/test_ranges"):
        synthesize(files, SynthConfig(sandbox=kind, name="ranges", install_deps=False))
    cfg = SynthConfig(
        operators=["comparison", "invert_if"],
        max_per_operator=3,
        sandbox=kind,
        name="ranges",
        deps_cache=str(tmp_path / "cache"),
        pip_args=["--no-index", "--find-links", str(wheels)],
        grade=False,
    )
    result = synthesize(files, cfg)
    assert result.deps is not None and result.deps.installed == ["rangehelper>=1.0"]
    assert result.baseline_passed == 2 and result.tasks
    task = result.tasks[0]
    assert task.metadata["test_requirements"] == ["rangehelper>=1.0"]
    assert check_task_tests(task, kind, deps=result.deps.path) == []
    if kind != "none":
        # the coding grader's sandboxes get the same installed folder: graded tasks are kept, and validate
        cfg.grade, cfg.max_tasks = True, 1
        graded = synthesize(files, cfg)
        assert len(graded.tasks) == 1 and graded.tasks[0].metadata["test_requirements"] == ["rangehelper>=1.0"]
        report = validate(
            lambda: CodeRepairEnv(tasks=TaskSet(graded.tasks), sandbox=kind), progress=False, num_workers=1
        )
        assert report.ok, report.summary()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"pkg/__init__.py": "X = 1\n", "README.md": "x\n"}, r"no-tests: no test files"),
        (
            {
                "fast/__init__.py": "from fast._speedups import double\n",
                "fast/_speedups.pyx": "def double(x):\n    return 2 * x\n",
                "tests/test_fast.py": "from fast import double\n\n\ndef test_double():\n    assert double(2) == 4\n",
            },
            r"compiled-extension: fast\._speedups is built from C/Cython/Rust sources",
        ),
        (
            {"pkg/__init__.py": "X = 1\n", "tests/test_x.py": "def test_x(:\n    pass\n"},
            r"collection-error: tests/test_x.py: .*SyntaxError",
        ),
        (
            {
                "pkg/__init__.py": "X = 1\n",
                "tests/test_x.py": "from pkg import X\n\n\ndef test_x():\n    assert X == 2\n",
            },
            r"baseline-failures: none of 1 tests passes; tests/test_x.py::test_x: assert 1 == 2",
        ),
        (
            {"pkg/__init__.py": "X = 1\n", "tests/test_x.py": "import pytest\n\n\ndef test_x():\n    pytest.skip()\n"},
            r"baseline-failures: none of 1 tests passes",
        ),
    ],
)
def test_an_unusable_project_says_why_in_one_category(files: dict[str, str], message: str) -> None:
    with pytest.raises(SynthError, match="^" + message):
        synthesize(files, SynthConfig(sandbox="none", name="bad"))


def test_cli_says_in_one_line_why_a_project_cannot_be_used(tmp_path: Path) -> None:
    from agentgym.cli import main

    (tmp_path / "empty" / "pkg").mkdir(parents=True)
    (tmp_path / "empty" / "pkg" / "__init__.py").write_text("X = 1\n")
    with pytest.raises(SystemExit) as stop:
        main(["tasks", "synth", str(tmp_path / "empty"), "--sandbox", "none", "--out", str(tmp_path / "t.jsonl")])
    assert stop.value.code == (
        "cannot use empty: no-tests: no test files (test_*.py, *_test.py, or unittest modules under tests/)"
    )
    assert not (tmp_path / "t.jsonl").exists()


def test_a_project_the_grader_rejects_every_time_ends_in_one_category(tiny_project: Path) -> None:
    require_bwrap()
    # a compatibility shim that compiles code at import (as six does): in the module the fix changes,
    # the grader's integrity checks flag it, so no task of this module can score 1
    files = load_project(tiny_project)
    files["calc/__init__.py"] = 'exec("SHIM = 1")\n\n' + TINY["calc/__init__.py"]
    logged: list[str] = []
    cfg = SynthConfig(operators=["change_return"], max_per_operator=10, sandbox="local", name="tiny")
    with pytest.raises(SynthError, match=r"^grader-rejects: 3 tasks in a row: the grader does not score the fix 1 "):
        synthesize(files, cfg, log=logged.append)
    assert sum(line.startswith("rejected tiny__calc__change_return-") for line in logged) == 3
    kept = synthesize(files, SynthConfig(operators=["change_return"], sandbox="local", name="tiny", grade=False))
    assert kept.tasks  # the same mutants, kept when not graded


def test_a_root_tests_py_in_pytest_style_is_part_of_the_suite() -> None:
    files = {"lib.py": "X = 1\n", "tests.py": "from lib import X\n\n\ndef test_x():\n    assert X == 1\n"}
    assert suite_files(files, read_pytest_config(files)) == ["tests.py"]


def test_rejections_that_differ_only_in_paths_and_test_ids_count_as_one_reason() -> None:
    from agentgym.envs.coding.synth.search import _first_flag

    a = "the grader does not score the fix 1 (tests/test_a.py::test_x failed)"
    b = "the grader does not score the fix 1 (tests/test_b.py::test_y[1] failed; sys.argv was replaced)"
    assert _first_flag(a) == _first_flag(b)
    c = "the grader does not score the fix 1 (the changed code wrote the Python file 'x.py' (after collection))"
    assert _first_flag(c) != _first_flag(a)
