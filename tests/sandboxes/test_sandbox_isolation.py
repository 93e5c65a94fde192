"""Adversarial tests: an agent must not reach the network, the host or the grader."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import Factory, processes_inside, small_config

from agentgym.sandboxes import Sandbox


@pytest.fixture
def host_server() -> Iterator[int]:
    """A TCP server on the host's loopback that answers 'pwned'."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"pwned")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


def test_network_egress_fails(sandbox: Sandbox, host_server: int) -> None:
    with socket.create_connection(("127.0.0.1", host_server), timeout=2) as s:  # the server works
        assert s.recv(5) == b"pwned"
    probe = (
        "import socket\ntry:\n"
        f" s = socket.create_connection(('127.0.0.1', {host_server}), timeout=2); print(s.recv(5))\n"
        "except OSError as e: print('blocked', e)\n"
    )
    r = sandbox.exec(["python3", "-c", probe])
    assert "pwned" not in r.stdout and "blocked" in r.stdout, r
    r = sandbox.exec(["python3", "-c", "import socket; print(socket.getaddrinfo('deb.debian.org', 80))"])
    assert not r.ok and "gaierror" in r.stderr, r
    r = sandbox.exec(["python3", "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"])
    assert not r.ok


def test_files_outside_workspace_unreadable(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "hidden_tests.py"
    secret.write_text("SECRET = 'grader'\n")
    secret.chmod(0o644)
    r = sandbox.exec(
        f"cat {secret}; ls {tmp_path}; cat /root/.bashrc /etc/shadow; ls /work /root /home; "
        "grep -r SECRET /tmp /home /root /work /var /opt 2>/dev/null"
    )
    assert "grader" not in r.stdout and secret.name not in r.stdout
    sandbox.exec(f"ln -s {secret} link")  # a link made inside resolves inside the sandbox
    with pytest.raises(FileNotFoundError, match="No such file or directory: 'link'"):
        sandbox.read_file("link")
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        sandbox.read_file(str(secret))
    out = tmp_path / "download"
    sandbox.download(".", out)  # the link comes back as a link, never as the host file's content
    assert not (out / "link").exists() or (out / "link").is_symlink()


def test_nothing_outside_workspace_writable(sandbox: Sandbox, tmp_path: Path) -> None:
    targets = [
        "/etc/x",
        "/dev/x",
        "/usr/x",
        "/usr/local/x",
        "/x",
        "/root/x",
        "/home/x",
        "/var/x",
        "/opt/x",
        "/usr/bin/python3",
        str(tmp_path / "x"),
        "/proc/sys/kernel/hostname",
    ]
    for target in targets:
        r = sandbox.exec(f"echo pwned > {target}")
        assert not r.ok, (target, r)
    with pytest.raises(OSError, match="Read-only file system: '/etc/x'"):
        sandbox.write_file("/etc/x", "pwned")
    assert list(tmp_path.iterdir()) == []
    assert sandbox.exec("echo ok > /workspace/ok && echo ok > /tmp/scratch").ok


def test_fork_bomb_is_contained(make: Factory) -> None:
    sb = make(config=small_config())
    results = []
    t = threading.Thread(target=lambda: results.append(sb.exec("bomb() { bomb | bomb & }; bomb; sleep 60", timeout=6)))
    t.start()
    time.sleep(3)  # the bomb is at its limit now
    t0 = time.monotonic()
    subprocess.run(["true"], check=True)
    assert time.monotonic() - t0 < 2.0, "the host stopped responding"
    t.join(60)
    (r,) = results
    # It hit the process limit: either the timeout ended it, or the outer shell itself could
    # no longer fork (then it exits early with "Cannot fork"); both are containment.
    assert not r.ok and "fork" in r.stderr.lower(), r
    assert processes_inside(sb) == []  # the timeout killed every process
    assert sb.exec("echo alive").stdout == "alive\n"


def test_memory_hog_is_killed(make: Factory) -> None:
    sb = make(config=small_config(memory_mb=256))
    r = sb.exec(["python3", "-c", "x = []\nwhile True: x.append(bytearray(10**7))"], timeout=60)
    assert not r.ok and r.oom_killed and not r.timed_out, r
    assert sb.exec("echo alive").stdout == "alive\n"


def test_infinite_loop_times_out_and_leaves_nothing(sandbox: Sandbox) -> None:
    escape = (
        "import os, time\nif os.fork() == 0:\n os.setsid()\n if os.fork() == 0: time.sleep(600)\n"
        " os._exit(0)\nwhile True: pass\n"
    )
    start = time.monotonic()
    r = sandbox.exec(["python3", "-c", escape], timeout=1.5)
    elapsed = time.monotonic() - start
    assert r.timed_out and not r.ok and r.exit_code == 124, r
    assert 1.4 < elapsed < 6, elapsed
    assert processes_inside(sandbox) == []


def test_cpu_time_limit(make: Factory) -> None:
    sb = make(config=small_config(cpu_seconds=1))
    r = sb.exec(["python3", "-c", "while True: pass"], timeout=20)
    assert not r.ok and not r.timed_out and r.duration < 15, r


def test_file_size_limit(make: Factory) -> None:
    sb = make(config=small_config(max_file_mb=1))
    r = sb.exec("head -c 5000000 /dev/zero > big.bin")
    assert not r.ok
    assert int(sb.exec("stat -c %s big.bin").stdout) <= 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_huge_output_is_truncated_in_bounded_memory(sandbox: Sandbox) -> None:
    before = _rss_bytes()
    r = sandbox.exec("head -c 50000000 /dev/zero | tr '\\0' 'x'; echo; echo END", timeout=60)
    grown = _rss_bytes() - before
    assert r.ok and r.truncated, r.exit_code
    assert r.stdout.startswith("xxx") and r.stdout.endswith("END\n")
    assert "bytes truncated ...]" in r.stdout and len(r.stdout) < 2 * sandbox.config.output_limit  # type: ignore[attr-defined]
    assert grown < 20 * 1024 * 1024, f"host RSS grew by {grown / 1e6:.1f} MB"


def test_kill_processes_leaves_only_the_helper(sandbox: Sandbox) -> None:
    assert sandbox.kill_processes() == 0
    # background jobs, a daemon in its own session, and a process that keeps forking
    script = (
        "sleep 1000 >/dev/null 2>&1 & "
        "setsid sh -c 'sleep 1000' >/dev/null 2>&1 & "
        "sh -c 'while :; do sleep 1000 & sleep 0.01; done' >/dev/null 2>&1 &"
    )
    assert sandbox.exec(script).ok
    time.sleep(0.3)
    before = processes_inside(sandbox)
    assert len(before) >= 3, before
    killed = sandbox.kill_processes()
    lasting = [p for p in before if "sleep 0.01" not in p]  # those may exit on their own meanwhile
    assert killed >= len(lasting), (killed, before)
    assert processes_inside(sandbox) == []
    assert sandbox.exec("echo alive").stdout == "alive\n"
    assert sandbox.kill_processes() == 0
