"""agentgym sandbox helper: one long-lived process inside the sandbox that runs commands.

Standalone, stdlib only: it runs under the sandbox's own ``/usr/bin/python3`` (Debian's,
inside bubblewrap namespaces or a container) and forks every command, so a command
costs a fork/exec instead of building namespaces or a ``docker exec``.

Protocol on the original stdin/stdout: frames of ``>II`` (JSON length, blob length),
a JSON object, then the raw blob. Every request carries an ``id`` that its response
echoes. One request, one response, handled one at a time. Configuration is a JSON
object in ``argv[1]``.

The channel is ours alone: the helper is the init (PID 1) of the sandbox's pid
namespace and makes itself non-dumpable before anything else, so the commands it runs
(same uid) can neither ptrace it, nor open ``/proc/1/fd``, ``/proc/1/mem`` or
``/proc/1/environ``, nor ``pidfd_getfd`` its descriptors, nor kill it (signals from
inside a pid namespace reach its init only for the signals it handles: SIGCHLD and
SIGXFSZ, both harmless here). Channel descriptors are close-on-exec; commands get fresh
pipes. File operations refuse anything that is not a regular file or directory (a FIFO,
a ``/proc`` magic link to our own pipes), so a workspace symlink cannot turn a host
``read_file``/``write_file`` into a read or write of the channel.

What the same uid may still do to a non-dumpable process without ptrace rights
(``prlimit``, ``sched_setaffinity``/``setscheduler``/``setparam``/``setattr``,
``setpriority``, ``ioprio_set``) is refused by a seccomp filter inherited by every
command, when aimed at pid 1 or at the whole uid (x86_64, i386, aarch64; other
architectures get no filter). Not covered here: exhausting what the sandbox's processes
share (the pids limit: the helper then reports commands that cannot start, and
``kill_processes`` still works); the host bounds and validates every frame it gets.
"""

import ctypes

# First thing: no process we start may inspect or trace us, whatever happens below.
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
if _LIBC.prctl(3, 0, 0, 0, 0) != 0:  # PR_GET_DUMPABLE = 3
    raise SystemExit("agentgym-helper: cannot make itself non-dumpable; refusing to run commands")

import errno  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import time  # noqa: E402

HDR = struct.Struct(">II")
CFG = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
WORKDIR = CFG.get("workdir", "/workspace")
OUTPUT_LIMIT = int(CFG.get("output_limit", 65536))
BASE_ENV = dict(CFG.get("env", {}))
PIDNS = bool(CFG.get("sweep", False))  # we are init of our own pid namespace
LIMITS = CFG.get("rlimits", {})
MAX_BLOB = int(CFG.get("max_blob", 1 << 30))  # largest file or tar we send or accept
MAX_HEADER = 1 << 20
DEVNULL_FD = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # commands' stdin, opened once
OOM_WORDS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")
RLIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "core": resource.RLIMIT_CORE,
}
SPECIAL_DEVS = {os.stat(p).st_dev for p in ("/proc", "/sys") if os.path.isdir(p)}
SESSIONS: set = set()  # commands' session ids, to kill them without a pid namespace
WAKE_R, WAKE_W = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # SIGCHLD wakes our poll loops


class Bounded:
    """Keeps the head and tail of a stream within ``limit`` bytes; counts the rest."""

    def __init__(self, limit):
        self.limit, self.head, self.tail, self.total = limit, bytearray(), bytearray(), 0

    def add(self, data):
        self.total += len(data)
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            keep = self.limit - self.limit // 2
            if len(self.tail) > 2 * keep + 65536:
                del self.tail[: len(self.tail) - keep]

    def value(self):
        keep = self.limit - self.limit // 2
        tail = bytes(self.tail[-keep:]) if keep else b""
        cut = self.total - len(self.head) - len(tail)
        if cut <= 0:
            return bytes(self.head) + bytes(self.tail), False
        return bytes(self.head) + f"\n[... {cut} bytes truncated ...]\n".encode() + tail, True


def too_big(what):
    return OSError(
        errno.EFBIG,
        f"{what} larger than {MAX_BLOB >> 20} MiB, the sandbox's transfer limit (raise SandboxConfig.max_transfer_mb)",
    )


class Capped(io.RawIOBase):
    """A write-only buffer that refuses to grow past MAX_BLOB (tar output)."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def tell(self):
        return len(self.buf)

    def write(self, data):
        if len(self.buf) + len(data) > MAX_BLOB:
            raise too_big("the archive is")
        self.buf += data
        return len(data)


def set_limits():
    """Limit ourselves, once, so every command inherits the limits from birth.

    No preexec_fn: that would force fork over vfork and triple the cost of a command.
    CPU time is the exception: it is per process and cumulative, so each command gets
    it right after it starts (see op_exec).
    """
    for name, value in LIMITS.items():
        if value is not None and name != "cpu":
            resource.setrlimit(RLIMITS[name], (int(value), int(value)))
    # handlers (not SIG_IGN, which children would inherit; exec resets handlers):
    # over-size writes fail with EFBIG; a child's exit wakes the poll loops so we reap
    signal.signal(signal.SIGXFSZ, lambda *a: None)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.set_wakeup_fd(WAKE_W, warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # -c installed KeyboardInterrupt; as init, ignored
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # subprocess restores it for commands


# Same-uid syscalls that reach another process without ptrace rights. As PID 1 and
# non-dumpable we are safe from ptrace and signals, but not from these: lowering our
# RLIMIT_CPU hard limit would get us SIGKILLed, RLIMIT_NOFILE/AS/NPROC would cripple us,
# SCHED_IDLE or nice 19 would starve us into host timeouts. A seccomp filter (inherited
# by every command) refuses them when aimed at pid 1, or at the whole uid.
_NRS = {  # audit arch -> {syscall: (number, rule)}; rule "pid": arg0 == 1; "who": arg0 == whole-uid or arg1 == 1
    0xC000003E: {
        "prlimit64": 302,
        "sched_setaffinity": 203,
        "sched_setscheduler": 144,
        "sched_setparam": 142,
        "sched_setattr": 314,
        "setpriority": 141,
        "ioprio_set": 251,
    },  # x86_64
    0x40000003: {
        "prlimit64": 340,
        "sched_setaffinity": 241,
        "sched_setscheduler": 156,
        "sched_setparam": 154,
        "sched_setattr": 351,
        "setpriority": 97,
        "ioprio_set": 289,
    },  # i386 (int 0x80 from x86_64 too)
    0xC00000B7: {
        "prlimit64": 261,
        "sched_setaffinity": 122,
        "sched_setscheduler": 119,
        "sched_setparam": 118,
        "sched_setattr": 274,
        "setpriority": 140,
        "ioprio_set": 30,
    },  # aarch64
}
_WHOLE_UID = {"setpriority": 2, "ioprio_set": 3}  # PRIO_USER, IOPRIO_WHO_USER


def fence_pid1():
    """Install the filter above (no-op on other architectures: they are not covered)."""
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM
    prog: list[list[int]] = []  # [code, jt, jf, k]
    fixups: list[tuple[int, int, str]] = []  # (index, field, label)
    labels: dict[str, int] = {}

    def op(code, k, jt=None, jf=None):
        for field, label in ((1, jt), (2, jf)):
            if label is not None:
                fixups.append((len(prog), field, label))
        prog.append([code, 0, 0, k])

    op(ld, 4)  # arch
    for arch in _NRS:
        op(jeq, arch, jt=f"arch{arch:x}")
    op(ret, allow)
    for arch, nrs in _NRS.items():
        labels[f"arch{arch:x}"] = len(prog)
        op(ld, 0)  # nr
        if arch == 0xC000003E:
            op(jset, 0x40000000, jt="deny")  # x32 ABI: not used by anything we run
        for name, nr in nrs.items():
            op(jeq, nr, jt=f"who_{name}" if name in _WHOLE_UID else "pid")
        op(ret, allow)
    labels["pid"] = len(prog)
    op(ld, 16)  # args[0], low 32 bits
    op(jeq, 1, jt="deny")
    op(ret, allow)
    for name, whole in _WHOLE_UID.items():
        labels[f"who_{name}"] = len(prog)
        op(ld, 16)
        op(jeq, whole, jt="deny")
        op(ld, 24)  # args[1]
        op(jeq, 1, jt="deny")
        op(ret, allow)
    labels["deny"] = len(prog)
    op(ret, deny)
    for index, field, label in fixups:
        prog[index][field] = labels[label] - index - 1
        assert 0 <= prog[index][field] < 256
    filt = (ctypes.c_uint64 * len(prog))(*[c | jt << 16 | jf << 24 | k << 32 for c, jt, jf, k in prog])

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Prog(len(prog), ctypes.addressof(filt))
    if _LIBC.prctl(38, 1, 0, 0, 0) != 0 or _LIBC.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # NO_NEW_PRIVS, SECCOMP
        raise SystemExit(f"agentgym-helper: cannot install its seccomp filter (errno {ctypes.get_errno()})")


def reap(current=None):
    """Collect every exited child (as PID 1 we inherit the sandbox's orphans).

    The status of ``current``, the command in flight, is left to its Popen.
    """
    try:
        os.read(WAKE_R, 4096)
    except OSError:
        pass
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        if current is not None and info.si_pid == current.pid:
            current.poll()
            current = None
            continue
        try:
            os.waitpid(info.si_pid, 0)
        except ChildProcessError:
            pass


OOM_FILES = [
    p for p in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control") if os.path.exists(p)
]


def oom_count():
    """The cgroup's OOM-kill counter (v2 or v1), or None outside a memory cgroup we can see."""
    for path in OOM_FILES:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
    return None


def others():
    """Live processes of our pid namespace other than us."""
    me, out = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):
                out.append(int(name))
    return out


def kill_all(current=None):
    """SIGKILL every other process in the sandbox until none is left; how many died."""
    if not PIDNS:
        killed = 0
        for sid in list(SESSIONS):
            try:
                killed += len([p for p in others() if os.getsid(p) == sid])
            except OSError:
                pass
            try:
                os.killpg(sid, signal.SIGKILL)
            except OSError:
                SESSIONS.discard(sid)
        reap(current)
        return killed
    seen = set()
    deadline = time.monotonic() + 30
    while True:
        alive = others()
        if not alive or time.monotonic() > deadline:
            break
        seen.update(alive)
        try:  # as init of the namespace: every process in it but us, atomically
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap(current)
        current = current if current is None or current.returncode is None else None
        time.sleep(0.001)
    reap(current)
    return len(seen)


def path_of(p):
    return os.path.join(WORKDIR, p) if p else WORKDIR


def open_file(path, flags, mode=0o644):
    """Open a regular file for the host.

    Anything else (FIFO, device, socket, a ``/proc`` or ``/sys`` file, our own descriptors
    through ``/proc/self/fd``) is refused without blocking, reading or writing it.
    """
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, mode)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_dev in SPECIAL_DEVS:
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file (the sandbox transfers only regular files)", path)
    return fd, st


def check(cond, what):
    if not cond:
        raise ValueError("bad request: " + what)


def op_exec(req, blob):
    argv, env_extra, cwd = req.get("argv"), req.get("env") or {}, req.get("cwd")
    check(isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), "argv")
    check(
        isinstance(env_extra, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env_extra.items()),
        "env",
    )
    check(cwd is None or isinstance(cwd, str), "cwd")
    env = dict(BASE_ENV)
    env.update(env_extra)
    timeout = float(req.get("timeout", 30))
    stdin = blob if req.get("stdin") else None
    oom0 = oom_count()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=path_of(cwd),
            env=env,
            start_new_session=True,
            stdin=subprocess.PIPE if stdin is not None else DEVNULL_FD,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as e:  # like a shell: 127 not found, 126 not executable (or bad cwd)
        failed = 127 if isinstance(e, FileNotFoundError) and e.filename == argv[0] else 126
        res = {
            "exit_code": failed,
            "timed_out": False,
            "duration": time.monotonic() - start,
            "out_len": 0,
            "truncated": False,
            "oom_killed": False,
        }
        return res, f"{e.filename or argv[0]}: {e.strerror}\n".encode()
    if not PIDNS:
        SESSIONS.add(proc.pid)
    if LIMITS.get("cpu") is not None:
        try:
            resource.prlimit(proc.pid, resource.RLIMIT_CPU, (LIMITS["cpu"], LIMITS["cpu"]))
        except OSError:  # already exited
            pass
    out, err_out = Bounded(OUTPUT_LIMIT), Bounded(OUTPUT_LIMIT)
    timed_out = pump(proc, stdin, start + timeout, out, err_out)
    code = proc.poll()
    if code is None and not timed_out:  # only without pidfd: pipes closed, process still running
        try:
            code = proc.wait(timeout=max(0.0, start + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if PIDNS:
            kill_all(proc)
        code = proc.wait()
    assert code is not None  # poll() gave the status, or one of the wait() calls above did
    duration = time.monotonic() - start
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            f.close()
    o, otrunc = out.value()
    err, etrunc = err_out.value()
    exit_code = 124 if timed_out else (128 - code if code < 0 else code)
    oom = False
    if not timed_out and exit_code != 0:
        oom1 = oom_count()
        oom = (oom0 is not None and oom1 is not None and oom1 > oom0) or any(w in err[-4096:] for w in OOM_WORDS)
    res = {
        "exit_code": exit_code,
        "timed_out": timed_out,
        "duration": duration,
        "out_len": len(o),
        "truncated": otrunc or etrunc,
        "oom_killed": oom,
    }
    return res, o + err


def pump(proc, stdin, deadline, out, err):
    """Feed stdin and collect stdout/stderr into the bounded buffers ``out`` and ``err``.

    Until both pipes close, the process has exited for a moment (a background child may hold
    the pipes), or the deadline. Reaps orphans as they exit. Returns whether the deadline passed.
    """
    poller = select.poll()
    sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    for fd in sinks:
        poller.register(fd, select.POLLIN)
    poller.register(WAKE_R, select.POLLIN)
    win = None
    if stdin is not None:
        view = memoryview(stdin)
        if view:
            win = proc.stdin.fileno()
            os.set_blocking(win, False)
            poller.register(win, select.POLLOUT)
        else:
            proc.stdin.close()
    try:  # wakes us the moment the process exits (no polling sleeps)
        pidfd = os.pidfd_open(proc.pid)
        poller.register(pidfd, select.POLLIN)
    except (AttributeError, OSError):
        pidfd = None
    open_fds, exited_at = len(sinks) + (win is not None), None
    try:
        while open_fds or exited_at is None:
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None:
                if pidfd is None and proc.poll() is not None:
                    exited_at = now
            elif now - exited_at > 0.1 or not open_fds:
                return False
            for fd, _ev in poller.poll(min(deadline - now, 0.05 if pidfd is None or exited_at else 3600) * 1000):
                if fd == WAKE_R:
                    reap(proc)
                    continue
                if fd == pidfd:
                    poller.unregister(fd)
                    exited_at = time.monotonic()
                    proc.poll()
                    continue
                if fd == win:
                    try:
                        view = view[os.write(fd, view[:65536]) :]
                    except OSError:
                        view = view[:0]
                    if not view:
                        poller.unregister(fd)
                        proc.stdin.close()
                        open_fds -= 1
                    continue
                data = os.read(fd, 1 << 16)
                if data:
                    sinks[fd].add(data)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return False


def op_read(req, blob):
    fd, st = open_file(path_of(req["path"]), os.O_RDONLY)
    with open(fd, "rb") as f:
        if st.st_size > MAX_BLOB:
            raise too_big("the file is")
        data = bytearray(f.read(st.st_size + 1))  # what stat promised; more if it grows
        while len(data) > st.st_size:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_BLOB:
                raise too_big("the file is")
        return {}, bytes(data)


def op_write(req, blob):
    path = path_of(req["path"])
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, _ = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with open(fd, "wb") as f:
        f.write(blob)
        if req.get("mode") is not None:
            os.fchmod(f.fileno(), int(req["mode"]))
    return {}, b""


def add_tree(tar, path, arcname):
    """Add ``path`` (not followed if a link) and, for a directory, its tree.

    Only directories, regular files and symlinks are archived; each file is opened with
    :func:`open_file` and must still be the inode that was listed.
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode):
        tar.addfile(tar.gettarinfo(path, arcname))
    elif stat.S_ISREG(st.st_mode):
        try:
            fd, fst = open_file(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.EINVAL):
                return  # replaced while we listed it
            raise
        with open(fd, "rb") as f:
            if (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino):
                info = tar.gettarinfo(arcname=arcname, fileobj=f)
                tar.addfile(info, f)
    if stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            add_tree(tar, os.path.join(path, name), arcname + "/" + name if arcname else name)


def op_tar_out(req, blob):
    path = path_of(req.get("path"))
    buf = Capped()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(path)):
                add_tree(tar, os.path.join(path, name), name)
        else:
            add_tree(tar, path, os.path.basename(path))
    return {}, bytes(buf.buf)


def extract(blob, dest):
    """Extract the host's tar into ``dest``.

    Only directories, regular files and symlinks, no absolute or ``..`` names; existing entries
    in the way are replaced, and a file is never written through a symlink or into anything but
    a regular file.
    """
    dirs = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        for m in tar:
            name = os.path.normpath(m.name)
            if name.startswith(("/", "..")) or name == ".":
                continue
            target = os.path.join(dest, name)
            if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target) and not os.path.islink(target)):
                remove(target)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if m.isdir():
                os.makedirs(target, exist_ok=True)
                os.chmod(target, 0o700 | m.mode)
                dirs.append((target, m))
            elif m.issym():
                os.symlink(m.linkname, target)
            elif m.isfile() or m.islnk():  # a hard link becomes a copy
                fd, _ = open_file(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with open(fd, "wb") as f:
                    shutil.copyfileobj(tar.extractfile(m), f)  # type: ignore[arg-type]  # never None for a file or link
                    os.fchmod(fd, m.mode & 0o7777)
                    os.utime(fd, (m.mtime, m.mtime))
    for target, m in reversed(dirs):
        os.chmod(target, m.mode & 0o7777)
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def op_tar_in(req, blob):
    dest = path_of(req.get("dest"))
    os.makedirs(dest, exist_ok=True)
    extract(blob, dest)
    return {}, b""


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, _ in os.walk(path):
            for d in dirs:
                p = os.path.join(root, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        os.unlink(path)


def entry(st, path):
    if stat.S_ISDIR(st.st_mode):
        return ["d", st.st_mode, 0, 0, 0, None]
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return ["f", st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, link]


def walk():
    """``{relpath: entry}`` for everything under WORKDIR, without following symlinks."""
    out = {}
    for root, dirs, files in os.walk(WORKDIR):
        for name in dirs + files:
            p = os.path.join(root, name)
            try:
                out[os.path.relpath(p, WORKDIR)] = entry(os.lstat(p), p)
            except FileNotFoundError:
                pass
    return out


MANIFEST: dict = {}


def op_snapshot(req, blob):
    fresh = walk()
    MANIFEST.clear()
    MANIFEST.update(fresh)
    return op_tar_out({}, b"")


def op_diff(req, blob):
    """First half of reset: delete what is new, list what must come back from the snapshot."""
    restore, seen = [], set()
    os.chmod(WORKDIR, 0o755)
    for root, dirs, files in os.walk(WORKDIR):
        for name in list(dirs) + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, WORKDIR)
            st = os.lstat(p)
            want = MANIFEST.get(rel)
            have = entry(st, p)
            if want is None or want[0] != have[0] or (want[0] == "d") != stat.S_ISDIR(st.st_mode):
                remove(p)
                if name in dirs:
                    dirs.remove(name)
                if want is not None:
                    restore.append(rel)
                continue
            seen.add(rel)
            if want[0] == "d":
                os.chmod(p, 0o700 | want[1])
            elif want != have:
                os.unlink(p)
                restore.append(rel)
    restore += [rel for rel in MANIFEST if rel not in seen and rel not in restore]
    return {"restore": restore}, b""


def op_restore(req, blob):
    """Second half of reset: extract the snapshot's members the host sent, refresh the manifest."""
    if blob:
        extract(blob, WORKDIR)
    for rel in req.get("names", []):
        p = os.path.join(WORKDIR, rel)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        want = MANIFEST[rel]
        if want[0] == "f" and not stat.S_ISLNK(st.st_mode):
            os.utime(p, ns=(want[3], want[3]), follow_symlinks=False)
            os.chmod(p, stat.S_IMODE(want[1]), follow_symlinks=False)
        MANIFEST[rel] = entry(os.lstat(p), p)
    for rel, want in MANIFEST.items():  # directory modes last: a read-only dir blocks restores
        p = os.path.join(WORKDIR, rel)
        if want[0] == "d" and os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, stat.S_IMODE(want[1]))
    return {}, b""


def op_kill(req, blob):
    return {"killed": kill_all()}, b""


OPS = {
    "exec": op_exec,
    "read": op_read,
    "write": op_write,
    "tar_out": op_tar_out,
    "tar_in": op_tar_in,
    "snapshot": op_snapshot,
    "diff": op_diff,
    "restore": op_restore,
    "kill": op_kill,
    "ping": lambda req, blob: ({"pid": os.getpid()}, b""),
}


def read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send(fd, obj, blob=b""):
    head = json.dumps(obj).encode()
    data = memoryview(HDR.pack(len(head), len(blob)) + head + blob)
    while data:
        data = data[os.write(fd, data) :]


def wait_readable(fd):
    """Block until the host writes, reaping orphans that exit meanwhile."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(WAKE_R, select.POLLIN)
    while True:
        events = dict(poller.poll())
        if WAKE_R in events:
            reap()
        if fd in events:
            return


def main():
    if PIDNS and os.getpid() != 1:
        raise SystemExit("agentgym-helper: expected to be PID 1 of the sandbox's pid namespace")
    if PIDNS:
        fence_pid1()
    rfd, wfd = os.dup(0), os.dup(1)  # close-on-exec (PEP 446); 0 and 1 become /dev/null
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    set_limits()
    while True:
        wait_readable(rfd)
        head = read_exact(rfd, HDR.size)
        if head is None:
            return
        jlen, blen = HDR.unpack(head)
        if jlen > MAX_HEADER or blen > MAX_BLOB + MAX_HEADER:
            send(wfd, {"ok": False, "errno": None, "id": None, "error": f"frame too large ({jlen}+{blen})"})
            return  # the stream cannot be trusted past this point
        raw, blob = read_exact(rfd, jlen), read_exact(rfd, blen) if blen else b""
        if raw is None or blob is None:
            return
        try:
            req = json.loads(raw)
            check(isinstance(req, dict) and isinstance(req.get("op"), str), "not a request")
        except ValueError as e:
            send(wfd, {"ok": False, "errno": None, "id": None, "error": f"malformed request: {e}"})
            return
        rid = req.get("id")
        if req["op"] == "exit":
            send(wfd, {"ok": True, "id": rid})
            return
        try:
            res, data = OPS[req["op"]](req, blob)
            res["ok"], res["id"] = True, rid
            send(wfd, res, data)
        except OSError as e:
            send(
                wfd,
                {
                    "ok": False,
                    "id": rid,
                    "errno": e.errno,
                    "error": e.strerror or str(e),
                    "path": req.get("path") if isinstance(req.get("path"), str) else None,
                },
            )
        except Exception as e:  # report, keep serving
            send(wfd, {"ok": False, "id": rid, "errno": None, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
