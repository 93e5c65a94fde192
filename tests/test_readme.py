"""The README's Python examples run as written, and every command it shows runs (not just ``--help``).

Commands run through the real CLI in a subprocess, in README order, in one scratch folder (so a
later command sees what an earlier one wrote, e.g. ``tasks.jsonl``). To fit a test they are made
smaller, never different: a model becomes ``tiny``, step, task and mutant counts shrink, and the
README's placeholders (``...``, ``NAME==VERSION``, ``path/to/project``) get concrete values.
``make demo`` / ``make test`` are checked with ``make -n`` (running them would install and run
the whole suite from inside the suite).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from agentgym.testing import require_bwrap, require_docker, run_cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# README placeholders -> concrete values (a small PyPI sdist that ships its tests; a tiny local project).
# The checkpoint path follows the train command made smaller (--steps 1).
# Two evaluation runs to compare: the README's `eval --out runs/eval` run, with itself.
PLACEHOLDERS = {
    "NAME==VERSION": "inflection==0.5.1",  # pure Python, tests in the sdist, no test dependencies
    "path/to/project": "tinyproj",
    "checkpoints/step_000020": "checkpoints/step_000001",
    "DIR_A": "runs/eval",
    "DIR_B": "runs/eval",
}
# Per command: flags set (replacing the README's value) to keep the run small.
SMALLER: dict[tuple[str, ...], dict[str, str | None]] = {
    ("train",): {
        "--model": "tiny",
        "--steps": "1",
        "--tasks-per-step": "2",
        "--group-size": "2",
        "--eval-tasks": "2",
        "--max-turn-tokens": "16",
        "--no-progress": None,
    },
    ("sft",): {"--model": "tiny", "--episodes": "8", "--epochs": "1", "--eval-tasks": "2", "--no-progress": None},
    ("dpo",): {
        "--model": "tiny",
        "--rounds": "1",
        "--tasks-per-round": "2",
        "--group-size": "2",
        "--eval-tasks": "2",
        "--no-progress": None,
    },
    ("eval",): {"--tasks": "2", "--workers": "2"},
    ("eval", "compare"): {},
    ("run",): {"--quiet": None},
    ("tasks", "validate"): {"--limit": "2"},
    ("tasks", "synth"): {"--max-tasks": "1", "--max-per-operator": "2"},
}


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _positional(command: str) -> list[str]:
    """The words of a command that are neither flags nor flag values (``eval --out DIR`` -> ``[eval]``)."""
    out, skip = [], False
    for word in shlex.split(command)[1:]:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = "=" not in word
        else:
            out.append(word)
    return out


def readme_commands() -> list[str]:
    """Every ``agentgym``/``make`` command of the README.

    Bash-block lines (comments stripped, ``a | b`` alternatives split), then inline ``agentgym ...``
    spans that are whole commands, not fragments naming one shown in full (``agentgym tasks synth``
    is a fragment of ``agentgym tasks synth --pypi ...``).
    """
    out: list[str] = []
    for block in _blocks("bash"):
        for raw in block.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line.startswith(("agentgym ", "make ")):
                continue
            if " | " in line:  # "agentgym sandbox build-image | gc": alternatives of the last word
                first, *alts = [p.strip() for p in line.split(" | ")]
                stem = first.rsplit(" ", 1)[0]
                out += [first] + [f"{stem} {alt}" for alt in alts]
            else:
                out.append(line)
    for span in re.findall(r"`(agentgym [^`]+)`", README.read_text()):
        words = _positional(span)
        if span in out or any(_positional(c)[: len(words)] == words for c in out if c.startswith("agentgym")):
            continue
        out.append(span)
    return out


def smaller(command: str) -> list[str]:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    argv = shlex.split(command)[1:]
    words = [a for a in argv if not a.startswith("-")]
    keys = [key for key in SMALLER if tuple(words[: len(key)]) == key]
    for key in sorted(keys, key=len)[-1:]:  # the most specific entry (eval compare, not eval)
        flags = SMALLER[key]
        for flag, value in flags.items():
            if flag in argv:
                i = argv.index(flag)
                del argv[i : i + (1 if value is None else 2)]
            argv += [flag] if value is None else [flag, value]
    return argv


def test_readme_examples_run() -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 3
    namespaces = []
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    [env] = [ns["env"] for ns in namespaces if "Capitals" in ns]
    env.reset(options={"task_id": "Kenya"})
    _, reward, terminated, _, _ = env.step(
        '<tool_call>{"name": "submit", "arguments": {"answer": "Nairobi"}}</tool_call>'
    )
    assert (reward, terminated) == (1.0, True)
    env.close()
    del gym.registry["agentgym/Capitals-v0"]


def test_readme_commands_are_found() -> None:
    commands = readme_commands()
    subcommands = {
        tuple(w for w in shlex.split(c)[1:3] if not w.startswith("-")) for c in commands if c.startswith("agentgym")
    }
    for expected in [
        ("list",),
        ("train",),
        ("eval", "ToolUse-v0"),
        ("eval", "compare"),
        ("sandbox", "gc"),
        ("tasks", "synth"),
    ]:
        assert any(s[: len(expected)] == expected for s in subcommands), (expected, subcommands)
    assert "make demo" in commands and "make test" in commands


def test_make_targets_in_the_readme_install_from_the_lock() -> None:
    for target, needle in [("demo", "agentgym.trainer.demo"), ("test", "pytest")]:
        done = subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert needle in done.stdout
        assert "--require-hashes" in done.stdout and "requirements/all.lock" in done.stdout


TINY_PROJECT = {
    "calc.py": """
        def clamp(x, lo, hi):
            if x < lo:
                return lo
            if x > hi:
                return hi
            return x


        def is_even(n):
            return n % 2 == 0
        """,
    "test_calc.py": """
        from calc import clamp, is_even


        def test_clamp_low():
            assert clamp(-5, 0, 10) == 0


        def test_clamp_high():
            assert clamp(50, 0, 10) == 10


        def test_clamp_inside():
            assert clamp(5, 0, 10) == 5


        def test_even():
            assert is_even(4) and not is_even(3)
        """,
}


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path: Path) -> None:
    require_docker()  # `agentgym sandbox build-image | gc`
    require_bwrap()  # `agentgym tasks synth` (local sandbox)
    project = tmp_path / PLACEHOLDERS["path/to/project"]
    project.mkdir()
    for name, text in TINY_PROJECT.items():
        (project / name).write_text(textwrap.dedent(text).lstrip())
    env = {"AGENTGYM_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    ran = []
    for command in readme_commands():
        if command.startswith("make "):
            continue  # test_make_targets_in_the_readme_install_from_the_lock
        argv = smaller(command)
        done = run_cli(*argv, cwd=tmp_path, env=env, timeout=900)
        assert done.returncode == 0, (
            f"README command failed: {command}\nran: agentgym {shlex.join(argv)}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
        ran.append(argv)
    assert len(ran) >= 10
    assert (tmp_path / "tasks.jsonl").exists()  # written by `tasks synth`, read by the following `tasks validate`
    assert (tmp_path / "runs" / "calc" / "checkpoints").is_dir()
    assert (tmp_path / "runs" / "eval" / "summary.md").exists()
    assert (tmp_path / "sft.jsonl").read_text().count("\n") == 8  # `export` of the `sft` run's kept episodes
