"""The shared coding-task format: paths, what the grader takes, junit names, task checks."""

from __future__ import annotations

import pytest
from coding_helpers import CORE, calc_task

from agentgym.envs.coding.repo import (
    TaskFormatError,
    check_task,
    classify_change,
    junit_key,
    make_task,
    normalize_path,
    split_changes,
    target_tests,
    visible_test_files,
)
from agentgym.envs.coding.repo import (
    test_paths_of as paths_of_tests,
)

PRISTINE = {
    "pkg/__init__.py": "",
    "pkg/core.py": "x = 1\n",
    "solution.py": "",
    "tests/test_core.py": "",
    "setup.py": "",
}


@pytest.mark.parametrize(
    ("path", "expected"), [("a/b.py", "a/b.py"), ("./a//b.py", "a/b.py"), ("a/../b.py", "b.py"), (".", ".")]
)
def test_normalize_path(path: str, expected: str) -> None:
    assert normalize_path(path) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "absolute path '/etc/passwd' is outside the repository"),
        ("../x.py", "escapes the repository"),
        ("a/../../x.py", "escapes the repository"),
        ("", "empty path"),
    ],
)
def test_normalize_path_refuses_escapes(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_path(path)


@pytest.mark.parametrize("path", ["pkg/core.py", "pkg/new_module.py", "pkg/data.json", "solution.py"])
def test_source_changes_count(path: str) -> None:
    assert classify_change(path, PRISTINE) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("tests/test_core.py", "test file"),
        ("conftest.py", "test file"),
        ("pkg/conftest.py", "test file"),
        ("pkg/test_helpers.py", "test file"),
        ("pkg/helpers_test.py", "test file"),
        ("setup.py", "configuration"),
        ("pytest.ini", "configuration"),
        ("tox.ini", "configuration"),
        ("setup.cfg", "configuration"),
        ("pyproject.toml", "configuration"),
        ("pkg/sitecustomize.py", "configuration"),
        ("usercustomize.py", "configuration"),
        ("pkg/evil.pth", "configuration"),
        (".env", "hidden"),
        ("pkg/__pycache__/core.cpython-311.pyc", "hidden or cache"),
        ("newmodule.py", "new file outside the repository's packages"),
        ("other/__init__.py", "new file outside"),
        ("pkg/sub/mod.py", "new file outside"),
    ],
)
def test_everything_else_is_ignored(path: str, reason: str) -> None:
    assert reason in (classify_change(path, PRISTINE) or "")


def test_split_changes_keeps_only_source_and_real_changes() -> None:
    changes = split_changes(
        PRISTINE,
        {"pkg/core.py": "x = 2\n", "pkg/__init__.py": "", "conftest.py": "x", "solution.py": None, "ghost.py": None},
    )
    assert changes.applied == {"pkg/core.py": "x = 2\n", "solution.py": None}
    assert list(changes.ignored) == ["conftest.py"]


@pytest.mark.parametrize(
    ("nodeid", "key"),
    [
        ("tests/test_core.py::test_add", ("tests.test_core", "test_add")),
        ("tests/test_core.py::TestX::test_y[1-a.b]", ("tests.test_core.TestX", "test_y[1-a.b]")),
        ("test_root.py::test_z", ("test_root", "test_z")),
    ],
)
def test_junit_key_matches_pytest(nodeid: str, key: tuple[str, str]) -> None:
    assert junit_key(nodeid) == key


def test_task_helpers() -> None:
    task = calc_task()
    check_task(task)
    assert target_tests(task) == [
        "tests/test_add.py::test_add",
        "tests/test_add.py::test_add_negative",
        "tests/test_core.py::test_mul",
    ]
    assert visible_test_files(task) == ["tests/test_core.py"]
    assert "tests/test_add.py" in paths_of_tests(task)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fail_to_pass": []}, "fail_to_pass must list"),
        ({"fail_to_pass": ["tests/test_nope.py::test_x"]}, "does not name a test"),
    ],
)
def test_check_task_names_the_problem(change: dict, message: str) -> None:
    task = calc_task()
    task.verifier.update(change)
    with pytest.raises(TaskFormatError, match=message):
        check_task(task)


def test_make_task_refuses_a_solution_the_grader_would_ignore() -> None:
    with pytest.raises(TaskFormatError, match=r"solution changes 'conftest\.py'"):
        make_task(
            "t",
            "p",
            {"calc/__init__.py": "", "calc/core.py": CORE, "tests/test_a.py": "def test_a(): pass\n"},
            ["tests/test_a.py::test_a"],
            {"conftest.py": "x = 1\n"},
        )
