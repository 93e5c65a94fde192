"""The curated repository bug-fix tasks: format, variety, and that their tests mean what they say.

The test runs each task's tests with the host's ``python -m pytest`` in
``LocalSandbox(isolation="none")`` (a host temporary folder, no isolation: the tasks are
ours); grading them through the sandboxed grader is the coding env's own test.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agentgym.envs.coding.curated import DATA_DIR, load_curated
from agentgym.envs.coding.repo import check_task, is_test_file
from agentgym.envs.coding.synth import check_task_tests
from agentgym.tasks import TaskSet


@pytest.fixture(scope="module")
def curated() -> TaskSet:
    return load_curated()


def test_at_least_thirty_tasks_in_a_stable_order(curated: TaskSet) -> None:
    assert len(curated) >= 30
    assert curated.ids == sorted(curated.ids)
    assert load_curated().ids == curated.ids


def test_every_task_follows_the_shared_format(curated: TaskSet) -> None:
    for task in curated:
        check_task(task)
        assert task.metadata["source"] == "curated" and task.metadata["category"]
        files = task.setup["files"]
        packages = {p.split("/")[0] for p in files if p.endswith("/__init__.py") and not is_test_file(p)}
        modules = [p for p in files if p.endswith(".py") and not is_test_file(p)]
        assert len(packages) == 1 and 2 <= len(modules) <= 5, task.id
        assert any(is_test_file(p) for p in files), f"{task.id} has no visible tests"
        assert task.verifier["hidden_tests"] and task.verifier["pass_to_pass"], task.id
        assert set(task.solution["files"]) <= set(files), f"{task.id}: the fix adds files"
        assert not set(task.verifier["fail_to_pass"]) & set(task.verifier["pass_to_pass"])
        assert len(task.prompt) > 80 and "\n" in task.prompt


def test_variety_of_bug_categories(curated: TaskSet) -> None:
    assert len({t.metadata["category"] for t in curated}) >= 25


def test_both_splits_are_populated(curated: TaskSet) -> None:
    assert len(curated.split("train")) > 0 and len(curated.split("test")) > 0


def test_issue_texts_do_not_leak_hidden_test_names(curated: TaskSet) -> None:
    for task in curated:
        for nodeid in task.verifier["fail_to_pass"]:
            assert nodeid.split("::")[-1] not in task.prompt, task.id


def test_the_data_folder_is_not_a_package() -> None:
    """setup.py's find_packages must not install the task repositories as packages."""
    assert not (DATA_DIR / "__init__.py").exists()


def test_fail_to_pass_fail_at_base_and_everything_passes_with_the_fix(curated: TaskSet) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = dict(zip(curated.ids, pool.map(check_task_tests, curated), strict=True))
    broken = {tid: p for tid, p in problems.items() if p}
    assert not broken, "\n".join(f"{tid}: {p}" for tid, p in broken.items())
