"""LocalSandbox: a host workspace directory and processes isolated with bubblewrap."""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal

from ._client import Channel, HelperSandbox, helper_argv, helper_env
from .base import SandboxConfig, SandboxError

WORKDIR = "/workspace"
SANDBOX_UID = 1000
HOST_UID_BASE = 1_000_000_000
"""Running as root, each sandbox runs as its own unused host uid from here, so
RLIMIT_NPROC (counted per uid) is a per-sandbox process limit."""

_ETC = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "ssl", "ca-certificates",
        "ca-certificates.conf", "nsswitch.conf", "mime.types", "python3", "python3.11", "bash.bashrc",
        "profile", "inputrc", "terminfo", "magic", "gitconfig", "debian_version", "os-release", "login.defs")
_PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:1000:1000:agent:/tmp:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
_GROUP = "root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n"
_HOSTS = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n"


class _PipeChannel(Channel):
    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._w, self._r, self._buf = proc.stdin.fileno(), proc.stdout.fileno(), bytearray()
        self._proc = proc

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._w, view) :]

    def recv_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise SandboxError("the sandbox helper did not answer in time")
            chunk = os.read(self._r, max(n - len(self._buf), 1 << 16))
            if not chunk:
                raise SandboxError(f"the sandbox helper exited (status {self._proc.poll()})")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def close(self) -> None:
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None and not f.closed:
                f.close()


def _bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError("bubblewrap not found: apt-get install bubblewrap (or sudo scripts/setup-system.sh)")
    return path


class LocalSandbox(HelperSandbox):
    """Commands run in Linux namespaces (bubblewrap) over a host temp directory.

    One helper process (``_server.py`` under ``/usr/bin/python3``) starts inside the
    namespaces with the sandbox and forks every command, so ``exec`` costs about a
    fork/exec.

    What it isolates:

    * **network**: own network namespace with only a down loopback, no DNS config
      (unless ``config.network``);
    * **filesystem**: an empty root with ``/usr`` (``/usr/local`` masked) and a few
      ``/etc`` files bound read-only, synthetic ``/etc/passwd``/``group``/``hosts``, private
      ``/proc``, read-only ``/dev`` (null, zero, random, tty...), ``/dev/shm`` (tmpfs,
      64 MiB) and ``/tmp`` (tmpfs, capped at ``memory_mb``). The workspace is the only host directory bound writable, at
      ``/workspace``. ``/root``, ``/home``, ``/work``, the host ``/tmp`` and everything else
      are absent;
    * **processes**: own pid, ipc, uts, cgroup and user namespaces (uid 1000 inside), no
      capabilities, new session (no terminal injection); on a timeout every process in
      the sandbox but the helper is killed; closing kills the namespace;
    * **resources** (rlimits per command): address space ``memory_mb``, CPU time
      ``cpu_seconds``, file size ``max_file_mb``, no core dumps; processes
      ``max_processes`` (per sandbox when the host runs as root: each sandbox gets its own
      unused host uid; otherwise the limit counts all of the user's processes, so it is
      not set and the pid namespace is the only bound).

    What it does not isolate: it shares the host kernel (a kernel exploit escapes);
    memory is capped per process (address space), not for the sandbox as a whole, and
    there is no cgroup CPU share or disk quota for the workspace; ``/usr`` of the host
    is readable (its installed software, not user data); the sandbox's processes run
    as the same uid as the helper (which is made non-dumpable so they cannot ptrace it,
    but they can kill it: that surfaces as :class:`SandboxError`).

    ``isolation="none"`` runs the helper directly on the host, in the workspace, for
    debugging only: no isolation at all, and ``workdir`` is the host path.
    """

    def __init__(
        self,
        files: str | Path | None = None,
        config: SandboxConfig | None = None,
        *,
        isolation: Literal["bwrap", "none"] = "bwrap",
        python: str = "/usr/bin/python3",
    ) -> None:
        super().__init__(config)
        if isolation not in ("bwrap", "none"):
            raise ValueError(f"isolation must be 'bwrap' or 'none', got {isolation!r}")
        if not os.path.exists(python):
            raise SandboxError(f"{python} not found: apt-get install python3 python3-pytest")
        self.isolation = isolation
        self._root = Path(tempfile.mkdtemp(prefix="agentgym-sbx-"))
        self.host_workspace = self._root / "workspace"
        self.host_workspace.mkdir()
        self.host_uid = os.getuid()
        self._proc: subprocess.Popen | None = None
        self._boot(lambda: self._start(python), files)

    def _start(self, python: str) -> None:
        cfg = self.config
        mb = 1024 * 1024
        rlimits = {"as": cfg.memory_mb * mb, "cpu": cfg.cpu_seconds, "fsize": cfg.max_file_mb * mb, "core": 0}
        as_root = os.geteuid() == 0 and self.isolation == "bwrap"
        if as_root:
            self.host_uid = HOST_UID_BASE + random.SystemRandom().randrange(1 << 24)
            rlimits["nproc"] = cfg.max_processes
            os.chown(self.host_workspace, self.host_uid, self.host_uid)
            os.chmod(self._root, 0o711)
        self.host_workspace.chmod(0o755)
        if self.isolation == "none":
            self.workdir = str(self.host_workspace)
            env = helper_env(cfg, home=str(self._root))
            env["PATH"] = os.environ.get("PATH", env["PATH"])
            server_cfg = {"workdir": self.workdir, "output_limit": cfg.output_limit, "env": env,
                          "rlimits": rlimits, "sweep": False}
            argv = helper_argv(python, server_cfg)
        else:
            server_cfg = {"workdir": WORKDIR, "output_limit": cfg.output_limit, "env": helper_env(cfg),
                          "rlimits": rlimits, "sweep": True}
            argv = self._bwrap_argv() + helper_argv(python, server_cfg)
        self._log = open(self._root / "helper.log", "wb")
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True,
            cwd=self._root, **({"user": self.host_uid, "group": self.host_uid, "extra_groups": []} if as_root else {}),
        )
        self._connect(_PipeChannel(self._proc), timeout=30.0)

    def _bwrap_argv(self) -> list[str]:
        cfg = self.config
        etc = self._root / "etc"
        etc.mkdir()
        for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("hosts", _HOSTS)):
            (etc / name).write_text(text)
            (etc / name).chmod(0o644)
        etc.chmod(0o755)
        argv = [_bwrap(), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
                "--ro-bind", "/usr", "/usr"]
        if cfg.network:
            argv += ["--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / d
            if host.is_symlink():
                argv += ["--symlink", os.readlink(host), f"/{d}"]
            elif host.is_dir():
                argv += ["--ro-bind", str(host), f"/{d}"]
        argv += ["--tmpfs", "/usr/local", "--dir", "/usr/local/bin",
                 "--symlink", "/usr/bin/python3", "/usr/local/bin/python", "--remount-ro", "/usr/local"]
        for name in _ETC:
            argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group", "hosts"):
            argv += ["--ro-bind", str(etc / name), f"/etc/{name}"]
        scratch = str(cfg.memory_mb * 1024 * 1024)  # tmpfs is host memory: cap it
        argv += ["--proc", "/proc", "--dev", "/dev", "--size", "67108864", "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                 "--size", scratch, "--tmpfs", "/tmp",
                 "--bind", str(self.host_workspace), WORKDIR, "--chdir", WORKDIR, "--remount-ro", "/"]
        return argv

    def _diagnose(self) -> str:
        try:
            log = (self._root / "helper.log").read_bytes()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""
        return f"\nhelper stderr:\n{log}" if log else ""

    @property
    def pid(self) -> int | None:
        """Host pid of the sandbox's outermost process (bwrap), while it runs."""
        return self._proc.pid if self._proc is not None else None

    def _release(self) -> None:
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=2.0 if self._shutdown_helper() else 0.0)
            except subprocess.TimeoutExpired:
                # --die-with-parent and the pid namespace take the rest down with bwrap.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if self.host_uid >= HOST_UID_BASE:
                _kill_uid(self.host_uid)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        shutil.rmtree(self._root, ignore_errors=True)


def _kill_uid(uid: int, patience: float = 2.0) -> None:
    """SIGKILL every host process running as ``uid`` until none is left."""
    deadline = time.monotonic() + patience
    while True:
        alive = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid == uid:
                        with open(f"/proc/{name}/stat", "rb") as f:
                            if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                                alive.append(int(name))
                except (OSError, IndexError):
                    pass
        if not alive or time.monotonic() > deadline:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
