"""Configurable workspace mount point, extra writable directories, the base image's tools."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import Factory, require_bwrap, require_docker, small_config

from agentgym.envs.coding.sandboxing import SandboxProvider
from agentgym.sandboxes import DockerSandbox, LocalSandbox, ShellSession, make_sandbox
from agentgym.sandboxes.local import check_mount_points


def _files(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("X = 1\n")
    (src / "README").write_text("hello\n")
    return src


def test_custom_workdir_is_the_workspace(make: Factory, tmp_path: Path) -> None:
    sb = make(files=_files(tmp_path), workdir="/app")
    assert sb.workdir == "/app"
    r = sb.exec("pwd; cat README pkg/mod.py; stat -c %u /app")
    assert r.exit_code == 0, r
    assert r.stdout.split("\n")[:4] == ["/app", "hello", "X = 1", "1000"]
    # relative and absolute paths name the same files, under /app
    sb.write_file("out/a.txt", "rel")
    assert sb.read_file("/app/out/a.txt") == b"rel"
    sb.write_file("/app/out/b.txt", "abs")
    assert sb.read_file("out/b.txt") == b"abs"
    assert sb.exec("cat a.txt", cwd="out").stdout == "rel"
    assert sb.exec(["python3", "-c", "import os; print(os.getcwd())"]).stdout.strip() == "/app"
    # upload / download
    sb.upload(_files(tmp_path / "again"), "sub")
    assert sb.exec("cat /app/sub/pkg/mod.py").stdout == "X = 1\n"
    sb.download("out", tmp_path / "dl")
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "dl" / "a.txt").read_text() == "rel"
    # reset goes back to the files given at start; snapshot moves that point
    sb.reset()
    listing = sb.exec("ls -A /app").stdout.split()
    assert listing == ["README", "pkg"]
    sb.write_file("kept.txt", "k")
    sb.snapshot()
    sb.write_file("dropped.txt", "d")
    sb.exec("rm README")
    sb.reset()
    assert sb.exec("ls -A").stdout.split() == ["README", "kept.txt", "pkg"]
    # kill_processes works and leaves the workspace alone
    sb.exec("sleep 100 >/dev/null 2>&1 &")
    assert sb.kill_processes() >= 1
    assert sb.read_file("kept.txt") == b"k"
    # a shell session starts in the workspace
    shell = ShellSession(sb)
    assert shell.run("pwd").stdout.strip() == "/app"
    # the default workspace path is not writable (absent locally; read-only in the image)
    r = sb.exec("touch /workspace/x")
    assert r.exit_code != 0
    assert "No such file" in r.stderr or "Read-only" in r.stderr, r


def test_default_workdir_unchanged(make: Factory) -> None:
    sb = make()
    assert sb.workdir == "/workspace"
    assert sb.exec("pwd").stdout.strip() == "/workspace"
    assert sb.exec("touch /workspace/x && test ! -e /app").exit_code == 0


def test_extra_dirs_are_empty_writable_and_capped(make: Factory) -> None:
    sb = make(workdir="/app", extra_dirs=("/tests", "/logs"), config=small_config(disk_mb=8))
    assert sb.extra_dirs == ("/tests", "/logs")  # type: ignore[attr-defined]
    r = sb.exec("for d in /tests /logs; do test -d $d && stat -c '%u %a' $d && ls -A $d | wc -l; done")
    assert r.exit_code == 0, r
    assert r.stdout.split("\n")[:4] == ["1000 755", "0", "1000 755", "0"]
    # a verifier's layout: a script in /tests runs (exec allowed) and writes /logs/verifier/reward.txt
    sb.write_file("/tests/test.sh", "#!/bin/sh\nmkdir -p /logs/verifier && echo 1 > /logs/verifier/reward.txt\n")
    r = sb.exec("chmod +x /tests/test.sh && /tests/test.sh")
    assert r.exit_code == 0, r
    assert sb.read_file("/logs/verifier/reward.txt") == b"1\n"
    # each extra dir has the workspace's size cap
    r = sb.exec("dd if=/dev/zero of=/logs/big bs=1M count=16")
    assert r.exit_code != 0 and "No space left" in r.stderr, r
    # the rest of / stays read-only
    for path in ("/x", "/usr/x", "/etc/x", "/bin/x"):
        r = sb.exec(f"touch {path}")
        assert r.exit_code != 0 and "Read-only" in r.stderr, (path, r)
    # reset restores the workspace only: the extra dirs keep their files
    sb.reset()
    assert sb.exec("test -f /logs/verifier/reward.txt && test -f /tests/test.sh").exit_code == 0


@pytest.mark.parametrize(
    ("workdir", "extra", "words"),
    [
        ("app", (), "absolute"),
        ("/app/", (), "normalised"),
        ("/app/../x", (), "normalised"),
        ("/a//b", (), "normalised"),
        ("/", (), "cannot be '/'"),
        ("/usr/src/app", (), "system tree /usr"),
        ("/lib64/x", (), "system tree /lib"),
        ("/var", (), "system tree /var/lib"),
        ("/etc", (), "system tree /etc"),
        ("/tmp/app", (), "overlaps /tmp"),
        ("/app", ("/app",), "same or nested"),
        ("/app", ("/app/tests",), "same or nested"),
        ("/srv/app", ("/srv",), "same or nested"),
        ("/app", ("/tests", "/tests"), "same or nested"),
        ("/app", ("/proc/x",), "system tree /proc"),
        ("/app", ("logs",), "absolute"),
    ],
)
def test_bad_mount_points_are_refused(workdir: str, extra: tuple[str, ...], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        check_mount_points(workdir, extra)
    # both backends refuse them before starting anything (no engine or bwrap needed)
    with pytest.raises(ValueError, match=re.escape(words)):
        LocalSandbox(workdir=workdir, extra_dirs=extra)
    with pytest.raises(ValueError, match=re.escape(words)):
        DockerSandbox(workdir=workdir, extra_dirs=extra)


def test_mount_point_checks_accept_and_explain() -> None:
    assert check_mount_points("/app", ["/tests", "/logs"]) == ("/app", ("/tests", "/logs"))
    assert check_mount_points("/workspace") == ("/workspace", ())
    assert check_mount_points("/home/agent/project", ("/var/log/verifier",))[0] == "/home/agent/project"
    with pytest.raises(ValueError, match=r"use \('/tests',\)"):
        check_mount_points("/app", "/tests")
    with pytest.raises(ValueError, match="isolation='bwrap'"):
        LocalSandbox(isolation="none", extra_dirs=("/tests",))


def test_isolation_none_keeps_its_host_directory() -> None:
    require_bwrap()
    with LocalSandbox(isolation="none", workdir="/app") as sb:
        assert sb.host_workspace is not None and sb.workdir == str(sb.host_workspace)
        sb.write_file("a.txt", "x")
        assert (sb.host_workspace / "a.txt").read_text() == "x"


@pytest.mark.parametrize("kind", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_make_sandbox_and_provider_pass_mounts_through(kind: str, tmp_path: Path) -> None:
    require_docker() if kind == "docker" else require_bwrap()
    options: dict[str, Any] = {"workdir": "/app", "extra_dirs": ("/tests", "/logs")}
    with make_sandbox(kind, **options) as sb:  # type: ignore[arg-type]
        assert sb.exec("pwd && touch /tests/a /logs/b").stdout.strip() == "/app"
    provider = SandboxProvider(kind, pool_size=1, **options)
    try:
        sb = provider.acquire(str(_files(tmp_path)))
        try:
            assert sb.workdir == "/app"
            r = sb.exec("pwd && cat README && touch /tests/a /logs/b && ls -A /tests /logs")
            assert r.exit_code == 0, r
            assert r.stdout.split("\n")[:2] == ["/app", "hello"]
        finally:
            provider.release(sb)
    finally:
        provider.close()


@pytest.mark.docker
def test_docker_pool_passes_mounts_through() -> None:
    require_docker()
    from agentgym.sandboxes import DockerPool

    with DockerPool(size=1, workdir="/app", extra_dirs=("/logs",)) as pool:
        sb = pool.acquire()
        try:
            assert sb.exec("pwd && touch /logs/x").stdout.strip() == "/app"
        finally:
            pool.release(sb)


@pytest.mark.docker
def test_base_image_has_shell_tools_and_records_its_packages() -> None:
    require_docker()
    from agentgym.sandboxes.image import DEFAULT_IMAGE, PACKAGES, image_packages, packages_label

    for pkg in ("jq", "procps", "xz-utils", "sqlite3", "make", "python3-pytest"):
        assert pkg in PACKAGES
    assert image_packages(DEFAULT_IMAGE) == packages_label(PACKAGES), (
        "the base image is out of date: rebuild it with python -m agentgym.sandboxes.image"
    )
    with DockerSandbox() as sb:
        r = sb.exec(
            "echo '{\"a\": [1, 2]}' | jq -c .a; ps -o comm= -p 1; echo 2+3 | bc; echo x | xz | xz -d; "
            "echo y | bzip2 | bzip2 -d; sqlite3 :memory: 'select 6*7'; make --version | head -1 | cut -c1-8; "
            "patch --version | head -1 | cut -c1-9; file -b /usr/bin/python3.11 | cut -c1-3; "
            "cd /tmp && echo z > z && zip -q z.zip z && unzip -p z.zip z"
        )
    assert r.exit_code == 0, r
    assert r.stdout.split("\n") == ["[1,2]", "python3", "5", "x", "y", "42", "GNU Make", "GNU patch", "ELF", "z", ""], r


def test_host_has_shell_tools_for_the_local_backend() -> None:
    require_bwrap()
    with LocalSandbox() as sb:
        r = sb.exec("jq --version && ps --version && xz --version && sqlite3 --version && make --version")
    assert r.exit_code == 0, f"install the host tools with sudo scripts/setup-system.sh: {r}"


@pytest.mark.docker
def test_docker_cli_runs_jq_in_the_base_image() -> None:
    require_docker()
    from agentgym.sandboxes.image import DEFAULT_IMAGE

    out = subprocess.run(
        ["docker", "run", "--rm", DEFAULT_IMAGE, "jq", "--version"], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("jq-"), out


@pytest.mark.docker
def test_image_build_is_skipped_only_when_its_package_label_matches(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    require_docker()
    import io
    import logging
    import tarfile

    from agentgym.sandboxes import SandboxError
    from agentgym.sandboxes.docker import docker_client
    from agentgym.sandboxes.image import build_image, image_packages

    client = docker_client()
    name = "agentgym-test/label-check:t"
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    client.api.import_image_from_stream(
        iter([empty.getvalue()]), repository=name.split(":")[0], tag="t", changes=["LABEL agentgym.packages=a,b"]
    )
    try:
        assert image_packages(name) == "a,b"
        caplog.set_level(logging.INFO, logger="agentgym.sandboxes.image")
        assert build_image(name, packages=("b", "a", "b")) == name  # same list: nothing to do
        assert "up to date" in caplog.text
        caplog.clear()
        monkeypatch.setenv("PATH", str(Path("/nonexistent")))  # stop the rebuild right after its decision
        with pytest.raises(SandboxError, match="debootstrap not found"):
            build_image(name, packages=("a", "c"))
        assert "built with packages a,b, wanted a,c: rebuilding it" in caplog.text
    finally:
        client.images.remove(name, force=True)
    assert image_packages(name) is None
