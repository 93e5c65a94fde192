"""``agentgym tasks synth --projects FILE --out-dir DIR``: many projects, resumable, split by project."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from agentgym.cli import main
from agentgym.envs.coding.synth import SynthConfig, synthesize
from agentgym.envs.coding.synth import batch as batch_module
from agentgym.envs.coding.synth.batch import parse_projects, project_split, run_batch
from agentgym.tasks import TaskSet

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "synth_projects"
GOOD = ["unittest_only", "src_layout", "plugin_config"]
FAST = ["--sandbox", "none", "--no-deps", "--no-grade", "--max-per-operator", "1"]
FAST += ["--operators", "change_return,comparison,off_by_one"]


def _fraction_that_splits(names: list[str]) -> float:
    """A test fraction that puts some of ``names`` in each split (the hash is stable, so this is too)."""
    for f in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        if {project_split(n, f) for n in names} == {"train", "test"}:
            return f
    raise AssertionError(f"no fraction splits {names}")


def _status(out: Path, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "status" / f"{name}.json").read_text())
    return result


def test_projects_file_lines() -> None:
    specs = parse_projects("# a comment\n\nattrs==23.1.0  # pypi\n./local/proj\n/abs/other\n", Path("/base"))
    assert [(s.name, s.base, s.version, s.pypi, s.path) for s in specs] == [
        ("attrs-23.1.0", "attrs", "23.1.0", "attrs==23.1.0", None),
        ("proj", "proj", "", None, "/base/local/proj"),
        ("other", "other", "", None, "/abs/other"),
    ]
    with pytest.raises(ValueError, match="project 'proj' is listed twice"):
        parse_projects("a/proj\nb/proj\n")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "batch mode needs both --projects FILE and --out-dir DIR"),
        (["--out-dir", "o", "--pypi", "attrs==23.1.0"], "--projects lists the projects: give no project folder"),
        (["--out-dir", "o", "--workers", "0"], "--workers must be at least 1, got 0"),
    ],
)
def test_batch_flags_are_checked(tmp_path: Path, extra: list[str], message: str) -> None:
    projects = tmp_path / "projects.txt"
    projects.write_text("attrs==23.1.0\n")
    with pytest.raises(SystemExit) as stop:
        main(["tasks", "synth", "--projects", str(projects), *extra])
    assert str(stop.value.code).startswith(message)


def test_batch_writes_each_project_survives_a_broken_one_resumes_and_splits_by_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    projects = tmp_path / "projects.txt"
    lines = [f"{FIXTURES / n}" for n in GOOD]
    projects.write_text("# fixture projects\n" + "\n".join(lines[:2]) + "\nmissing  # not there\n" + lines[2] + "\n")
    out = tmp_path / "out"
    fraction = _fraction_that_splits(GOOD)
    argv = ["tasks", "synth", "--projects", str(projects), "--out-dir", str(out), "--workers", "2", *FAST]
    argv += ["--test-fraction", str(fraction)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "3 of 4 projects used" in printed

    # every project has its own tasks and status; the missing folder has a reason and stopped nothing
    for name in GOOD:
        status = _status(out, name)
        assert status["status"] == "done" and status["kept"] >= 1 and status["tried"] >= status["kept"]
        assert status["baseline_passed"] >= 1 and status["seconds"] > 0
        assert sum(c["tried"] for c in status["operators"].values()) == status["tried"]
        assert len(TaskSet.from_jsonl(out / "tasks" / f"{name}.jsonl")) == status["kept"]
    missing = _status(out, "missing")
    assert missing["status"] == "failed" and missing["category"] == "no-tests"
    assert missing["reason"].startswith("cannot use missing: no-tests: ") and "is not a directory" in missing["reason"]
    assert not (out / "tasks" / "missing.jsonl").exists()

    # all tasks, sorted by id, each labelled with its project, and no project in both splits
    tasks = TaskSet.from_jsonl(out / "tasks.jsonl")
    assert tasks.ids == sorted(tasks.ids)
    assert len(tasks) == sum(_status(out, n)["kept"] for n in GOOD)
    splits: dict[str, set[str | None]] = {}
    for t in tasks:
        splits.setdefault(t.metadata["project"], set()).add(t.split)
    assert splits == {n: {project_split(n, fraction)} for n in GOOD}
    assert {s for (s,) in splits.values()} == {"train", "test"}
    assert {tasks.split_of(t) for t in tasks.split("test")} == {"test"}

    # the report: one row per project in file order, operators summed over projects
    report = json.loads((out / "yield.json").read_text())
    rows = {r["project"]: r for r in report["projects"]}
    assert [r["project"] for r in report["projects"]] == [*GOOD[:2], "missing", GOOD[2]]
    assert rows["missing"]["reason"] == missing["reason"] and rows["missing"]["kept"] == 0
    assert report["total"]["tried"] == sum(_status(out, n)["tried"] for n in GOOD)
    assert report["total"]["kept"] == len(tasks) == report["tasks"]
    assert set(report["operators"]) == {"change_return", "comparison", "off_by_one"}
    assert sum(o["kept"] for o in report["operators"].values()) == len(tasks)
    md = (out / "yield.md").read_text()
    assert "| project " in md and "| baseline passed |" in md and "| operator " in md
    for name in [*GOOD, "missing"]:
        assert f"| {name} " in md
    assert re.search(rf"\| total +\| +{report['total']['tried']} \| +{len(tasks)} \|", md)

    # a rerun skips every finished project (done or failed); --retry-failed reruns only the failed one
    before = {n: _status(out, n)["finished_at"] for n in [*GOOD, "missing"]}
    (out / "yield.md").unlink()
    assert main(argv) == 0
    assert {n: _status(out, n)["finished_at"] for n in before} == before
    assert (out / "yield.md").exists() and len(TaskSet.from_jsonl(out / "tasks.jsonl")) == len(tasks)
    assert main([*argv, "--retry-failed"]) == 0
    after = {n: _status(out, n)["finished_at"] for n in before}
    assert [n for n in before if after[n] != before[n]] == ["missing"]

    # a project whose status is gone (an interrupted run) runs again
    (out / "status" / "src_layout.json").unlink()
    assert main(argv) == 0
    assert _status(out, "src_layout")["finished_at"] > before["src_layout"]
    assert _status(out, "unittest_only")["finished_at"] == before["unittest_only"]


def test_a_worker_process_that_dies_fails_only_its_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthesize

    def dying(files: Any, cfg: SynthConfig, **kw: Any) -> Any:
        if cfg.name == "plugin_config":
            os._exit(3)  # the worker process dies: no exception, no status written by it
        if cfg.name == "src_layout":
            raise RuntimeError("a bug in synthesis")
        return real(files, cfg, **kw)

    monkeypatch.setattr(batch_module, "synthesize", dying)  # forked workers see it
    specs = parse_projects("\n".join(str(FIXTURES / n) for n in GOOD))
    cfg = SynthConfig(operators=["change_return"], max_per_operator=1, sandbox="none", install_deps=False, grade=False)
    seen: list[str] = []
    statuses = run_batch(specs, cfg, tmp_path, workers=2, progress=lambda s: seen.append(s["project"]))
    by_name = {s["project"]: s for s in statuses}
    assert by_name["unittest_only"]["status"] == "done" and by_name["unittest_only"]["kept"] == 1
    assert by_name["plugin_config"]["category"] == "crash"
    assert by_name["plugin_config"]["reason"] == "cannot use plugin_config: crash: the worker process died"
    assert by_name["src_layout"]["category"] == "crash"
    assert by_name["src_layout"]["reason"] == "cannot use src_layout: crash: RuntimeError: a bug in synthesis"
    assert "RuntimeError: a bug in synthesis" in (tmp_path / "logs" / "src_layout.log").read_text()
    assert sorted(seen) == sorted(GOOD)
    assert len(TaskSet.from_jsonl(tmp_path / "tasks.jsonl")) == 1
