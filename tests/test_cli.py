"""The real ``agentgym`` command line (a subprocess): user errors are one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.testing import run_cli

ROOT = Path(__file__).resolve().parents[1]


def agentgym(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``agentgym ARGS`` from the repository root, offline."""
    return run_cli(*args, cwd=ROOT, env={"HF_HUB_OFFLINE": "1", **(env or {})})


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("agentgym"), line
    assert "error:" in line, line
    for needle in needles:
        assert needle in line, line
    return line


@pytest.mark.parametrize(
    "args",
    [
        ["describe", "NoSuchEnv-v0"],
        ["run", "NoSuchEnv-v0", "--quiet"],
        ["eval", "NoSuchEnv-v0", "--tasks", "1"],
        ["tasks", "validate", "NoSuchEnv-v0"],
        ["train", "--env", "NoSuchEnv-v0", "--steps", "1"],
    ],
)
def test_unknown_environment(args: list[str]) -> None:
    line = assert_one_line_error(agentgym(*args), "NoSuchEnv")
    assert "ToolUse-v0" in line  # lists the registered ones


def test_unknown_task() -> None:
    line = assert_one_line_error(agentgym("run", "ToolUse-v0", "--task-id", "no-such-task", "--quiet"), "no-such-task")
    assert "e.g." in line  # says which ids exist


@pytest.mark.parametrize("cmd", ["run", "eval"])
def test_unknown_policy(cmd: str) -> None:
    line = assert_one_line_error(
        agentgym(cmd, "ToolUse-v0", "--policy", "nosuchpolicy", "--tasks" if cmd == "eval" else "--episodes", "1"),
        "nosuchpolicy",
    )
    assert "oracle" in line  # lists the valid ones


def test_unknown_model_path_for_train_and_policy(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    assert_one_line_error(
        agentgym("train", "--env", "Calculator-v0", "--model", str(missing), "--steps", "1"), "no-such-model"
    )
    assert_one_line_error(
        agentgym("eval", "Calculator-v0", "--policy", f"hf:{missing}", "--tasks", "1"), "no-such-model"
    )


def test_a_run_directory_is_not_a_model_and_the_error_points_at_its_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints" / "step_000002").mkdir(parents=True)
    (run / "checkpoints" / "step_000002" / "config.json").write_text("{}")
    line = assert_one_line_error(
        agentgym("eval", "Calculator-v0", "--policy", f"hf:{run}", "--tasks", "1"), "not a model directory"
    )
    assert "step_000002" in line


def test_unknown_hub_model_without_a_hub() -> None:
    assert_one_line_error(
        agentgym(
            "train", "--env", "Calculator-v0", "--model", "no-such-org/no-such-model", "--steps", "1", "--no-progress"
        ),
        "no-such-org/no-such-model",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["run", "ToolUse-v0", "--no-such-flag"],
        ["train", "--no-such-flag", "1"],
        ["train", "--steps", "many"],
        ["eval", "ToolUse-v0", "--split", "nope"],
        ["nosuchcommand"],
    ],
)
def test_bad_arguments(args: list[str]) -> None:
    line = assert_one_line_error(agentgym(*args))
    assert "--help" in line


def test_bad_config_value_is_one_line() -> None:
    assert_one_line_error(
        agentgym("train", "--env", "Calculator-v0", "--group-size", "1", "--steps", "1"), "group_size"
    )


def test_bad_env_argument_is_one_line() -> None:
    assert_one_line_error(agentgym("run", "Calculator-v0", "--env-arg", "no_such_kwarg=1", "--quiet"), "no_such_kwarg")


def test_debug_shows_the_traceback() -> None:
    result = agentgym("describe", "NoSuchEnv-v0", env={"AGENTGYM_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_delegated_commands_are_listed_without_loading_their_modules() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from agentgym.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert all(name in out.getvalue() for name in ('sft', 'dpo', 'export')), out.getvalue()\n"
        "print(sorted(m for m in ('torch', 'datasets', 'agentgym.trainer.sft') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("command", "flag"), [("sft", "--rounds"), ("dpo", "--beta"), ("export", "--format")])
def test_delegated_commands_parse_their_own_flags(command: str, flag: str) -> None:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: agentgym {command}" in done.stdout
    assert flag in done.stdout
    bad = run_cli(command, "--no-such-flag")
    assert bad.returncode == 2
    assert f"agentgym {command}: error:" in bad.stderr  # its own parser answers, naming the command
