"""ShellSession: a persistent shell on any sandbox."""

from __future__ import annotations

import pytest

from agentgym.sandboxes import Sandbox, ShellSession


@pytest.fixture
def shell(sandbox: Sandbox) -> ShellSession:
    return ShellSession(sandbox)


def test_cd_persists(shell: ShellSession, sandbox: Sandbox) -> None:
    assert shell.run("mkdir -p src/pkg && cd src/pkg").ok
    assert shell.run("pwd").stdout == f"{sandbox.workdir}/src/pkg\n"
    assert shell.cwd == f"{sandbox.workdir}/src/pkg"
    assert shell.run("cd .. && pwd").stdout == f"{sandbox.workdir}/src\n"


def test_variables_functions_and_aliases_persist(shell: ShellSession) -> None:
    shell.run("export TOKEN='a b'; LOCAL=1; greet() { echo \"hi $1\"; }; alias ll='echo listed'")
    r = shell.run('echo "$TOKEN|$LOCAL"; greet you; ll; python3 -c \'import os; print(os.environ["TOKEN"])\'')
    assert r.stdout == "a b|1\nhi you\nlisted\na b\n", r
    shell.run("unset TOKEN")
    assert shell.run('echo "[${TOKEN-unset}]"').stdout == "[unset]\n"


def test_exit_codes_are_reported(shell: ShellSession) -> None:
    assert shell.run("true").exit_code == 0
    assert shell.run("false").exit_code == 1
    assert shell.run("(exit 7)").exit_code == 7
    assert shell.run("cd /tmp; exit 3").exit_code == 3
    assert shell.run("pwd").stdout == "/tmp\n"  # state saved even when the command exits
    assert shell.run("if then").exit_code == 2  # syntax error
    assert shell.run("no-such-command").exit_code == 127


def test_timeout_interrupts_and_session_recovers(shell: ShellSession, sandbox: Sandbox) -> None:
    shell.run("cd /tmp && export KEEP=yes")
    r = shell.run("cd / && export KEEP=no && sleep 100", timeout=1)
    assert r.timed_out and r.exit_code == 124
    r = shell.run("echo $KEEP; pwd")
    assert r.ok and r.stdout == "yes\n/tmp\n"


def test_initial_cwd_and_env(sandbox: Sandbox) -> None:
    sandbox.exec("mkdir -p proj")
    sh = ShellSession(sandbox, cwd="proj", env={"MODE": "test it"})
    assert sh.run("pwd; echo $MODE").stdout == f"{sandbox.workdir}/proj\ntest it\n"
    with sh:
        pass


def test_stdin_is_empty_and_output_separated(shell: ShellSession) -> None:
    r = shell.run("cat; echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")
