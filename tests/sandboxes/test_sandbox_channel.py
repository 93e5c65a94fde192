"""The host<->helper channel is out of reach of everything that runs in the sandbox.

Attacks run from inside a real sandbox (both backends): ptrace, ``pidfd_getfd``,
``/proc/<pid>/{fd,environ,mem}``, signals to the helper, forged frames written to
anything reachable, workspace links into the helper's descriptors, the host's
environment, host-writable paths, disk and inode exhaustion. Each attack also runs
against a process the attacker owns, so a probe that cannot work at all fails the test.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import threading
from pathlib import Path

import pytest
from sandbox_helpers import Factory, processes_inside, require_bwrap, small_config

from agentgym.sandboxes import LocalSandbox, Sandbox, SandboxError

_FORGED_HEAD = json.dumps(
    {
        "ok": True,
        "id": None,
        "exit_code": 0,
        "timed_out": False,
        "duration": 0.1,
        "out_len": 6,
        "truncated": False,
        "oom_killed": False,
    }
).encode()
FORGED = struct.pack(">II", len(_FORGED_HEAD), 6) + _FORGED_HEAD + b"forged"
"""A well-formed exec result the helper never produced."""

# Runs inside the sandbox. For every other visible pid: pidfd_getfd on fds 0..255, opening
# /proc/<pid>/fd/*, reading /proc/<pid>/{environ,mem}, ptrace-seizing it. Whatever it
# obtains is reported (with pipe/socket inodes) and every writable descriptor gets a forged
# frame. A child the probe owns (holding a pipe) is the control: the same attacks must
# work on it, or the probe proves nothing.
PROBE = r"""
import ctypes, json, os, stat, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
FORGED = bytes.fromhex(sys.argv[1])
child = subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE)
me, got = os.getpid(), []

def note(pid, how, fd=None):
    ino, kind = None, None
    if fd is not None:
        st = os.fstat(fd)
        ino, kind = st.st_ino, stat.S_IFMT(st.st_mode)
        try:
            os.set_blocking(fd, False)
            os.write(fd, FORGED)
        except OSError:
            pass
        try:
            os.read(fd, 4096)
        except OSError:
            pass
        os.close(fd)
    got.append([pid, how, ino, kind])

for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me):
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = None
    if pidfd is not None:
        for n in range(256):
            fd = libc.syscall(438, pidfd, n, 0)  # pidfd_getfd
            if fd >= 0:
                note(pid, "pidfd_getfd %d" % n, fd)
        os.close(pidfd)
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        names = [str(n) for n in range(64)]
    for n in names:
        for flags in (os.O_RDWR, os.O_WRONLY, os.O_RDONLY):
            try:
                fd = os.open("/proc/%d/fd/%s" % (pid, n), flags | os.O_NONBLOCK)
            except OSError:
                continue
            note(pid, "open fd/%s" % n, fd)
            break
    for name in ("environ", "mem", "syscall", "stack"):
        try:
            with open("/proc/%d/%s" % (pid, name), "rb") as f:
                if name == "mem":
                    f.seek(0x400000)
                f.read(64)
            note(pid, "read " + name)
        except OSError:
            pass
    if libc.ptrace(0x4206, pid, None, None) == 0:  # PTRACE_SEIZE
        note(pid, "ptrace")
        libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
child.kill()
print("REPORT:" + json.dumps({"child": child.pid, "helper_ppid": os.getppid(), "got": got}))
"""


def _helper_host_pid(sb: Sandbox) -> int | None:
    """The helper's pid on the host (root only: for reading its descriptors)."""
    cid = getattr(sb, "container_id", None)
    if cid is not None:
        return int(sb._client.api.inspect_container(cid)["State"]["Pid"])  # type: ignore[attr-defined]
    for name in os.listdir("/proc"):
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except (OSError, ValueError):
            continue
        nspid = [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")]
        ppid = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")]
        if nspid and nspid[0][-1] == "1" and len(nspid[0]) > 1 and ppid and int(ppid[0]) == sb.pid:  # type: ignore[attr-defined]
            return int(name)
    return None


def _channel_inodes(sb: Sandbox) -> set[int]:
    """Inodes of the helper's pipes and sockets (the channel among them), seen from the host."""
    inodes: set[int] = set()
    pid = _helper_host_pid(sb)
    if pid is not None and os.geteuid() == 0:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith(("pipe:[", "socket:[")):
                inodes.add(int(link.split("[")[1].rstrip("]")))
    proc = getattr(sb, "_proc", None)
    if proc is not None:  # local: the host ends of the same pipes
        inodes |= {os.fstat(f.fileno()).st_ino for f in (proc.stdin, proc.stdout)}
    return inodes


def _works(sb: Sandbox, exact: bool = True) -> None:
    """The sandbox answers correctly.

    ``exact=False`` while an agent process writes into other commands' pipes (their output is
    the agent's data; the frames are not).
    """
    nonce = secrets.token_hex(8)
    r = sb.exec(["python3", "-c", "import sys; print(sys.argv[1][::-1])", nonce])
    if exact:
        assert (r.exit_code, r.stdout, r.stderr) == (0, nonce[::-1] + "\n", ""), r
    else:
        assert r.exit_code == 0 and nonce[::-1] + "\n" in r.stdout, r
    sb.write_file("check.txt", nonce)
    assert sb.read_file("check.txt") == nonce.encode()


def test_helper_is_pid1_and_unreachable(sandbox: Sandbox) -> None:
    channel = _channel_inodes(sandbox)
    assert channel, "could not find the helper's channel from the host"
    r = sandbox.exec(["python3", "-c", PROBE, FORGED.hex()], timeout=60)
    assert r.exit_code == 0, r
    report = json.loads(r.stdout.rsplit("REPORT:", 1)[1])
    assert report["helper_ppid"] == 1 and sandbox.helper_pid == 1  # type: ignore[attr-defined]
    got = report["got"]
    control = {how.split()[0] for pid, how, _, _ in got if pid == report["child"]}
    assert {"open", "read"} <= control, f"the probe failed against its own child: {got}"
    assert not [g for g in got if g[0] == 1], f"reached the helper: {[g for g in got if g[0] == 1]}"
    stolen = [g for g in got if g[2] in channel]
    assert not stolen, f"obtained the channel: {stolen}"
    _works(sandbox)


def test_signals_cannot_kill_or_stop_the_helper(sandbox: Sandbox) -> None:
    all_signals = " ".join(f"kill -{n} 1 2>/dev/null;" for n in range(1, 32) if n not in (9, 19))
    r = sandbox.exec(f"{all_signals} kill -9 1; kill -STOP 1; echo sent")
    assert r.stdout == "sent\n", r
    _works(sandbox)
    r = sandbox.exec("sleep 100 & kill -9 -1; echo after")  # every process it may signal, but itself
    assert r.stdout == "after\n", r
    _works(sandbox)
    assert processes_inside(sandbox) == []
    r = sandbox.exec(
        [
            "python3",
            "-c",
            "import os, signal\nfor s in range(1, 65):\n try: os.kill(1, s)\n except OSError: pass\nprint('done')",
        ]
    )
    assert r.stdout == "done\n", r
    _works(sandbox)


def test_workspace_links_into_the_helper_are_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    """A link to the helper's own descriptors or a FIFO never turns a host file operation into channel I/O.

    (``/proc/self`` is the helper when it opens the file.)
    """
    links = " && ".join(f"ln -s /proc/{who}/fd/{n} {who}{n}" for who in ("self", "1") for n in range(12))
    assert sandbox.exec(f"{links} && ln -s /dev/stdout out && ln -s /proc/self/mem mem && mkfifo fifo").ok
    names = [f"{who}{n}" for who in ("self", "1") for n in range(12)] + ["out", "mem", "fifo"]
    for name in names:
        for attempt in (lambda n=name: sandbox.read_file(n), lambda n=name: sandbox.write_file(n, FORGED)):
            try:
                attempt()
            except OSError:
                pass  # refused (not a regular file, or no such file)
            _works(sandbox)
    sandbox.download(".", tmp_path / "dl")  # links outside are dropped by the host, the FIFO is skipped
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["check.txt"]
    sandbox.reset()
    _works(sandbox)


def test_links_in_the_middle_of_a_path_and_swapped_directories(sandbox: Sandbox, tmp_path: Path) -> None:
    """Links as directory components, and directories swapped for links, never reach the helper.

    A link as a *directory* component (``d/1`` with ``d -> /proc/self/fd``, chains of links,
    ``..`` through links), and a directory swapped with such a link while the host downloads,
    never reach the helper's descriptors or /proc files: each attempt is refused with an
    OSError or reads only the agent's own files.
    """
    assert sandbox.exec(
        "ln -s /proc/self ps && ln -s /proc/self/fd pf && ln -s /proc/thread-self pt && "
        "ln -s /proc/1/task p1t && mkdir -p a/b && ln -s ../../ps a/b/s && ln -s .. up"
    ).ok
    for path in (
        "pf/0",
        "pf/1",
        "pt/fd/1",
        "p1t/1/fd/0",
        "a/b/s/fd/1",
        "ps/environ",
        "ps/mem",
        "ps/cmdline",
        "ps/fdinfo/1",
        "up/../proc/self/fd/1",
        "a/b/s/root/proc/self/fd/0",
    ):
        with pytest.raises(OSError, match=r"not a regular file|Permission denied"):
            sandbox.read_file(path)
        with pytest.raises(OSError, match=r"not a regular file|Permission denied"):
            sandbox.write_file(path, FORGED)
        _works(sandbox)
    assert sandbox.exec("rm -f ps pf pt p1t up a/b/s && mkdir real && printf GOOD > real/environ").ok
    swapper = (
        "import os\nsteps = [lambda: os.rename('real', 'held'), lambda: os.symlink('/proc/self', 'real'),\n"
        "         lambda: os.unlink('real'), lambda: os.rename('held', 'real')]\nwhile True:\n"
        " for step in steps:\n  try:\n   step()\n  except OSError:\n   pass\n"
    )
    assert sandbox.exec(["sh", "-c", f'setsid nohup python3 -c "{swapper}" >/dev/null 2>&1 &']).ok
    for i in range(20):
        try:
            sandbox.download(".", tmp_path / str(i))
        except OSError:
            continue  # the tree changed under the listing: refused, not misread
        got = {
            p.relative_to(tmp_path / str(i)).as_posix(): p.read_bytes()
            for p in (tmp_path / str(i)).rglob("*")
            if p.is_file() and not p.is_symlink()
        }
        assert set(got) <= {"check.txt", "real/environ", "held/environ"}, got
        assert all(v == b"GOOD" for k, v in got.items() if k != "check.txt"), got
    watch = (
        "import os, time\nend = time.time() + 5\nwhile time.time() < end:\n"
        " if os.path.islink('real'):\n  print('link')\n  break\n"
    )
    swapped = sandbox.exec(["python3", "-c", watch])
    assert swapped.stdout == "link\n", f"the swapper did not run: {swapped}"
    sandbox.kill_processes()
    _works(sandbox)


def test_no_host_environment_inside(make: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "agentgym-host-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("AGENTGYM_HOST_SECRET", secret)
    sb = make()
    probe = (
        "import os\nout = [repr(dict(os.environ))]\n"
        "for p in os.listdir('/proc'):\n"
        " for f in ('environ', 'cmdline'):\n"
        "  try: out.append(open('/proc/%s/%s' % (p, f), 'rb').read().decode('latin-1'))\n"
        "  except OSError: pass\n"
        "print('\\n'.join(out)); print(len(out))"
    )
    r = sb.exec(["python3", "-c", probe])
    assert r.ok and int(r.stdout.split()[-1]) >= 3, r
    r2 = sb.exec("env; cat /proc/*/environ 2>/dev/null; ls /proc; echo")
    for text in (r.stdout, r2.stdout):
        assert secret not in text and "AGENTGYM_HOST_SECRET" not in text


def test_no_host_writable_path_visible(sandbox: Sandbox) -> None:
    probe = r"""
import os, stat
# the sandbox's own filesystems: its tmpfs, its procfs/sysfs views, and the private
# devpts and mqueue instances of its own namespaces (nothing in them reaches the host)
own = ("/proc", "/sys", "/workspace", "/tmp", "/dev/shm", "/dev/pts", "/dev/mqueue")
found = []
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in own]
    for name in [root] + [os.path.join(root, f) for f in files]:
        try:
            st = os.lstat(name)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or stat.S_ISCHR(st.st_mode):
            continue  # links resolve elsewhere; character devices (/dev/null...) are not files
        if os.access(name, os.W_OK):
            found.append(name)
print("\n".join(found))
"""
    r = sandbox.exec(["python3", "-c", probe], timeout=60)
    assert r.exit_code == 0, r
    assert r.stdout.strip() == "", f"writable outside the sandbox's own tmpfs: {r.stdout}"
    mounts = sandbox.exec("cat /proc/self/mountinfo").stdout
    assert "agentgym-sbx" not in mounts and "helper.log" not in mounts, mounts


def test_local_writable_places_are_not_host_directories() -> None:
    require_bwrap()
    with LocalSandbox() as sb:
        marker = secrets.token_hex(8)
        assert sb.exec(f"echo {marker} > /workspace/m && echo {marker} > /tmp/m && echo {marker} > /dev/shm/m").ok
        assert [p for p in sb.host_dir.rglob("*") if p.is_file()] == []
        assert sb.host_workspace is None
        assert sb.read_file("m") == f"{marker}\n".encode()


def test_disk_quota_and_inode_cap(make: Factory) -> None:
    sb = make(config=small_config(disk_mb=8, max_inodes=300, max_file_mb=64))
    r = sb.exec("dd if=/dev/zero of=big bs=1M count=20")
    assert not r.ok and "No space left on device" in r.stderr, r
    assert int(sb.exec("stat -c %s big").stdout) <= 8 * 1024 * 1024
    assert sb.exec("rm big && dd if=/dev/zero of=ok bs=1M count=4 && rm ok").ok  # space comes back
    r = sb.exec(
        [
            "python3",
            "-c",
            "import os\nn = 0\ntry:\n while n < 2000:\n  open('f%d' % n, 'w').close()\n"
            "  n += 1\nexcept OSError as e:\n print(n, e.strerror)",
        ]
    )
    count, _, message = r.stdout.strip().partition(" ")
    assert message == "No space left on device" and 200 < int(count) <= 300, r
    for scratch in ("/tmp", "/dev/shm"):
        r = sb.exec(
            [
                "python3",
                "-c",
                "import os, sys\nn = 0\ntry:\n while n < 2000:\n  os.mkdir(sys.argv[1] + '/d%d' % n)\n"
                "  n += 1\nexcept OSError as e:\n print(n, e.strerror)",
                scratch,
            ]
        )
        assert r.stdout.strip().endswith("No space left on device") and int(r.stdout.split()[0]) <= 300, r
        assert sb.exec(f"rm -rf {scratch}/d*").ok
    sb.reset()  # the helper still works on a full disk and frees it
    _works(sb)


def test_kill_processes_reaps_orphans(sandbox: Sandbox) -> None:
    """The helper is init: orphans that exit are reaped, not left as zombies."""
    sandbox.exec("for i in $(seq 50); do (sleep 0.01 &) ; done; sleep 0.5")
    r = sandbox.exec("grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l")
    assert r.stdout.strip() == "0", r


def test_oversized_request_kills_only_that_helper(make: Factory) -> None:
    """The helper bounds what it accepts: a frame beyond its limits ends it (no allocation)."""
    sb = make()
    sb._channel.send(b"\x7f\xff\xff\xff\x00\x00\x00\x00")  # type: ignore[attr-defined]
    with pytest.raises(SandboxError):
        sb.exec("true")
    with pytest.raises(SandboxError, match="broken"):
        sb.exec("true")


def test_concurrent_attack_while_host_transfers(sandbox: Sandbox) -> None:
    """Forged frames on every reachable descriptor during large transfers change nothing the host receives."""
    sandbox.exec(
        "nohup python3 -c \"import os, time\nwhile True:\n for p in os.listdir('/proc'):\n"
        "  for n in range(8):\n   try:\n    fd = os.open('/proc/%s/fd/%d' % (p, n), os.O_WRONLY | os.O_NONBLOCK)\n"
        "    os.write(fd, bytes.fromhex('" + FORGED.hex() + "')); os.close(fd)\n"
        '   except OSError: pass\n time.sleep(0.001)" >/dev/null 2>&1 &'
    )
    data = os.urandom(3 * 1024 * 1024)
    errors: list[BaseException] = []

    def transfer() -> None:
        try:
            for _ in range(3):
                sandbox.write_file("blob.bin", data)
                assert sandbox.read_file("blob.bin") == data
                _works(sandbox, exact=False)
        except BaseException as e:  # surfaced below
            errors.append(e)

    t = threading.Thread(target=transfer)
    t.start()
    t.join(120)
    assert not errors, errors
    assert sandbox.kill_processes() >= 1


RESOURCE_PROBE = r"""
import os, resource, subprocess
child = subprocess.Popen(["sleep", "30"])
attacks = [("prlimit", lambda p: resource.prlimit(p, resource.RLIMIT_CPU, (1, 1))),
           ("prlimit-nofile", lambda p: resource.prlimit(p, resource.RLIMIT_NOFILE, (3, 3))),
           ("affinity", lambda p: os.sched_setaffinity(p, {0})),
           ("nice", lambda p: os.setpriority(os.PRIO_PROCESS, p, 19)),
           ("pgrp-nice", lambda p: os.setpriority(os.PRIO_PGRP, p, 19)),
           ("idle", lambda p: os.sched_setscheduler(p, os.SCHED_IDLE, os.sched_param(0))),
           ("user-nice", lambda p: os.setpriority(os.PRIO_USER, os.getuid(), 19))]
for target, label in ((1, "helper"), (child.pid, "own")):
    for name, attack in attacks:
        try:
            attack(target)
            print(label, name, "ok")
        except OSError as e:
            print(label, name, e.strerror)
child.kill()
"""


def test_same_uid_syscalls_cannot_reach_the_helper(sandbox: Sandbox) -> None:
    """Prlimit, scheduling and priority calls are refused for the helper, not for the attacker's processes.

    They need no ptrace rights, only the same uid (a lowered RLIMIT_CPU hard limit would get
    the helper SIGKILLed).
    """
    r = sandbox.exec(["python3", "-c", RESOURCE_PROBE])
    assert r.exit_code == 0, r
    results = {" ".join(line.split()[:2]): " ".join(line.split()[2:]) for line in r.stdout.splitlines()}
    helper = {k: v for k, v in results.items() if k.startswith("helper ")}
    assert len(helper) == 7 and all(v == "Operation not permitted" for v in helper.values()), results
    for name in ("prlimit", "prlimit-nofile", "affinity", "nice", "idle"):
        assert results[f"own {name}"] == "ok", results  # the probe works on what it owns
    assert sandbox.exec(["python3", "-c", "while True: pass"], timeout=3).timed_out  # CPU use goes on
    _works(sandbox)
    assert sandbox.exec("nice -n 5 true && ulimit -n 64 && ulimit -t 100").ok  # limits on oneself still work


COMPAT_PROBE = r"""
import ctypes, mmap, subprocess
# x86_64 code that makes the i386 prlimit64 call (int 0x80, nr 340) on pid edi, reading only
code = bytes([0xB8, 0x54, 0x01, 0x00, 0x00, 0x89, 0xFB, 0x31, 0xC9, 0x31, 0xD2, 0x31, 0xF6, 0xCD, 0x80, 0xC3])
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
i386_prlimit = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
libc = ctypes.CDLL(None, use_errno=True)
child = subprocess.Popen(["sleep", "30"])
x32 = libc.syscall(0x40000000 | 302, 1, 7, None, None)
print(i386_prlimit(1), i386_prlimit(child.pid), x32, ctypes.get_errno())
child.kill()
"""


def test_compat_syscall_abis_are_fenced_too(sandbox: Sandbox) -> None:
    """The seccomp fence also covers the i386 entry (``int 0x80``) and the x32 ABI.

    So the same calls cannot be made under another syscall number.
    """
    import platform

    if platform.machine() != "x86_64":  # only x86_64 has these alternative entries
        return
    r = sandbox.exec(["python3", "-c", COMPAT_PROBE])
    assert r.exit_code == 0, r
    helper, own, x32, err = (int(v) for v in r.stdout.split())
    assert own == 0, r  # the i386 call itself works (on the attacker's own child)
    assert helper == -1, r  # -EPERM on pid 1
    assert x32 == -1 and err == 1, r  # EPERM, not ENOSYS: refused before the kernel looks
