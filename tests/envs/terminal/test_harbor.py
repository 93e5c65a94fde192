"""The Harbor task format: Dockerfile planning, folders in and out, the CLI's per-task report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentgym.harbor import (
    BASE_IMAGE,
    HarborFormatError,
    export_task,
    load_task,
    load_tasks,
    plan_dockerfile,
    unsupported_reasons,
)
from agentgym.tasks import Task, TaskSet
from agentgym.testing import run_cli

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "harbor"


def test_plan_splits_packages_from_file_steps() -> None:
    plan = plan_dockerfile(
        "# a comment\n"
        "FROM python:3.12-slim-bookworm AS base\n"
        "ARG DEBIAN_FRONTEND=noninteractive\n"
        "ARG DATA=/app/data\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "      jq curl \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "WORKDIR /app\n"
        "RUN pip install --no-cache-dir requests==2.32.3 && mkdir -p $DATA && echo 'a && b' > ${DATA}/x\n"
        'ENV MODE=fast NAME="two words"\n'
        "COPY src/ /app/src/\n"
        'CMD ["python3", "-m", "http.server", "8000"]\n'
        "EXPOSE 8000\n"
    )
    assert plan.base == BASE_IMAGE and plan.workdir == "/app"
    assert plan.apt == ["jq", "curl"]
    assert plan.pip == ["requests==2.32.3"]
    assert plan.env == {"MODE": "fast", "NAME": "two words"}
    runs = [s["run"] for s in plan.steps if "run" in s]
    assert runs == ["true && mkdir -p /app/data && echo 'a && b' > /app/data/x"]  # ARG substituted, quotes kept
    assert {"copy": ["src/"], "dest": "/app/src/", "extract": False} in plan.steps
    assert plan.cmd == "python3 -m http.server 8000"
    assert plan.unsupported == {"local": [plan.unsupported["local"][0]]}  # pip: docker only
    assert "pip packages" in plan.unsupported["local"][0]
    assert any("3.12-slim-bookworm" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("dockerfile", "needle"),
    [
        ("FROM ubuntu:22.04\nWORKDIR /app\n", "FROM ubuntu:22.04"),
        ("FROM alpine:3.20\n", "FROM alpine:3.20"),
        ("FROM debian:bookworm AS b\nFROM debian:bookworm\n", "multi-stage"),
        ("FROM debian:bookworm\nWORKDIR /app\nCOPY --from=b /x /app/x\n", "--from"),
        ("FROM debian:bookworm\nWORKDIR /app\nCOPY conf /etc/conf\n", "outside WORKDIR"),
        ("FROM debian:bookworm\nWORKDIR /usr/src\n", "WORKDIR /usr/src"),
        ("FROM debian:bookworm\nADD https://example.com/x.tgz /app/\n", "offline"),
        ("WORKDIR /app\n", "no FROM"),
        ("FROM debian:bookworm\nFROBNICATE x\n", "unknown Dockerfile instruction"),
    ],
)
def test_plan_says_what_cannot_be_built(dockerfile: str, needle: str) -> None:
    plan = plan_dockerfile(dockerfile)
    reasons = " | ".join(plan.unsupported.get("all", []))
    assert needle in reasons, plan.unsupported


def test_fixture_folders_load_with_per_backend_reasons() -> None:
    tasks = load_tasks(FIXTURES)
    assert sorted(tasks.ids) == ["csv-total", "pip-package", "tbench-style", "ubuntu-only", "word-count"]
    csv = tasks["csv-total"]
    assert csv.prompt.startswith("The file `/app/sales.csv`")
    assert csv.setup["format"] == "harbor" and csv.setup["workdir"] == "/app" and csv.setup["apt"] == ["jq"]
    assert csv.metadata["agent_timeout"] == 600.0 and csv.verifier["timeout"] == 120.0
    assert set(csv.verifier["tests"]) == {"test.sh", "test_outputs.py"}
    assert csv.verifier["tests"]["test.sh"]["mode"] & 0o111  # the executable bit is kept
    assert "solve.sh" in csv.solution["files"]
    assert unsupported_reasons(csv, "local") == unsupported_reasons(csv, "docker") == []
    assert unsupported_reasons(tasks["pip-package"], "docker") == []
    assert unsupported_reasons(tasks["pip-package"], "local")
    assert unsupported_reasons(tasks["ubuntu-only"], "docker") == unsupported_reasons(tasks["ubuntu-only"], "local")
    assert unsupported_reasons(tasks["ubuntu-only"], "local")
    assert any("no WORKDIR" in n for n in tasks["word-count"].setup["notes"])
    tbench = tasks["tbench-style"]  # terminal-bench's base image and its uv-based test.sh
    assert unsupported_reasons(tbench, "local") == unsupported_reasons(tbench, "docker") == []
    assert any("offline stand-ins" in n for n in tbench.setup["notes"])


def test_taskset_reads_harbor_folders_and_jsonl_round_trips(tmp_path: Path) -> None:
    tasks = TaskSet.from_source(str(FIXTURES))
    assert len(tasks) == 5
    path = tmp_path / "tasks.jsonl"
    tasks.to_jsonl(path)
    again = TaskSet.from_jsonl(path)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in tasks]


def test_export_then_import_is_the_same_task(tmp_path: Path) -> None:
    for task in load_tasks(FIXTURES):
        folder = export_task(task, tmp_path)
        back = load_task(folder)
        for key in ("id", "prompt", "setup", "verifier", "solution", "split"):
            assert getattr(back, key) == getattr(task, key), (task.id, key)
        assert back.metadata["agent_timeout"] == task.metadata["agent_timeout"]


def test_export_refuses_other_task_formats(tmp_path: Path) -> None:
    with pytest.raises(HarborFormatError, match="not a shell task"):
        export_task(Task(id="x", prompt="p", setup={"files": {}}), tmp_path)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: None, "no instruction.md"),
        (lambda d: (d / "instruction.md").write_text("x"), "no tests/test.sh"),
        (
            lambda d: (
                (d / "instruction.md").write_text("x"),
                (d / "tests").mkdir(),
                (d / "tests" / "test.sh").write_text("exit 0"),
                (d / "task.toml").write_text("[agent\ntimeout_sec = 1"),
            ),
            "not valid TOML",
        ),
    ],
)
def test_broken_folders_say_what_to_fix(tmp_path: Path, make: object, needle: str) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    make(folder)  # type: ignore[operator]
    with pytest.raises(HarborFormatError, match=needle):
        load_task(folder)


def test_cli_import_reports_each_task_and_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "imported.jsonl"
    result = run_cli("tasks", "import", "harbor", str(FIXTURES), "--out", str(out))
    assert result.returncode == 1  # ubuntu-only runs nowhere here
    text = result.stdout
    assert "ubuntu-only" in text and "FROM ubuntu:24.04" in text
    assert "pip-package" in text and "use the docker backend" in text
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == ["csv-total", "pip-package", "tbench-style", "ubuntu-only", "word-count"]
    ok = run_cli("tasks", "import", "harbor", str(FIXTURES / "csv-total"))
    assert ok.returncode == 0, ok.stderr


def test_cli_export_writes_folders_that_import_again(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    load_tasks([FIXTURES / "csv-total", FIXTURES / "word-count"]).to_jsonl(src)
    result = run_cli("tasks", "export", "harbor", str(src), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    again = load_tasks(tmp_path / "out")
    assert sorted(again.ids) == ["csv-total", "word-count"]
