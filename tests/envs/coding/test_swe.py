"""SWE-style instances: import from a local git mirror, grade on both backends, export and import again."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coding_helpers import BACKENDS, calc_task, require_backend

from agentgym.envs.coding.curated import load_curated
from agentgym.envs.coding.repo import make_task, solution_files
from agentgym.envs.coding.swe import (
    SWEError,
    base_commit_of,
    find_mirror,
    iter_swe,
    load_swe,
    swe_task,
    to_swe,
    write_mirror,
)
from agentgym.tasks import Task, TaskSet
from agentgym.testing import run_cli
from agentgym.validate import validate

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

AREA_V1 = "def rect(w, h):\n    return w * h\n\n\ndef square(s):\n    return rect(s, s)\n"
AREA_BUGGY = AREA_V1 + "\n\ndef triangle(b, h):\n    return b * h\n"
AREA_FIXED = AREA_V1 + "\n\ndef triangle(b, h):\n    return b * h / 2\n"
TESTS_V1 = (
    "from shapes.area import rect, square\n\n\ndef test_rect():\n    assert rect(2, 3) == 6\n\n\n"
    "def test_square():\n    assert square(3) == 9\n"
)
TESTS_FIXED = TESTS_V1.replace("rect, square", "rect, square, triangle") + (
    "\n\ndef test_triangle():\n    assert triangle(4, 3) == 6\n"
)
TESTS_NEW = "from shapes import area\n\n\ndef test_triangle_half():\n    assert area.triangle(3, 2) == 3\n"
ISSUE = "`shapes.area.triangle(4, 3)` returns 12; a triangle's area is half the rectangle's."
F2P = ["tests/test_area.py::test_triangle", "tests/test_more.py::test_triangle_half"]
P2P = ["tests/test_area.py::test_rect", "tests/test_area.py::test_square"]


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=input, capture_output=True, env=GIT_ENV, check=True, timeout=60
    )
    return done.stdout.decode()


def commit(repo: Path, files: dict[str, str | bytes], message: str) -> str:
    for path, content in files.items():
        dest = repo / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


class Upstream:
    """A small project with a history: the bug lands in ``base``, ``fix`` fixes it and adds tests."""

    def __init__(self, root: Path):
        self.work = root / "work"
        self.work.mkdir()
        git(self.work, "init", "-q", "-b", "main")
        commit(
            self.work,
            {"shapes/__init__.py": "", "shapes/area.py": AREA_V1, "tests/test_area.py": TESTS_V1, "README.md": "x\n"},
            "rect and square",
        )
        self.base = commit(self.work, {"shapes/area.py": AREA_BUGGY}, "add triangle")
        self.fix = commit(
            self.work,
            {"shapes/area.py": AREA_FIXED, "tests/test_area.py": TESTS_FIXED, "tests/test_more.py": TESTS_NEW},
            "fix triangle",
        )
        self.mirrors = root / "mirrors"
        self.mirrors.mkdir()
        subprocess.run(
            ["git", "clone", "-q", "--mirror", str(self.work), str(self.mirrors / "acme__shapes")],
            env=GIT_ENV,
            check=True,
            capture_output=True,
        )

    def diff(self, *paths: str, binary: bool = False) -> str:
        return git(self.work, "diff", *(["--binary"] if binary else []), self.base, self.fix, "--", *paths)

    def row(self, **changes: Any) -> dict[str, Any]:
        row = {
            "instance_id": "acme__shapes-1",
            "repo": "acme/shapes",
            "base_commit": self.base,
            "patch": self.diff("shapes"),
            "test_patch": self.diff("tests"),
            "problem_statement": ISSUE,
            "FAIL_TO_PASS": json.dumps(F2P),
            "PASS_TO_PASS": json.dumps(P2P),
            "version": "1.0",
            "hints_text": "",
        }
        row.update(changes)
        return row

    def jsonl(self, path: Path, *rows: dict[str, Any]) -> Path:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows or [self.row()]))
        return path


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream(tmp_path)


def test_instance_becomes_a_coding_task_with_hidden_tests(upstream: Upstream, tmp_path: Path) -> None:
    task = load_swe(upstream.jsonl(tmp_path / "swe.jsonl"), upstream.mirrors)["acme__shapes-1"]
    files = task.setup["files"]
    assert files == {
        "shapes/__init__.py": "",
        "shapes/area.py": AREA_BUGGY,
        "tests/test_area.py": TESTS_V1,
        "README.md": "x\n",
    }
    assert task.verifier["hidden_tests"] == {"tests/test_area.py": TESTS_FIXED, "tests/test_more.py": TESTS_NEW}
    assert task.verifier["fail_to_pass"] == F2P
    assert task.verifier["pass_to_pass"] == P2P
    assert task.solution == {"files": {"shapes/area.py": AREA_FIXED}}
    assert task.prompt == ISSUE
    assert task.metadata == {
        "source": "swe",
        "repo": "acme/shapes",
        "base_commit": upstream.base,
        "instance_id": "acme__shapes-1",
        "version": "1.0",
        "hints_text": "",
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_gold_patch_scores_one_empty_patch_zero(upstream: Upstream, tmp_path: Path, backend: str) -> None:
    require_backend(backend)
    tasks = load_swe(upstream.jsonl(tmp_path / "swe.jsonl"), upstream.mirrors)
    report = validate(
        "agentgym/CodeRepair-v0", env_kwargs={"tasks": tasks, "sandbox": backend}, num_workers=1, progress=False
    )
    assert len(report.checks) == 1
    assert report.ok, report.summary()


def test_node_ids_as_json_strings_or_lists_give_the_same_task(upstream: Upstream) -> None:
    as_strings = swe_task(upstream.row(), upstream.mirrors)
    as_lists = swe_task(
        upstream.row(FAIL_TO_PASS=F2P, PASS_TO_PASS=P2P, patch=upstream.diff("shapes").rstrip("\n")), upstream.mirrors
    )
    empty_p2p = swe_task(upstream.row(PASS_TO_PASS="[]"), upstream.mirrors)
    assert as_strings == as_lists
    assert as_strings.verifier["fail_to_pass"] == F2P
    assert empty_p2p.verifier["pass_to_pass"] == []


def test_mirrors_by_mapping_by_name_or_missing(upstream: Upstream, tmp_path: Path) -> None:
    bare = upstream.mirrors / "acme__shapes"
    assert swe_task(upstream.row(), {"acme/shapes": bare}).setup["files"]["shapes/area.py"] == AREA_BUGGY
    by_name = tmp_path / "by-name"
    by_name.mkdir()
    subprocess.run(["git", "clone", "-q", str(upstream.work), str(by_name / "shapes")], env=GIT_ENV, check=True)
    assert find_mirror("acme/shapes", by_name) == by_name / "shapes" / ".git"
    assert swe_task(upstream.row(), by_name).solution == {"files": {"shapes/area.py": AREA_FIXED}}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SWEError, match=r"looked for .*empty/acme__shapes or .*empty/shapes; clone it there"):
        swe_task(upstream.row(), empty)
    with pytest.raises(SWEError, match="no mirror given for repository 'acme/shapes'"):
        swe_task(upstream.row(), {"other/repo": bare})
    (empty / "shapes").mkdir()
    with pytest.raises(SWEError, match="is not a git repository"):
        swe_task(upstream.row(), empty)


def _binary_row(up: Upstream) -> dict[str, Any]:
    extra = commit(up.work, {"shapes/logo.png": b"\x89PNG\x00\x01", "shapes/area.py": AREA_FIXED}, "logo")
    patch = git(up.work, "diff", "--binary", up.base, extra, "--", "shapes")
    return up.row(patch=patch)


def _deleting_row(up: Upstream) -> dict[str, Any]:
    git(up.work, "rm", "-q", "tests/test_area.py")
    gone = commit(up.work, {"tests/test_more.py": TESTS_NEW}, "drop")
    return up.row(test_patch=git(up.work, "diff", up.base, gone, "--", "tests"))


ERRORS: list[tuple[Callable[[Upstream], dict[str, Any]], str]] = [
    (lambda up: up.row(base_commit="0" * 40), r"commit '0{40}' is not in the mirror .* update the mirror"),
    (
        lambda up: up.row(patch=up.diff("shapes").replace("return b * h\n", "return b + h\n")),
        r"the patch does not apply to [0-9a-f]{40}: .*shapes/area.py.*regenerate the patch against it",
    ),
    (_binary_row, "the patch changes binary files, which coding tasks cannot hold"),
    (_deleting_row, r"the test_patch deletes tests/test_area.py: deleting test files is not supported"),
    (
        lambda up: up.row(FAIL_TO_PASS='["test_triangle (tests.test_area.AreaTest)"]'),
        r"test .test_triangle \(tests.test_area.AreaTest\). is not a pytest node id of a file in the repository",
    ),
    (lambda up: up.row(FAIL_TO_PASS="[tests/x.py::t"), "FAIL_TO_PASS is a string but not JSON"),
    (lambda up: up.row(PASS_TO_PASS={"a": 1}), "PASS_TO_PASS must be a list of pytest node ids"),
    (lambda up: up.row(test_patch=up.diff("tests", "shapes")), "patch and test_patch both change shapes/area.py"),
    (lambda up: up.row(patch=up.diff("tests")), "patch and test_patch both change"),
    (lambda up: {k: v for k, v in up.row().items() if k != "base_commit"}, "the instance has no base_commit"),
]


@pytest.mark.parametrize(
    ("make_row", "message"),
    ERRORS,
    ids=[
        "unknown-commit",
        "patch-does-not-apply",
        "binary",
        "test-patch-deletes",
        "not-pytest-ids",
        "bad-json",
        "not-a-list",
        "overlap-test-patch",
        "overlap-patch",
        "missing-key",
    ],
)
def test_instances_that_cannot_be_imported_say_why(
    upstream: Upstream, make_row: Callable[[Upstream], dict[str, Any]], message: str
) -> None:
    with pytest.raises(SWEError, match=r"^acme__shapes-1: " + message):
        swe_task(make_row(upstream), upstream.mirrors)


def test_empty_test_patch_keeps_the_failing_tests_visible(upstream: Upstream) -> None:
    git(upstream.work, "checkout", "-q", upstream.base)
    with_tests = commit(upstream.work, {"tests/test_more.py": TESTS_NEW}, "test first")
    row = upstream.row(
        base_commit=with_tests,
        patch=git(upstream.work, "diff", with_tests, upstream.fix, "--", "shapes"),
        test_patch="",
        FAIL_TO_PASS=["tests/test_more.py::test_triangle_half"],
    )
    task = swe_task(row, {"acme/shapes": upstream.work})
    assert task.setup["files"]["tests/test_more.py"] == TESTS_NEW
    assert task.verifier["hidden_tests"] == {}
    assert task.solution == {"files": {"shapes/area.py": AREA_FIXED}}


def test_gold_patch_files_the_grader_ignores_are_listed(upstream: Upstream) -> None:
    extra = commit(upstream.work, {"CHANGES.md": "fixed triangle\n", "shapes/area.py": AREA_FIXED}, "changelog")
    task = swe_task(
        upstream.row(patch=git(upstream.work, "diff", upstream.base, extra, "--", ".", ":!tests")),
        {"acme/shapes": upstream.work},
    )
    assert task.solution == {"files": {"shapes/area.py": AREA_FIXED}}
    assert list(task.metadata["ignored_patch_files"]) == ["CHANGES.md"]
    only_ignored = git(upstream.work, "diff", upstream.base, extra, "--", "CHANGES.md")
    with pytest.raises(SWEError, match="the gold patch changes only files the grader ignores"):
        swe_task(upstream.row(patch=only_ignored), {"acme/shapes": upstream.work})


def test_load_stops_at_the_first_error_iter_reports_each(upstream: Upstream, tmp_path: Path) -> None:
    path = upstream.jsonl(tmp_path / "two.jsonl", upstream.row(), upstream.row(instance_id="bad", base_commit="f" * 40))
    results = dict(iter_swe(path, upstream.mirrors))
    assert isinstance(results["acme__shapes-1"], Task)
    assert isinstance(results["bad"], SWEError)
    with pytest.raises(SWEError, match=r"^bad: commit 'f{40}' is not in the mirror"):
        load_swe(path, upstream.mirrors)
    (tmp_path / "broken.jsonl").write_text("{}\nnot json\n")
    with pytest.raises(SWEError, match=r"broken.jsonl:2: not JSON"):
        load_swe(tmp_path / "broken.jsonl", upstream.mirrors)


def _same_content(original: Task, back: Task) -> None:
    base = original.setup["files"]
    assert back.setup["files"] == base
    assert back.prompt == original.prompt
    assert back.verifier["fail_to_pass"] == original.verifier["fail_to_pass"]
    assert back.verifier["pass_to_pass"] == original.verifier["pass_to_pass"]
    assert back.verifier["hidden_tests"] == {
        p: c for p, c in original.verifier["hidden_tests"].items() if base.get(p) != c
    }
    assert back.solution["files"] == {p: c for p, c in solution_files(original).items() if base.get(p) != c}


def test_curated_tasks_export_and_import_again(tmp_path: Path) -> None:
    curated = load_curated()
    rows = [to_swe(t) for t in curated]
    mirrors = {write_mirror(t, tmp_path / "mirrors") for t in curated}
    assert mirrors == {tmp_path / "mirrors" / "agentgym__curated"}
    assert {r["repo"] for r in rows} == {"agentgym/curated"}
    assert all(isinstance(r["FAIL_TO_PASS"], list) and r["patch"].startswith("diff --git a/") for r in rows)
    path = tmp_path / "curated.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    back = load_swe(path, tmp_path / "mirrors")
    assert back.ids == curated.ids
    for task in curated:
        _same_content(task, back[task.id])
        assert back[task.id].metadata["base_commit"] == base_commit_of(task.setup["files"])
        assert back[task.id].metadata["difficulty"] == task.metadata["difficulty"]
    # An imported task keeps its repository and commit; a mirror of its files alone is not that commit.
    again = to_swe(back[curated.ids[0]])
    assert (again["repo"], again["base_commit"]) == (rows[0]["repo"], rows[0]["base_commit"])
    assert "source" not in again and "ignored_patch_files" not in again


def test_diffs_of_awkward_files_apply_with_git(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/core.py": "def f():\n    return 1",  # no newline at the end
        "pkg/old.py": "X = 1\n",
        "pkg/feed.py": "A = 1\n\x0c\nB = 2\n",  # a form feed is not a line break for git
        "tests/test_core.py": "from pkg.core import f\n\n\ndef test_f():\n    assert f() in (1, 2)\n",
    }
    task = make_task(
        "awkward",
        "f must return 2",
        files,
        ["tests/test_two.py::test_two"],
        {"pkg/core.py": "def f():\n    return 2", "pkg/old.py": None, "pkg/feed.py": "A = 1\n\x0c\nB = 3\n"},
        pass_to_pass=["tests/test_core.py::test_f"],
        hidden_tests={
            "tests/test_two.py": "from pkg.core import f\n\n\ndef test_two():\n    assert f() == 2",
            "tests/__init__.py": "",
        },
        source="test",
    )
    row = to_swe(task)
    assert "--- /dev/null\n+++ b/tests/test_two.py" in row["test_patch"]
    assert "--- a/pkg/old.py\n+++ /dev/null" in row["patch"]
    assert "\\ No newline at end of file" in row["patch"]
    mirror = write_mirror(task, tmp_path)
    assert mirror == tmp_path / "agentgym__test"
    assert row["base_commit"] == base_commit_of(files)
    assert git(mirror, "rev-parse", f"refs/agentgym/{row['base_commit']}^{{tree}}").strip()
    back = swe_task(row, tmp_path)
    _same_content(task, back)
    assert back.solution["files"]["pkg/old.py"] is None


def test_export_refuses_tasks_without_files() -> None:
    with pytest.raises(SWEError, match="is not a coding task"):
        to_swe(Task("q", "what?", verifier={"answer": "x"}))


def test_imported_task_has_no_mirror_of_its_own(upstream: Upstream) -> None:
    task = swe_task(upstream.row(), upstream.mirrors)
    assert to_swe(task)["base_commit"] == upstream.base
    with pytest.raises(SWEError, match="use a mirror of acme/shapes itself"):
        write_mirror(task, upstream.mirrors)


def test_cli_import_prints_each_instance_and_writes_tasks(upstream: Upstream, tmp_path: Path) -> None:
    src = upstream.jsonl(tmp_path / "swe.jsonl", upstream.row(), upstream.row(instance_id="bad", patch="nonsense"))
    out = tmp_path / "tasks.jsonl"
    result = run_cli("tasks", "import", "swe", str(src), "--repos", str(upstream.mirrors), "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert "acme__shapes-1: ok" in result.stdout
    assert "bad: no: the patch does not apply" in result.stdout
    assert "1 instances imported, 1 not" in result.stderr
    tasks = TaskSet.from_jsonl(out)
    assert tasks.ids == ["acme__shapes-1"]
    assert tasks["acme__shapes-1"].solution == {"files": {"shapes/area.py": AREA_FIXED}}
    no_repos = run_cli("tasks", "import", "swe", str(src))
    assert no_repos.returncode == 2 and "needs --repos DIR" in no_repos.stdout


def test_cli_export_writes_instances_and_mirrors_that_import_again(tmp_path: Path) -> None:
    source = tmp_path / "calc.jsonl"
    TaskSet([calc_task()]).to_jsonl(source)
    out, repos = tmp_path / "swe.jsonl", tmp_path / "mirrors"
    result = run_cli("tasks", "export", "swe", str(source), "--out", str(out), "--repos", str(repos))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 1 instances" in result.stdout and (repos / "agentgym__test").is_dir()
    row = json.loads(out.read_text())
    assert row["instance_id"] == "calc-add" and row["FAIL_TO_PASS"] == calc_task().verifier["fail_to_pass"]
    back = tmp_path / "back.jsonl"
    again = run_cli("tasks", "import", "swe", str(out), "--repos", str(repos), "--out", str(back))
    assert again.returncode == 0, again.stdout + again.stderr
    _same_content(calc_task(), TaskSet.from_jsonl(back)["calc-add"])
