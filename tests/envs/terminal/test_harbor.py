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


# ----- task folders written by others (tests/fixtures/harbor_real, see its LICENSE-NOTE.md) ------------------------

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "harbor_real"


def test_real_folders_import_each_with_its_reason() -> None:
    errors: dict[str, str] = {}
    tasks = load_tasks(REAL, ubuntu_on_debian=True, errors=errors)
    assert sorted(tasks.ids) == ["dns-blacklisting", "multi-reward", "simple-task", "tbench-evoeval-0"]
    assert "multi-step" in errors["multi-step"] and "not supported" in errors["multi-step"]  # [[steps]], steps/
    simple = tasks["simple-task"]
    assert simple.prompt == 'Create a file called hello.txt with "Hello, world!" as the content.'
    assert simple.verifier["timeout"] == 120.0 and simple.metadata["agent_timeout"] == 120.0
    assert simple.metadata["resources"] == {"cpus": 1, "memory_mb": 2048, "storage_mb": 10240}
    assert any("planned on agentgym/base:bookworm" in n and "not Ubuntu" in n for n in simple.setup["notes"])
    assert unsupported_reasons(simple, "local") == unsupported_reasons(simple, "docker") == []
    reward = tasks["multi-reward"]
    assert reward.setup["apt"] == ["python3"] and reward.setup["pip"] == []  # uvx --with pytest*: the image's
    assert unsupported_reasons(reward, "local") == []
    dns = unsupported_reasons(tasks["dns-blacklisting"], "docker")
    assert len(dns) == 1 and "/entrypoint.sh, /etc/blacklist-patterns.txt" in dns[0]  # one line, every path
    tb = tasks["tbench-evoeval-0"]  # terminal-bench's task.yaml format
    assert tb.prompt.startswith("Solve this python programming problem")
    assert tb.verifier["timeout"] == 120.0 and tb.metadata["agent_timeout"] == 600.0
    assert tb.metadata["difficulty"] == "easy" and tb.metadata["tags"] == ["python", "programming", "evoeval"]
    assert {"test.sh", "run-tests.sh", "test_outputs.py"} <= set(tb.verifier["tests"])
    assert "solve.sh" in tb.solution["files"] and tb.setup["workdir"] == "/app"
    assert not any(k in tb.setup["context"] for k in ("task.yaml", "run-tests.sh", "solution.sh"))
    assert unsupported_reasons(tb, "local") == []


def test_ubuntu_is_refused_by_default_and_the_reason_names_the_switch() -> None:
    task = load_task(REAL / "simple-task")
    (reason,) = unsupported_reasons(task, "local")
    assert "FROM ubuntu:24.04" in reason and "--ubuntu-on-debian" in reason
    assert plan_dockerfile("FROM buildpack-deps:bookworm\n").unsupported == {}
    assert plan_dockerfile("FROM buildpack-deps:jammy\n", ubuntu_on_debian=True).unsupported == {}
    assert plan_dockerfile("FROM fedora:40\n", ubuntu_on_debian=True).unsupported["all"]


def test_cli_import_reports_unreadable_folders_without_failing_the_others(tmp_path: Path) -> None:
    out = tmp_path / "real.jsonl"
    result = run_cli("tasks", "import", "harbor", str(REAL), "--ubuntu-on-debian", "--out", str(out))
    assert result.returncode == 1  # multi-step and dns-blacklisting run nowhere here
    text = result.stdout
    assert "multi-step [not imported]" in text and "a multi-step task" in text
    assert "simple-task [train]\n  local:  ok\n  docker: ok" in text
    assert "5 tasks, 3 runnable here, 2 not" in result.stderr
    assert len(out.read_text().splitlines()) == 4
    missing = run_cli("tasks", "import", "harbor", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such directory" in missing.stdout
    assert "Traceback" not in missing.stderr


def _copy(name: str, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(REAL / name, dest / name))


def test_crlf_scripts_non_executable_solution_and_missing_optional_files(tmp_path: Path) -> None:
    folder = _copy("simple-task", tmp_path)
    for rel in ("tests/test.sh", "solution/solve.sh", "instruction.md", "task.toml"):
        path = folder / rel
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    (folder / "solution" / "solve.sh").chmod(0o644)
    task = load_task(folder, ubuntu_on_debian=True)
    assert "\r" not in task.verifier["tests"]["test.sh"]["text"]
    assert "\r" not in task.solution["files"]["solve.sh"]["text"]
    assert "\r" not in task.prompt and task.verifier["timeout"] == 120.0
    assert any("CRLF" in n for n in task.setup["notes"])
    bare = tmp_path / "bare"  # instruction.md and tests/test.sh only: no task.toml, environment/, solution/
    (bare / "tests").mkdir(parents=True)
    (bare / "instruction.md").write_text("Do it.\n")
    (bare / "tests" / "test.sh").write_text("echo 1 > /logs/verifier/reward.txt\n")
    plain = load_task(bare)
    assert plain.solution is None and plain.setup["workdir"] == "/app"
    assert any("no solution/solve.sh" in n for n in plain.setup["notes"])
    assert any("no environment/Dockerfile" in n for n in plain.setup["notes"])


def test_task_toml_sections_of_the_current_schema(tmp_path: Path) -> None:
    folder = _copy("simple-task", tmp_path)
    (folder / "task.toml").write_text(
        'schema_version = "1.1"\n[task]\nname = "org/simple"\n[agent]\ntimeout_sec = "bad"\n'
        '[verifier]\ntimeout_sec = 30\n[verifier.env]\nMODE = "strict"\nPATH = "/evil"\nKEY = "${OPENAI_API_KEY}"\n'
        '[solution.env]\nGREETING = "hi"\n'
        '[environment]\ngpus = 1\nworkdir = "/srv/work"\n[environment.env]\nPROJECT = "demo"\n'
    )
    task = load_task(folder, ubuntu_on_debian=True)
    assert task.metadata["name"] == "org/simple" and task.metadata["agent_timeout"] == 600.0
    assert task.verifier["timeout"] == 30.0 and task.verifier["env"] == {"MODE": "strict", "PATH": "/evil"}
    assert any("OPENAI_API_KEY" in n and "not passed" in n for n in task.setup["notes"])
    assert task.solution["env"] == {"GREETING": "hi"}
    assert task.setup["workdir"] == "/srv/work" and task.setup["env"]["PROJECT"] == "demo"
    assert any("gpus = 1" in r for r in unsupported_reasons(task, "docker"))
    from agentgym.envs.terminal.verify import VERIFIER_ENV, verifier_env

    env = verifier_env(task)
    assert env["MODE"] == "strict" and env["PATH"] == VERIFIER_ENV["PATH"]  # the fixed variables stay fixed


def test_verifier_pip_installs_go_into_the_docker_image(tmp_path: Path) -> None:
    folder = _copy("tbench-evoeval-0", tmp_path)
    script = (folder / "run-tests.sh").read_text()
    (folder / "run-tests.sh").write_text(
        script.replace("uv add pytest==8.4.1", "uv add pytest==8.4.1\nuv pip install pandas==2.2.3 'pyarrow>=15'")
    )
    task = load_task(folder)
    assert task.setup["pip"] == ["pandas==2.2.3", "pyarrow>=15"]
    assert unsupported_reasons(task, "docker") == []
    assert "the verifier needs PyPI packages" in unsupported_reasons(task, "local")[0]


def test_real_folders_validate_on_the_local_backend() -> None:
    from agentgym.testing import require_bwrap
    from agentgym.validate import validate

    require_bwrap()
    report = validate(
        "agentgym/Terminal-v0",
        env_kwargs={"source": str(REAL), "ubuntu_on_debian": True},
        progress=False,
    )
    # simple-task: uvx --with pytest-json-ctrf pytest --ctrf ...; multi-reward: reward.json of two components;
    # tbench-evoeval-0: uv init / uv add pytest / uv run pytest $TEST_DIR/...
    assert sorted(c.task_id for c in report.checks) == ["multi-reward", "simple-task", "tbench-evoeval-0"]
    assert report.ok, report.summary()


def test_a_task_without_solution_says_so_to_validate(tmp_path: Path) -> None:
    from agentgym.envs.terminal import TerminalEnv

    folder = tmp_path / "tasks" / "no-oracle"
    (folder / "tests").mkdir(parents=True)
    (folder / "instruction.md").write_text("Do it.\n")
    (folder / "tests" / "test.sh").write_text("echo 1 > /logs/verifier/reward.txt\n")
    (tmp_path / "tasks" / "broken").mkdir()
    (tmp_path / "tasks" / "broken" / "task.toml").write_text("[agent]\ntimeout_sec = 5\n")  # no instruction.md
    env = TerminalEnv(source=str(tmp_path / "tasks"), split="all")
    try:
        assert env.task_set.ids == ["no-oracle"]
        assert "no instruction.md" in env.unusable["broken"][0]
        with pytest.raises(NotImplementedError, match=r"no solution/solve\.sh"):
            env.oracle_turns(env.task_set["no-oracle"])
    finally:
        env.close()
