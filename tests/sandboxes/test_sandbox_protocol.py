"""The Sandbox protocol, identical on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_helpers import Factory

from agentgym.sandboxes import ExecResult, Sandbox, SandboxConfig, SandboxError, truncate_bytes


def test_exec_shell_string_and_argv(sandbox: Sandbox) -> None:
    r = sandbox.exec("echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr, r.timed_out, r.ok) == (3, "out\n", "err\n", False, False)
    r = sandbox.exec(["python3", "-c", "import sys; print(sys.argv[1:])", "a b", "c"])
    assert r.ok and r.stdout == "['a b', 'c']\n"
    assert r.duration > 0


def test_exec_cwd_env_stdin(sandbox: Sandbox) -> None:
    sandbox.exec("mkdir -p sub/dir")
    assert sandbox.exec("pwd", cwd="sub/dir").stdout == f"{sandbox.workdir}/sub/dir\n"
    assert sandbox.exec("pwd").stdout == f"{sandbox.workdir}\n"
    assert sandbox.exec("echo $GREETING", env={"GREETING": "hi there"}).stdout == "hi there\n"
    assert sandbox.exec("wc -c", stdin=b"x" * 300_000).stdout.strip() == "300000"
    assert sandbox.exec("cat", stdin="héllo").stdout == "héllo"


def test_missing_command_and_bad_cwd(sandbox: Sandbox) -> None:
    assert sandbox.exec(["no-such-binary"]).exit_code == 127
    assert sandbox.exec("no-such-binary").exit_code == 127
    assert not sandbox.exec("true", cwd="does/not/exist").ok


def test_python_and_pytest_resolve(sandbox: Sandbox) -> None:
    for cmd in (
        "python --version",
        "python3 --version",
        "python3 -m pytest --version",
        "pytest --version",
        "git --version",
    ):
        assert sandbox.exec(cmd).ok, cmd


def test_non_utf8_output(sandbox: Sandbox) -> None:
    r = sandbox.exec(r"printf 'ok \377\376 end'")
    assert r.ok and r.stdout.startswith("ok ") and r.stdout.endswith(" end") and "\ufffd" in r.stdout


def test_output_truncated_head_and_tail(make: Factory) -> None:
    sb = make(config=SandboxConfig(output_limit=1000))
    r = sb.exec("python3 -c \"print('HEAD' + 'x' * 100000 + 'TAIL', end='')\"")
    assert r.truncated and r.stdout.startswith("HEAD") and r.stdout.endswith("TAIL")
    cut = 100008 - 1000
    assert f"[... {cut} bytes truncated ...]" in r.stdout
    assert len(r.stdout.encode()) < 1100


def test_truncate_bytes_helper() -> None:
    data, cut = truncate_bytes(b"a" * 10 + b"b" * 10, 10)
    assert cut and data.startswith(b"aaaaa") and data.endswith(b"bbbbb") and b"[... 10 bytes truncated ...]" in data
    assert truncate_bytes(b"short", 10) == (b"short", False)


def test_files_roundtrip(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.write_file("a/b/c.bin", bytes(range(256)))
    assert sandbox.read_file("a/b/c.bin") == bytes(range(256))
    assert sandbox.exec("wc -c < a/b/c.bin").stdout.strip() == "256"
    sandbox.write_file("text.txt", "ünïcode")
    assert sandbox.read_file(f"{sandbox.workdir}/text.txt").decode() == "ünïcode"
    with pytest.raises(FileNotFoundError):
        sandbox.read_file("missing.txt")


def test_upload_download(sandbox: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("X = 1\n")
    (src / "README").write_text("hello")
    sandbox.upload(src, "proj")
    assert sandbox.exec("cat README && python3 -c 'import pkg.mod as m; print(m.X)'", cwd="proj").stdout == "hello1\n"
    sandbox.exec("echo new > proj/pkg/new.txt")
    out = tmp_path / "out"
    sandbox.download("proj", out)
    assert (out / "pkg" / "new.txt").read_text() == "new\n" and (out / "README").read_text() == "hello"


def test_files_given_at_creation(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "task.py").write_text("print('task')\n")
    sb = make(files=tmp_path)
    assert sb.exec("python3 task.py").stdout == "task\n"


def test_reset_restores_modified_deleted_and_new_files(make: Factory, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "keep.txt").write_text("keep")
    (tmp_path / "edit.txt").write_text("original")
    (tmp_path / "dir" / "gone.txt").write_text("gone")
    (tmp_path / "ro.txt").write_text("read-only")
    (tmp_path / "ro.txt").chmod(0o444)
    sb = make(files=tmp_path)
    r = sb.exec(
        "echo changed > edit.txt && rm -r dir && echo new > new.txt && mkdir -p newdir/x && "
        "touch newdir/x/f && chmod u+w ro.txt && echo hacked > ro.txt && ln -s /etc/passwd keep2"
    )
    assert r.ok, r
    sb.reset()
    listing = sb.exec("find . | sort").stdout.split()
    assert listing == [".", "./dir", "./dir/gone.txt", "./edit.txt", "./keep.txt", "./ro.txt"]
    assert sb.read_file("edit.txt") == b"original" and sb.read_file("dir/gone.txt") == b"gone"
    assert sb.read_file("ro.txt") == b"read-only" and sb.exec("test -w ro.txt").exit_code == 1
    sb.exec("echo again > edit.txt")  # a second round works from the refreshed manifest
    sb.reset()
    assert sb.read_file("edit.txt") == b"original"


def test_snapshot_moves_the_reset_point(sandbox: Sandbox) -> None:
    sandbox.write_file("a.txt", "v1")
    sandbox.snapshot()
    sandbox.write_file("a.txt", "v2")
    sandbox.write_file("b.txt", "new")
    sandbox.reset()
    assert sandbox.read_file("a.txt") == b"v1" and sandbox.exec("test -e b.txt").exit_code == 1


def test_close_is_idempotent_and_final(make: Factory) -> None:
    sb = make()
    with sb as same:
        assert same is sb and sb.exec("true").ok
    sb.close()
    with pytest.raises(SandboxError, match="closed"):
        sb.exec("true")


def test_exec_result_output() -> None:
    assert ExecResult(0, "a\n", "b").output == "a\nb"
    assert ExecResult(1, "", "b").output == "b"
