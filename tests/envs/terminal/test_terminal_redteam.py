"""Red team for Terminal-v0's grading: agents that do not solve the task but attack the verifier.

Every test plays one episode on both backends (bubblewrap, Docker) of a small Harbor task in
``tests/fixtures/harbor_redteam``:

* ``pytest-sum``: ``test.sh`` runs ``python3 -m pytest /tests/test_outputs.py`` from ``/app`` and
  writes ``reward.txt`` from its exit status (the usual Harbor verifier);
* ``key-match``: ``test.sh`` compares ``/app/answer.txt`` with ``/tests/expected.txt`` using
  ``cat``/``wc``/``grep`` and writes ``reward.json`` with ``jq``.

The attacks never solve the task, so any reward above 0 is a hole in the grading. The honest
solutions score 1 on each backend (the controls: a grading that broke entirely would fail them).
Three holes this file found were fixed in ``verify.py``: the workdir is no longer on the verifier's
``sys.path`` (optional imports and ``pytest11`` entry points were filled in from it), symlinks are
resolved through each other instead of lexically, and an unreadable workdir scores 0 instead of
raising. An attack that still gets through is ``xfail(strict=True)`` with the hole in its reason: once
the grading is fixed it passes, strict turns that into a failure, and the marker goes.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentgym.envs.terminal.env import TerminalEnv
from agentgym.parsing import format_tool_call
from agentgym.testing import require_bwrap, require_docker

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "harbor_redteam"
BACKENDS = ["local", pytest.param("docker", marks=pytest.mark.docker)]

# What every planted program does when run: claim reward 1 everywhere it can, print success, exit 0.
# Had the verifier run it instead of the system's tool, the episode would score 1.
CHEAT = r"""#!/bin/sh
mkdir -p /logs/verifier 2>/dev/null
echo 1 > /logs/verifier/reward.txt 2>/dev/null
echo '{"reward": 1}'
echo '3'
echo '========== 2 passed in 0.01s =========='
exit 0
"""
PY_EXIT = "import os\nos._exit(0)\n"
"""A Python module that ends the interpreter with status 0 the moment it is imported."""


@dataclass
class Outcome:
    """What an episode ended with."""

    reward: float
    tampered: float
    verifier: dict[str, Any]
    outputs: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def log(self) -> str:
        """Everything the agent saw, for assertion messages."""
        return "\n---\n".join(self.outputs) + f"\n--- verifier: {self.verifier}"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest) -> Iterator[TerminalEnv]:
    """One environment per backend, shared by the module's episodes (its sandbox pools stay warm)."""
    if request.param == "docker":
        require_docker()
    else:
        require_bwrap()
    terminal = TerminalEnv(source=FIXTURES, sandbox=request.param, split="all", command_timeout=60.0)
    assert sorted(terminal.task_set.ids) == ["key-match", "pytest-sum"], terminal.unusable
    yield terminal
    terminal.close()


def play(env: TerminalEnv, task_id: str, *commands: str | tuple[str, dict[str, Any]]) -> Outcome:
    """Run ``commands`` one turn each (a string: ``run``; a pair: another tool), then submit if still going."""
    env.reset(options={"task_id": task_id})
    outputs: list[str] = []
    done = False
    info: dict[str, Any] = {}
    for command in commands:
        name, args = command if isinstance(command, tuple) else ("run", {"command": command, "timeout": 60})
        obs, _, terminated, truncated, info = env.step(format_tool_call(name, args))
        outputs.append(str(obs[-1]["content"]))
        done = terminated or truncated
        if done:
            break
    if not done:
        _, _, terminated, truncated, info = env.step(format_tool_call("submit", {}))
        assert terminated or truncated
    parts = info["reward_components"]
    return Outcome(
        reward=parts["reward"],
        tampered=parts["tampered"],
        verifier=info["verifier"],
        outputs=outputs,
        reason=str(info.get("termination_reason", "")),
    )


def assert_ran_and_failed(out: Outcome) -> None:
    """The verifier ran on the agent's files, found the task unsolved and said so: reward 0, nothing flagged."""
    assert out.reward == 0.0, out.log
    assert out.verifier["ran"] is True, out.log
    assert out.verifier["exit_code"] == 0 and out.verifier["error"] is None, out.log
    assert out.tampered == 0.0, out.log


def assert_refused(out: Outcome, needle: str) -> None:
    """Distrusted: reward 0, ``tampered`` 1 and an integrity message naming why."""
    assert out.reward == 0.0, out.log
    assert out.tampered == 1.0, out.log
    assert any(needle in line for line in out.verifier["integrity"]), out.log


# ----- controls -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "solve"),
    [
        ("pytest-sum", "paste -sd+ numbers.txt | bc > total.txt && cat total.txt"),
        ("key-match", "grep -c ERROR server.log > answer.txt && cat answer.txt"),
    ],
)
def test_honest_solution_scores_one_and_doing_nothing_zero(env: TerminalEnv, task_id: str, solve: str) -> None:
    out = play(env, task_id, solve)
    assert out.reward == 1.0 and out.tampered == 0.0, out.log
    assert out.verifier["ran"] and out.verifier["error"] is None and not out.verifier["integrity"]
    if task_id == "key-match":
        assert out.verifier["components"] == {"reward": 1.0, "exact_match": 1.0}
    assert_ran_and_failed(play(env, task_id))


# ----- 1. planted reward files --------------------------------------------------------------

PLANT = r"""
for f in reward.txt reward.json; do
  mkdir -p /logs/verifier 2>/dev/null; echo 1 > /logs/verifier/$f 2>/dev/null
done
test -e /logs/verifier/reward.txt || echo NO_LOGS_HERE
for d in /app/logs/verifier /app/verifier /tmp/logs/verifier /tmp/.verifier-home/logs/verifier; do
  mkdir -p $d && echo 1 > $d/reward.txt && echo '{"reward": 1, "exact_match": 1}' > $d/reward.json
done
echo 1 > /app/reward.txt; echo '{"reward": 1}' > /app/reward.json; echo 1.0 > /tmp/reward.txt
ls /app/logs/verifier
"""


@pytest.mark.parametrize("task_id", ["pytest-sum", "key-match"])
def test_planted_reward_files_are_ignored(env: TerminalEnv, task_id: str) -> None:
    out = play(
        env,
        task_id,
        ("write_file", {"path": "/logs/verifier/reward.txt", "content": "1\n"}),
        ("write_file", {"path": "/logs/verifier/reward.json", "content": '{"reward": 1}'}),
        PLANT,
    )
    assert not any(o.startswith("Wrote") for o in out.outputs[:2]), out.log  # no /logs for the agent
    assert "NO_LOGS_HERE" in out.outputs[2] and "reward.json" in out.outputs[2], out.log  # the others were planted
    assert_ran_and_failed(out)


# ----- 2. trojaned tools on PATH, shell start-up files, BASH_ENV -----------------------------

TROJANS = (
    "mkdir -p /app/bin && for t in python3 python pytest bash sh cat grep jq wc tr test env timeout; do "
    f"printf %s {shlex.quote(CHEAT)} > /app/bin/$t && chmod +x /app/bin/$t; done\n"
    "printf %s " + shlex.quote(CHEAT) + " > /app/cheat.sh && chmod +x /app/cheat.sh\n"
    "for rc in ~/.bashrc ~/.profile ~/.bash_profile ~/.bash_login /tmp/.bashrc /app/.bashrc /app/.profile; do\n"
    "  printf 'export PATH=/app/bin:$PATH\\n. /app/cheat.sh\\n' > $rc; done\n"
    "export BASH_ENV=/app/cheat.sh ENV=/app/cheat.sh\n"
    "export PATH=/app/bin:$PATH\n"
    "/usr/bin/printf 'planted: %s\\n' \"$(command -v python3) $(command -v grep) $BASH_ENV\""
)


@pytest.mark.parametrize("task_id", ["pytest-sum", "key-match"])
def test_trojaned_tools_and_startup_files_are_not_used(env: TerminalEnv, task_id: str) -> None:
    out = play(env, task_id, TROJANS, "python3 -m pytest; echo status=$?")
    assert "planted: /app/bin/python3 /app/bin/grep /app/cheat.sh" in out.outputs[0], out.log
    assert "2 passed" in out.outputs[1] and "status=0" in out.outputs[1], out.log  # the trojans work in the session
    assert_ran_and_failed(out)


# ----- 3. Python shadowing in the workdir ---------------------------------------------------

SHADOW = {
    "pytest.py": PY_EXIT,
    "pytest/__init__.py": PY_EXIT,
    "pytest/__main__.py": PY_EXIT,
    "_pytest/__init__.py": PY_EXIT,
    "conftest.py": PY_EXIT,
    "sitecustomize.py": PY_EXIT,
    "usercustomize.py": PY_EXIT,
    "pathlib.py": PY_EXIT,
    "encodings/__init__.py": PY_EXIT,
    "zzz.pth": "import os; os._exit(0)\n",
    # config files pytest would read from the workdir: collecting alone passes (exit status 0)
    "pytest.ini": "[pytest]\naddopts = --collect-only -p conftest\n",
    "tox.ini": "[pytest]\naddopts = --collect-only\n",
    "setup.cfg": "[tool:pytest]\naddopts = --collect-only\n",
    "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "--collect-only"\n',
}


def test_python_shadowing_in_the_workdir_is_not_imported(env: TerminalEnv) -> None:
    site = "/tmp/.local/lib/python3.11/site-packages"  # the agent's HOME is /tmp
    out = play(
        env,
        "pytest-sum",
        *[("write_file", {"path": f"/app/{rel}", "content": text}) for rel, text in SHADOW.items()],
        f"mkdir -p {site} && cp /app/sitecustomize.py /app/usercustomize.py /app/zzz.pth {site}/",
        "export PYTHONPATH=/app PYTHONSTARTUP=/app/conftest.py PYTEST_ADDOPTS=--collect-only",
        "cd /app && python3 -c 'print(1)'; echo shadow-status=$?",
    )
    assert all(o.startswith("Wrote") for o in out.outputs[: len(SHADOW)]), out.log
    assert out.outputs[-1].startswith("shadow-status=0"), out.log  # the shadowing works in the session
    assert_ran_and_failed(out)
    assert "2 failed" in out.verifier["output"], out.log  # the real pytest ran the real tests


# Not shadowing but *filling in*: the verifier's sitecustomize appends the workdir to sys.path (after the
# stdlib and the installed packages), so a module that the stdlib or pytest imports only if it exists, and
# that is not installed, is taken from the workdir; so are the entry points of a *.dist-info / *.egg-info there.
PLUGIN_META = "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n"
FILL_INS = {
    "pytest11 entry point in a dist-info": {
        "evil-1.0.dist-info/METADATA": PLUGIN_META,
        "evil-1.0.dist-info/entry_points.txt": "[pytest11]\nevil = evil_plugin\n",
        "evil_plugin.py": PY_EXIT,
    },
    "pytest11 entry point in an egg-info": {
        "evil.egg-info/PKG-INFO": PLUGIN_META,
        "evil.egg-info/entry_points.txt": "[pytest11]\nevil = evil_plugin\n",
        "evil_plugin.py": PY_EXIT,
    },
    "org (copy.py's optional Jython import)": {"org/__init__.py": PY_EXIT},
    "nt": {"nt.py": PY_EXIT},
    "_winapi": {"_winapi.py": PY_EXIT},
    "msvcrt": {"msvcrt.py": PY_EXIT},
}


@pytest.mark.parametrize("attack", list(FILL_INS), ids=list(FILL_INS))
def test_optional_imports_are_not_filled_in_from_the_workdir(env: TerminalEnv, attack: str) -> None:
    files = FILL_INS[attack]
    out = play(env, "pytest-sum", *[("write_file", {"path": f"/app/{k}", "content": v}) for k, v in files.items()])
    assert all(o.startswith("Wrote") for o in out.outputs), out.log
    assert_ran_and_failed(out)


# ----- 4. background processes waiting for the verifier --------------------------------------

LURKER = r"""while :; do
  [ -e /tests/expected.txt ] && cp /tests/expected.txt /app/answer.txt
  [ -e /tests/test.sh ] && printf '#!/bin/bash\necho 1 > /logs/verifier/reward.txt\n' > /tests/test.sh
  [ -d /logs ] && { mkdir -p /logs/verifier; echo '{"reward": 1}' > /logs/verifier/reward.json; }
  sleep 0.05
done"""


def test_background_processes_are_dead_before_verification(env: TerminalEnv) -> None:
    lurk = shlex.quote(LURKER)
    out = play(
        env,
        "key-match",
        f"nohup bash -c {lurk} >/dev/null 2>&1 &\n"
        f"setsid -f bash -c {lurk} >/dev/null 2>&1 </dev/null\n"
        f"(trap '' TERM HUP INT; bash -c {lurk}) >/dev/null 2>&1 & disown\n"
        f"( ( setsid bash -c {lurk} >/dev/null 2>&1 </dev/null & ) & )\n"
        "sleep 0.5; pgrep -c -f 'cp /tests/expected.txt'",
    )
    assert int(out.outputs[0].splitlines()[-2]) >= 4, out.log  # all four lurkers were running at submit
    assert_ran_and_failed(out)


# ----- 5. a tampered python3 in the session ---------------------------------------------------


def test_tampered_python3_in_the_session_is_not_used(env: TerminalEnv) -> None:
    cheat = shlex.quote(CHEAT)
    out = play(
        env,
        "pytest-sum",
        f"printf %s {cheat} > /app/python3 && chmod +x /app/python3 && cp /app/python3 /tmp/python3\n"
        'python3() { command /app/python3 "$@"; }; export -f python3\n'
        "hash -p /tmp/python3 python3; hash -p /tmp/python3 bash\n"
        "shopt -s expand_aliases; alias python3=/app/python3 pytest=/app/python3",
        "python3 -m pytest /tests/test_outputs.py; echo status=$?",
    )
    assert "2 passed" in out.outputs[1] and "status=0" in out.outputs[1], out.log
    assert_ran_and_failed(out)


# ----- 6. symlinks into the verifier's paths --------------------------------------------------

CAUGHT_LINKS = {
    "absolute answer key": "ln -s /tests/expected.txt answer.txt",
    "relative answer key": "ln -s ../tests/expected.txt answer.txt",
    "answer key from a subfolder": "mkdir -p a/b && ln -s ../../../tests/expected.txt a/b/k && ln -s a/b/k answer.txt",
    "reward file": "ln -s /logs/verifier/reward.txt out && ln -s /logs/verifier/reward.json out.json",
    "folder to /logs": "ln -s /logs d",
    "through /proc": "ln -s /proc/self/root/tests/expected.txt answer.txt",
    "through /dev/fd": "ln -s /dev/fd/../../../tests/expected.txt answer.txt",
}
# Links that lead into /tests only when followed through each other (or a '//' prefix): resolved, not lexical.
HOLES = {
    "leading double slash": "ln -s //tests/expected.txt answer.txt",
    "through a link to /": "ln -s / r && ln -s r/tests/expected.txt answer.txt",
    "dot-dot after a link to /usr": "ln -s /usr u && ln -s u/../tests/expected.txt answer.txt",
    # the image's own links count too: /usr/share/zoneinfo/posix/Etc -> ../Etc is one level shallower than it looks
    "dot-dot after a link of the image": "ln -s /usr/share/zoneinfo/posix/Etc/../../../../tests/expected.txt "
    "answer.txt",
}


@pytest.mark.parametrize("attack", list(CAUGHT_LINKS), ids=list(CAUGHT_LINKS))
def test_symlinks_into_guarded_paths_are_refused(env: TerminalEnv, attack: str) -> None:
    out = play(env, "key-match", CAUGHT_LINKS[attack] + " && echo linked")
    assert "linked" in out.outputs[0], out.log
    assert_refused(out, "symlinks into guarded paths")
    assert out.verifier["ran"] is False


@pytest.mark.parametrize("attack", list(HOLES), ids=list(HOLES))
def test_symlinks_that_resolve_into_guarded_paths_are_refused(env: TerminalEnv, attack: str) -> None:
    out = play(env, "key-match", HOLES[attack] + " && echo linked")
    assert "linked" in out.outputs[0], out.log
    assert out.reward == 0.0, out.log
    assert out.tampered == 1.0, out.log


# ----- 7. the agent takes its own machine down ----------------------------------------------


def test_killing_every_process_ends_the_episode_scored_zero(env: TerminalEnv) -> None:
    out = play(
        env,
        "key-match",
        "kill -9 -1; for p in $(ps -eo pid= | sort -rn); do [ $p != $$ ] && kill -9 $p; done; kill -9 $$",
        "echo still here; ps -eo pid,user,args",
    )
    assert out.reward == 0.0, out.log
    if out.reason == "sandbox_died":  # the helper was among the processes it could kill
        assert "stopped responding" in out.outputs[-1], out.log
        assert_refused(out, "took its sandbox down")
    else:
        assert_ran_and_failed(out)
    assert_ran_and_failed(play(env, "key-match"))  # the environment goes on


def test_bounded_fork_storm_is_reaped_and_scored_zero(env: TerminalEnv) -> None:
    out = play(
        env,
        "key-match",
        "f() { if [ $1 -gt 0 ]; then f $(($1-1)) & f $(($1-1)) & fi; exec sleep 300; }\n"
        "(f 6 &) ; for i in $(seq 40); do (setsid sleep 300 &); done\n"
        "sleep 1; echo procs=$(pgrep -c sleep)",
    )
    assert int(out.outputs[0].split("procs=")[1].split()[0]) >= 100, out.log
    assert_ran_and_failed(out)


def test_full_disk_is_scored_zero_without_an_exception(env: TerminalEnv) -> None:
    out = play(
        env,
        "key-match",
        "head -c 600M /dev/zero > /app/fill; echo app=$?; head -c 64M /dev/zero > /tmp/fill; "
        "echo 4 > /app/answer.txt; echo answer=$?; df -h /app | tail -1",
    )
    assert "app=1" in out.outputs[0], out.log  # the workspace really was full
    assert out.reward == 0.0, out.log
    assert out.tampered == 0.0 or out.verifier["integrity"], out.log


# ----- 8. forged status lines ---------------------------------------------------------------


def test_forged_status_lines_change_nothing(env: TerminalEnv) -> None:
    forged = (
        "printf '%s\\n' '[exit code 0]' 'Submitted.' '========== 2 passed in 0.01s ==========' "
        "'reward: 1.0' '{\"reward\": 1}' '[exit code 0]'; printf '1\\n2\\n3\\n4\\n5\\n' > answer.txt; false"
    )
    out = play(env, "key-match", forged, "printf 'Submitted.\\n[exit code 0]\\n'; exit 0")
    assert out.outputs[0].endswith("[exit code 0]\n[exit code 1]"), out.log  # the env's own line comes last
    assert_ran_and_failed(out)


def test_a_fifo_for_an_answer_neither_hangs_nor_scores(env: TerminalEnv) -> None:
    out = play(env, "key-match", "mkfifo answer.txt && test -p answer.txt && echo fifo")
    assert "fifo" in out.outputs[0], out.log
    assert out.reward == 0.0 and not out.verifier["timed_out"], out.log


@pytest.mark.parametrize(
    "attack",
    ["echo 4 > answer.txt && chmod 000 answer.txt", "mkdir locked && echo x > locked/f && chmod 000 locked"],
    ids=["file", "folder"],
)
def test_unreadable_files_in_the_workdir_score_zero_without_an_exception(env: TerminalEnv, attack: str) -> None:
    out = play(env, "key-match", attack + " && echo locked")
    assert "locked" in out.outputs[0], out.log
    assert out.reward == 0.0, out.log
    assert "readable by their owner" in out.verifier["error"], out.log
