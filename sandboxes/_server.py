"""agentgym sandbox helper: one long-lived process inside the sandbox that runs commands.

Standalone, stdlib only: it runs under the sandbox's own ``/usr/bin/python3`` (Debian's,
inside bubblewrap namespaces or a container) and forks every command, so a command
costs a fork/exec instead of building namespaces or a ``docker exec``.

Protocol on the original stdin/stdout: frames of ``>II`` (JSON length, blob length),
a JSON object, then the raw blob. One request, one response; requests are handled
one at a time. Configuration is a JSON object in ``argv[1]``.
"""

import io
import json
import os
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import time

HDR = struct.Struct(">II")
CFG = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
WORKDIR = CFG.get("workdir", "/workspace")
OUTPUT_LIMIT = int(CFG.get("output_limit", 65536))
BASE_ENV = dict(CFG.get("env", {}))
SWEEP = bool(CFG.get("sweep", False))  # only when we own a pid namespace
LIMITS = CFG.get("rlimits", {})
MAX_BLOB = 1 << 30
DEVNULL_FD = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # commands' stdin, opened once
OOM_WORDS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"out of memory")
RLIMITS = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU, "nproc": resource.RLIMIT_NPROC,
           "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE}


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
        return bytes(self.head) + ("\n[... %d bytes truncated ...]\n" % cut).encode() + tail, True


def set_limits():
    """Limit ourselves, once, so every command inherits the limits from birth (no
    preexec_fn: that would force fork over vfork and triple the cost of a command).
    CPU time is the exception: it is per process and cumulative, so each command gets
    it right after it starts (see op_exec)."""
    for name, value in LIMITS.items():
        if value is not None and name != "cpu":
            resource.setrlimit(RLIMITS[name], (int(value), int(value)))
    # a handler (not SIG_IGN, which children would inherit): over-size writes fail with EFBIG
    signal.signal(signal.SIGXFSZ, lambda *a: None)


OOM_FILES = [p for p in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
             if os.path.exists(p)]


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


def sweep(exclude):
    """Kill every process in our pid namespace but pid 1, us and ``exclude``; returns
    how many distinct processes were killed."""
    me, killed = os.getpid(), set()
    for _ in range(200):
        victims = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (1, me, exclude):
                continue
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != b"Z":
                victims.append(int(name))
        if not victims:
            return len(killed)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        time.sleep(0.005)
    return len(killed)


SESSIONS = set()  # commands' session ids, for kill_processes without a pid namespace


def op_kill(req, blob):
    """Kill every process in the sandbox but the helper (and the namespace's init)."""
    if SWEEP:
        return {"killed": sweep(None)}, b""
    killed = 0
    for sid in list(SESSIONS):
        try:
            os.killpg(sid, signal.SIGKILL)
            killed += 1
        except OSError:
            SESSIONS.discard(sid)
    return {"killed": killed}, b""


def path_of(p):
    return os.path.join(WORKDIR, p) if p else WORKDIR


def op_exec(req, blob):
    argv = req["argv"]
    env = dict(BASE_ENV)
    env.update(req.get("env") or {})
    timeout = float(req.get("timeout", 30))
    stdin = blob if req.get("stdin") else None
    oom0 = oom_count()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=path_of(req.get("cwd")), env=env, start_new_session=True,
            stdin=subprocess.PIPE if stdin is not None else DEVNULL_FD,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
    except OSError as e:  # like a shell: 127 not found, 126 not executable (or bad cwd)
        code = 127 if isinstance(e, FileNotFoundError) and e.filename == argv[0] else 126
        res = {"exit_code": code, "timed_out": False, "duration": time.monotonic() - start, "out_len": 0,
               "truncated": False, "oom_killed": False}
        return res, ("%s: %s\n" % (e.filename or argv[0], e.strerror)).encode()
    if not SWEEP:
        SESSIONS.add(proc.pid)
    if LIMITS.get("cpu") is not None:
        try:
            resource.prlimit(proc.pid, resource.RLIMIT_CPU, (LIMITS["cpu"], LIMITS["cpu"]))
        except OSError:  # already exited
            pass
    timed_out = pump(proc, stdin, start + timeout)
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
        if SWEEP:
            sweep(None)
        code = proc.wait()
    duration = time.monotonic() - start
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            f.close()
    o, otrunc = proc.out.value()
    e, etrunc = proc.err.value()
    exit_code = 124 if timed_out else (128 - code if code < 0 else code)
    oom = False
    if not timed_out and exit_code != 0:
        oom1 = oom_count()
        oom = (oom0 is not None and oom1 is not None and oom1 > oom0) or any(w in e[-4096:] for w in OOM_WORDS)
    res = {"exit_code": exit_code, "timed_out": timed_out, "duration": duration, "out_len": len(o),
           "truncated": otrunc or etrunc, "oom_killed": oom}
    return res, o + e


def pump(proc, stdin, deadline):
    """Feed stdin and collect stdout/stderr into bounded buffers until both close, the
    process has exited for a moment (a background child may hold the pipes), or the
    deadline. Returns whether the deadline passed."""
    proc.out, proc.err = Bounded(OUTPUT_LIMIT), Bounded(OUTPUT_LIMIT)
    poller = select.poll()
    sinks = {proc.stdout.fileno(): proc.out, proc.stderr.fileno(): proc.err}
    for fd in sinks:
        poller.register(fd, select.POLLIN)
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
            for fd, ev in poller.poll(min(deadline - now, 0.05 if pidfd is None or exited_at else 3600) * 1000):
                if fd == pidfd:
                    poller.unregister(fd)
                    exited_at = time.monotonic()
                    proc.poll()
                    continue
                if fd == win:
                    try:
                        view = view[os.write(fd, view[:65536]):]
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
    with open(path_of(req["path"]), "rb") as f:
        if os.fstat(f.fileno()).st_size > MAX_BLOB:
            raise OSError(27, "file too large to read through the sandbox (> 1 GiB)", req["path"])
        return {}, f.read()


def op_write(req, blob):
    path = path_of(req["path"])
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    if req.get("mode") is not None:
        os.chmod(path, req["mode"])
    return {}, b""


def op_tar_out(req, blob):
    path = path_of(req.get("path"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if os.path.isdir(path) and not os.path.islink(path):
            for name in sorted(os.listdir(path)):
                tar.add(os.path.join(path, name), arcname=name)
        else:
            tar.add(path, arcname=os.path.basename(path))
    return {}, buf.getvalue()


def op_tar_in(req, blob):
    dest = path_of(req.get("dest"))
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        for m in tar.getmembers():
            target = os.path.join(dest, m.name)
            if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target)):
                remove(target)
        tar.extractall(dest)
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


MANIFEST = {}


def op_snapshot(req, blob):
    global MANIFEST
    MANIFEST = walk()
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
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
            tar.extractall(WORKDIR)
    for rel in req.get("names", []):
        p = os.path.join(WORKDIR, rel)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        want = MANIFEST[rel]
        if want[0] == "f" and not stat.S_ISLNK(st.st_mode):
            os.utime(p, ns=(want[3], want[3]))
            os.chmod(p, stat.S_IMODE(want[1]))
        MANIFEST[rel] = entry(os.lstat(p), p)
    for rel, want in MANIFEST.items():  # directory modes last: a read-only dir blocks restores
        if want[0] == "d" and os.path.isdir(os.path.join(WORKDIR, rel)):
            os.chmod(os.path.join(WORKDIR, rel), stat.S_IMODE(want[1]))
    return {}, b""


OPS = {"exec": op_exec, "read": op_read, "write": op_write, "tar_out": op_tar_out, "tar_in": op_tar_in,
       "snapshot": op_snapshot, "diff": op_diff, "restore": op_restore, "kill": op_kill,
       "ping": lambda req, blob: ({"pid": os.getpid()}, b"")}


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
        data = data[os.write(fd, data):]


def main():
    try:  # non-dumpable: processes we start (same uid) cannot ptrace us or open our pipes
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    set_limits()
    send(wfd, {"ok": True, "ready": True, "pid": os.getpid()})
    while True:
        head = read_exact(rfd, HDR.size)
        if head is None:
            return
        jlen, blen = HDR.unpack(head)
        req = json.loads(read_exact(rfd, jlen) or b"{}")
        blob = read_exact(rfd, blen) if blen else b""
        op = req.get("op")
        if op == "exit":
            send(wfd, {"ok": True})
            return
        try:
            res, data = OPS[op](req, blob)
            res["ok"] = True
            send(wfd, res, data)
        except OSError as e:
            send(wfd, {"ok": False, "errno": e.errno, "error": e.strerror or str(e), "path": req.get("path")})
        except Exception as e:  # report, keep serving
            send(wfd, {"ok": False, "errno": None, "error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
