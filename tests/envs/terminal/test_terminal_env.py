"""Terminal-v0 on both backends: the session, the tools, the budget, the verifier, every task validated."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentgym.envs.terminal import TerminalEnv
from agentgym.harbor import load_tasks
from agentgym.parsing import format_tool_call
from agentgym.testing import require_bwrap, require_docker
from agentgym.validate import validate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "harbor"
BACKENDS = ["local", "docker"]


def _require(backend: str) -> None:
    require_bwrap() if backend == "local" else require_docker()


def run(command: str, **kw: object) -> str:
    return format_tool_call("run", {"command": command, **kw})


SUBMIT = format_tool_call("submit", {})


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    _require(request.param)
    return str(request.param)


@pytest.fixture
def fixture_env(backend: str) -> Iterator[TerminalEnv]:
    env = TerminalEnv(source=FIXTURES, sandbox=backend, split="all", command_timeout=10)
    yield env
    env.close()


def _play(env: TerminalEnv, task_id: str, actions: list[str]) -> tuple[list[str], float, dict]:
    env.reset(options={"task_id": task_id})
    outputs, reward, info = [], 0.0, {}
    for action in actions:
        obs, reward, term, trunc, info = env.step(action)
        outputs.append("\n".join(str(m.get("content")) for m in obs))
        if term or trunc:
            break
    return outputs, reward, info


def test_session_state_persists_and_tools_report(fixture_env: TerminalEnv) -> None:
    out, _, _ = _play(
        fixture_env,
        "word-count",
        [
            run('pwd && mkdir -p sub && cd sub && export GREETING=hi && greet() { echo "$GREETING $1"; }'),
            run("pwd; greet there; alias ll='ls -1'"),
            run("ll /app"),
            run("exit 3"),
            run("sleep 5", timeout=1),
            run("head -c 300000 /dev/zero | tr '\\0' x"),
            format_tool_call("write_file", {"path": "note.txt", "content": "hello\n"}),
            format_tool_call("read_file", {"path": "/app/sub/note.txt"}),
            format_tool_call("read_file", {"path": "missing.txt"}),
        ],
    )
    assert out[0] == "/app\n[exit code 0]"
    assert out[1] == "/app/sub\nhi there\n[exit code 0]"
    assert "poem.txt" in out[2] and "sub" in out[2]
    assert out[3] == "[exit code 3]"
    assert out[4] == "[timed out after 1 s]"
    assert "truncated" in out[5] and len(out[5]) < 20_000
    assert out[6] == "Wrote 6 bytes to /app/sub/note.txt." and out[7] == "hello\n"
    assert "Error" in out[8]


def test_service_from_cmd_runs_and_env_is_set(backend: str, tmp_path: Path) -> None:
    task = tmp_path / "svc"
    shutil.copytree(FIXTURES / "word-count", task)
    (task / "environment" / "Dockerfile").write_text(
        "FROM debian:bookworm\nWORKDIR /app\nENV COLOR=blue\nCOPY poem.txt ./\n"
        'CMD ["bash", "-c", "while sleep 1; do :; done", "agentgym-service-token"]\n'
    )
    env = TerminalEnv(source=task, sandbox=backend, split="all")
    try:
        out, _, _ = _play(env, "svc", [run("ps -eo args | grep -c '[a]gentgym-service-token'; echo $COLOR; ls")])
    finally:
        env.close()
    assert out[0].splitlines()[:2] == ["1", "blue"] and "poem.txt" in out[0]


def test_reward_json_components_and_scores(fixture_env: TerminalEnv) -> None:
    _, reward, info = _play(fixture_env, "word-count", [run("wc -w < poem.txt > count.txt"), SUBMIT])
    assert reward == 0.0  # lines.txt missing
    comps = info["reward_components"]
    assert comps["verifier/words"] == 1.0 and comps["verifier/lines"] == 0.0 and comps["reward"] == 0.0
    _, reward, info = _play(
        fixture_env, "word-count", [run("wc -w < poem.txt > count.txt; wc -l < poem.txt > lines.txt"), SUBMIT]
    )
    assert reward == 1.0 and info["verifier"]["exit_code"] == 0 and info["reward_components"]["tampered"] == 0.0


def _task_with_verifier(tmp_path: Path, script: str, **toml: str) -> Path:
    task = tmp_path / "v"
    shutil.copytree(FIXTURES / "word-count", task)
    (task / "tests" / "test.sh").write_text(script)
    if toml:
        (task / "task.toml").write_text("\n".join(f"[{k}]\n{v}" for k, v in toml.items()))
    return task


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ("echo 1 > /logs/verifier/reward.txt\nexit 2\n", "exited with status 2"),
        ("echo 1 > /logs/verifier/reward.txt\nsleep 30\n", "timed out"),
        ("echo lots > /logs/verifier/reward.txt\n", "does not hold a number"),
        ("echo nan > /logs/verifier/reward.txt\n", "not a finite number"),
        ('echo \'{"reward": "1"}\' > /logs/verifier/reward.json\n', "not a finite number"),
        ("true\n", "wrote neither"),
    ],
)
def test_a_verifier_that_fails_scores_zero(backend: str, tmp_path: Path, script: str, needle: str) -> None:
    _require(backend)
    task = _task_with_verifier(tmp_path, "#!/bin/bash\n" + script, verifier="timeout_sec = 3")
    env = TerminalEnv(source=task, sandbox=backend, split="all")
    try:
        _, reward, info = _play(env, "v", [SUBMIT])
    finally:
        env.close()
    assert reward == 0.0
    assert needle in info["verifier"]["error"]


def test_agent_budget_from_task_toml_ends_the_episode(tmp_path: Path) -> None:
    require_bwrap()
    task = _task_with_verifier(tmp_path, "#!/bin/bash\necho 0 > /logs/verifier/reward.txt\n", agent="timeout_sec = 2")
    env = TerminalEnv(source=task, sandbox="local", split="all", command_timeout=30)
    try:
        out, _, info = _play(env, "v", [run("sleep 10"), run("true")])
    finally:
        env.close()
    assert "timed out after" in out[0]  # the command was cut at the budget, not at its 30 s
    assert info["termination_reason"] == "time_limit"


def test_file_tools_can_be_left_out_and_unusable_tasks_are_listed() -> None:
    require_bwrap()
    env = TerminalEnv(source=FIXTURES, split="all", file_tools=False)
    try:
        assert [t["function"]["name"] for t in env.tool_schemas()] == ["run", "submit"]
        assert set(env.unusable) == {"pip-package", "ubuntu-only"}
        assert "ubuntu" in env.unusable["ubuntu-only"][0]
    finally:
        env.close()
    with pytest.raises(ValueError, match="none of the 1 tasks can run"):
        TerminalEnv(source=FIXTURES / "ubuntu-only", split="all")


def test_foreign_harbor_tasks_validate(backend: str) -> None:
    report = validate("agentgym/Terminal-v0", env_kwargs={"source": str(FIXTURES), "sandbox": backend}, progress=False)
    expected = {"csv-total", "tbench-style", "word-count"} | ({"pip-package"} if backend == "docker" else set())
    assert {c.task_id for c in report.checks} == expected
    assert report.ok, report.summary()


def test_every_builtin_task_validates(backend: str) -> None:
    report = validate("agentgym/Terminal-v0", env_kwargs={"sandbox": backend}, progress=False)
    assert len(report.checks) >= 40
    assert report.ok, report.summary()


def test_builtin_tasks_cover_the_categories_with_a_held_out_split() -> None:
    from agentgym.envs.terminal import BUILTIN_TASKS

    tasks = load_tasks(BUILTIN_TASKS)
    by_category: dict[str, list[str]] = {}
    for t in tasks:
        by_category.setdefault(str(t.metadata.get("category")), []).append(tasks.split_of(t))
    wanted = {
        "file-manipulation",
        "text-processing",
        "json-csv",
        "archives",
        "permissions",
        "git",
        "processes-services",
        "scripting",
        "debugging",
    }
    assert wanted <= set(by_category), sorted(by_category)
    for category in wanted:
        splits = by_category[category]
        assert len(splits) >= 4 and "test" in splits and "train" in splits, (category, splits)
    for t in tasks:
        assert not t.setup["unsupported"], (t.id, t.setup["unsupported"])


def test_coding_tasks_export_to_harbor_and_validate(tmp_path: Path) -> None:
    from agentgym.testing import run_cli

    require_bwrap()
    result = run_cli("tasks", "export", "harbor", "curated", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) >= 30
    ids = [p.name for p in folders[:4]]
    report = validate("agentgym/Terminal-v0", env_kwargs={"source": str(tmp_path)}, task_ids=ids, progress=False)
    assert [c.task_id for c in report.checks] == ids
    assert report.ok, report.summary()
