"""LocalSandbox: processes isolated with bubblewrap, a tmpfs workspace with size and inode caps."""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ._client import Channel, HelperSandbox, helper_argv, helper_env
from .base import SandboxConfig, SandboxError

WORKDIR = "/workspace"
"""Default mount point of the workspace inside a sandbox (``workdir=`` changes it)."""
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/etc", "/proc", "/sys", "/dev", "/run", "/boot", "/var/lib")
"""Trees a workspace or extra directory may not be (or be under, or contain); ``/lib*`` counts as ``/lib``."""
SANDBOX_UID = 1000
HOST_UID_BASE = 1_000_000_000
"""Running as root, each sandbox runs as its own unused host uid from here, so
RLIMIT_NPROC (counted per uid) is a per-sandbox process limit."""

_ETC = (
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "nsswitch.conf",
    "mime.types",
    "python3",
    "python3.11",
    "bash.bashrc",
    "profile",
    "inputrc",
    "terminfo",
    "magic",
    "gitconfig",
    "debian_version",
    "os-release",
    "login.defs",
)
_PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "agent:x:1000:1000:agent:/tmp:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
_GROUP = "root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n"
_HOSTS = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n"
STDERR_TAIL = 4000
_WRAPPER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Run as root in a fresh private mount namespace (unshare): mount the scratch, workspace and
# extra tmpfs with size and inode caps (arguments: the scratch directory, then
# SOURCE OPTIONS DIRECTORY triples up to "--"), then drop to the sandbox's host uid and exec
# bwrap. The mounts exist only in that namespace and vanish with its last process.
_MOUNT_SCRIPT = (
    'scratch="$1"; shift; while [ "$1" != -- ]; do mount -t tmpfs -o "$2" "$1" "$3" || exit 1; shift 3; done; '
    'shift && mkdir -m 1777 "$scratch/tmp" "$scratch/shm" && exec "$@"'
)


def _within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def check_mount_points(workdir: str, extra_dirs: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """Validate a sandbox's workspace mount point and extra directories.

    Each must be an absolute, normalised path (no ``.``/``..`` part, no trailing or double
    slash), not ``/``, not equal to or nested with another one or ``/tmp``, and neither
    under nor above a system tree (:data:`SYSTEM_DIRS`, ``/lib*``).

    Args:
        workdir: Where the workspace tmpfs is mounted.
        extra_dirs: Where the extra empty tmpfs are mounted.

    Returns:
        ``(workdir, extra_dirs)``, the latter as a tuple.

    Raises:
        ValueError: a path breaks a rule (the message says which and how to fix it).
    """
    if isinstance(extra_dirs, str):
        raise ValueError(
            f"extra_dirs must be a sequence of paths, not the string {extra_dirs!r}: use ({extra_dirs!r},)"
        )
    extra = tuple(extra_dirs)
    named = [("workdir", workdir)] + [(f"extra_dirs[{i}]", d) for i, d in enumerate(extra)]
    for what, path in named:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{what} must be an absolute path inside the sandbox like '/app', got {path!r}")
        norm = os.path.normpath(path)
        if norm != path or "//" in path:
            raise ValueError(f"{what} must be a normalised path (no '.', '..', trailing or double slash): {path!r}")
        if path == "/":
            raise ValueError(f"{what} cannot be '/': pick a directory such as '/app'")
        first = "/" + path.split("/")[1]
        for tree in SYSTEM_DIRS:
            if _within(path, tree) or _within(tree, path) or (tree == "/lib" and first.startswith("/lib")):
                raise ValueError(
                    f"{what} {path!r} overlaps the system tree {tree}: use a directory outside "
                    f"{', '.join(SYSTEM_DIRS)} and /lib*, such as '/app'"
                )
        if _within(path, "/tmp") or _within("/tmp", path):
            raise ValueError(f"{what} {path!r} overlaps /tmp (the sandbox's scratch tmpfs): use another directory")
    for i, (what, path) in enumerate(named):
        for other_what, other in named[i + 1 :]:
            if _within(path, other) or _within(other, path):
                raise ValueError(
                    f"{what} {path!r} and {other_what} {other!r} are the same or nested: each must be its "
                    "own directory, none inside another"
                )
    return workdir, extra


class _PipeChannel(Channel):
    """The helper's stdin/stdout pipes.

    Its stderr (bwrap's too) is a third pipe whose last few KiB are kept for diagnostics
    (drained while waiting, never a file).
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._w, self._r, self._buf = proc.stdin.fileno(), proc.stdout.fileno(), bytearray()
        self._e = proc.stderr.fileno() if proc.stderr is not None else None
        if self._e is not None:
            os.set_blocking(self._e, False)
        self._proc = proc
        self.stderr = bytearray()

    def drain_stderr(self) -> bytes:
        while self._e is not None:
            try:
                chunk = os.read(self._e, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._e = None
                break
            self.stderr = (self.stderr + chunk)[-STDERR_TAIL:]
        return bytes(self.stderr)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._w, view) :]

    def recv_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            fds = [self._r] if self._e is None else [self._r, self._e]
            ready = select.select(fds, [], [], left)[0] if left > 0 else []
            if not ready:
                raise SandboxError("the sandbox helper did not answer in time")
            if self._e is not None and self._e in ready:
                self.drain_stderr()
            if self._r not in ready:
                continue
            chunk = os.read(self._r, min(max(n - len(self._buf), 1 << 16), 1 << 20))
            if not chunk:
                raise SandboxError(f"the sandbox helper exited (status {self._proc.poll()})")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def close(self) -> None:
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if f is not None and not f.closed:
                f.close()


def _bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError("bubblewrap not found: apt-get install bubblewrap (or sudo scripts/setup-system.sh)")
    return path


class LocalSandbox(HelperSandbox):
    """Commands run in Linux namespaces (bubblewrap) with a tmpfs workspace.

    One helper process (``_server.py`` under ``/usr/bin/python3``) is PID 1 of the
    sandbox's pid namespace (``bwrap --as-pid-1``) and forks every command, so ``exec``
    costs about a fork/exec.

    What it isolates:

    * **network**: own network namespace with only a down loopback, no DNS config
      (unless ``config.network``);
    * **filesystem**: an empty root with ``/usr`` (``/usr/local`` masked) and a few
      ``/etc`` files bound read-only, synthetic ``/etc/passwd``/``group``/``hosts`` (copied
      in from pipes, not host files), private ``/proc``, read-only ``/dev`` (null, zero,
      random, tty...). The only writable places are the workspace (``workdir``,
      ``/workspace`` by default), the ``extra_dirs``, ``/tmp`` and ``/dev/shm``, all tmpfs
      that belong to this sandbox: no host-writable file or directory is visible.
      ``/root``, ``/home``, ``/work``, the host ``/tmp`` and everything else are absent;
    * **disk**: the workspace holds at most ``disk_mb`` and ``max_inodes`` entries, and
      so does each extra directory; ``/tmp`` + ``/dev/shm`` together at most ``memory_mb``
      and ``max_inodes`` (past either, writes fail with ENOSPC). As root the tmpfs are mounted in a private
      mount namespace (``unshare``) that dies with the sandbox. **Not root**: bwrap's own
      ``--size`` tmpfs, so the size caps hold but there is **no inode cap**;
    * **the host<->helper channel**: the helper is non-dumpable and PID 1, so the
      commands (same uid) cannot ptrace it, read ``/proc/1/{fd,environ,mem}``,
      ``pidfd_getfd`` its pipes, or kill it (``kill -9 1`` and ``kill -9 -1`` inside do
      nothing to it), nor lower its rlimits or priority (a seccomp filter refuses
      ``prlimit``/``sched_*``/``setpriority``/``ioprio_set`` on pid 1); no command
      inherits the channel; bwrap and the helper start with an
      empty environment (no host variable is visible anywhere inside); the helper's
      stderr is a pipe the host drains. Every frame the host reads is bounded and
      validated (see :class:`~agentgym.sandboxes._client.HelperSandbox`);
    * **processes**: own pid, ipc, uts, cgroup and user namespaces (uid 1000 inside), no
      capabilities, new session (no terminal injection); on a timeout, and on
      :meth:`kill_processes`, every process in the sandbox but the helper is killed;
      closing kills the namespace;
    * **resources** (rlimits per command): address space ``memory_mb``, CPU time
      ``cpu_seconds``, file size ``max_file_mb``, no core dumps; processes
      ``max_processes`` (per sandbox when the host runs as root: each sandbox gets its own
      unused host uid; otherwise the limit counts all of the user's processes, so it is
      not set and the pid namespace is the only bound).

    What it does not isolate: it shares the host kernel (a kernel exploit escapes);
    memory is capped per process (address space), not for the sandbox as a whole, and
    the tmpfs (``disk_mb`` + ``memory_mb`` at most) are host memory outside any cgroup;
    there is no cgroup CPU share; ``/usr`` of the host is readable (its installed
    software, not user data); the helper's command line (the sandbox's own config) is
    readable inside. The workspace is not visible from the host: use ``read_file``/
    ``download``.

    ``isolation="none"`` runs the helper directly on the host, in a host temp directory
    (:attr:`host_workspace`), for debugging only: no isolation, no quota, and ``workdir``
    is the host path (the ``workdir`` argument is ignored; ``extra_dirs`` is refused).

    Args:
        files: Host directory whose contents are uploaded into the workspace (the reset state).
        config: Limits; :class:`SandboxConfig` defaults when None.
        isolation: ``"bwrap"`` (namespaces) or ``"none"`` (debugging only, see above).
        python: The interpreter that runs the helper (a path under the host's ``/usr``).
        workdir: Where the workspace tmpfs is mounted inside; the :attr:`workdir` of the
            sandbox, the cwd of commands and the base of relative paths.
        extra_dirs: Absolute paths of extra empty tmpfs directories, writable by the
            sandbox user, each capped like the workspace (``disk_mb``, ``max_inodes``);
            e.g. ``("/tests", "/logs")`` for a verifier. Not part of :meth:`snapshot`/
            :meth:`reset`, which cover the workspace only. Paths are checked by
            :func:`check_mount_points`.

    Raises:
        ValueError: a bad ``isolation``, ``workdir`` or ``extra_dirs``.
        SandboxError: the sandbox could not start.
    """

    def __init__(
        self,
        files: str | Path | None = None,
        config: SandboxConfig | None = None,
        *,
        isolation: Literal["bwrap", "none"] = "bwrap",
        python: str = "/usr/bin/python3",
        workdir: str = WORKDIR,
        extra_dirs: Sequence[str] = (),
    ) -> None:
        self.workdir, self.extra_dirs = check_mount_points(workdir, extra_dirs)  # before anything exists
        if isolation == "none" and self.extra_dirs:
            raise ValueError("extra_dirs need isolation='bwrap' (isolation='none' mounts nothing)")
        super().__init__(config)
        if isolation not in ("bwrap", "none"):
            raise ValueError(f"isolation must be 'bwrap' or 'none', got {isolation!r}")
        if not os.path.exists(python):
            raise SandboxError(f"{python} not found: apt-get install python3 python3-pytest")
        self.isolation = isolation
        self.host_dir = Path(tempfile.mkdtemp(prefix="agentgym-sbx-"))
        """Host temp directory of this sandbox (mount points only, unless ``isolation="none"``); removed on close."""
        self.host_workspace: Path | None = None
        self.host_uid = os.getuid()
        self._proc: subprocess.Popen[bytes] | None = None
        self._boot(lambda: self._start(python), files)

    def _start(self, python: str) -> None:
        cfg = self.config
        mb = 1024 * 1024
        rlimits = {"as": cfg.memory_mb * mb, "cpu": cfg.cpu_seconds, "fsize": cfg.max_file_mb * mb, "core": 0}
        server_cfg = {**self._server_limits(), "rlimits": rlimits}
        pass_fds: list[int] = []
        if self.isolation == "none":
            self.host_workspace = self.host_dir / "workspace"
            self.host_workspace.mkdir()
            self.workdir = str(self.host_workspace)
            env = helper_env(cfg, home=str(self.host_dir))
            env["PATH"] = os.environ.get("PATH", env["PATH"])
            argv = helper_argv(python, {**server_cfg, "workdir": self.workdir, "env": env, "sweep": False})
        else:
            as_root = os.geteuid() == 0
            if as_root:
                self.host_uid = HOST_UID_BASE + random.SystemRandom().randrange(1 << 24)
                rlimits["nproc"] = cfg.max_processes
                os.chmod(self.host_dir, 0o711)
            helper = helper_argv(python, {**server_cfg, "workdir": self.workdir, "env": helper_env(cfg), "sweep": True})
            argv = self._bwrap_argv(as_root, pass_fds) + helper
            if as_root:
                argv = self._root_wrapper(argv)
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                cwd=self.host_dir,
                env={"PATH": _WRAPPER_PATH},
                pass_fds=pass_fds,
            )
        finally:
            for fd in pass_fds:
                os.close(fd)
        self._connect(_PipeChannel(self._proc), timeout=30.0)

    def _root_wrapper(self, argv: list[str]) -> list[str]:
        """As root: the command that runs ``argv`` (bwrap) in a private mount namespace.

        It unshares the namespace, mounts the capped tmpfs, drops to the sandbox's host uid
        and execs ``argv``.
        """
        cfg, uid = self.config, str(self.host_uid)
        ws_opts = f"size={int(cfg.disk_mb)}m,nr_inodes={int(cfg.max_inodes)},mode=0755,uid={uid},gid={uid}"
        scratch_opts = f"size={int(cfg.memory_mb)}m,nr_inodes={int(cfg.max_inodes)},mode=0755"
        mounts = ["agentgym-scratch", scratch_opts, str(self.host_dir / "scratch")]
        mounts += ["agentgym-workspace", ws_opts, str(self.host_dir / "workspace")]
        for i in range(len(self.extra_dirs)):
            mounts += ["agentgym-extra", ws_opts, str(self.host_dir / f"extra{i}")]
        tools = {name: shutil.which(name, path=_WRAPPER_PATH) for name in ("unshare", "setpriv", "mount")}
        missing = [name for name, path in tools.items() if path is None]
        if missing:
            raise SandboxError(f"{', '.join(missing)} not found: apt-get install util-linux mount")
        return [
            str(tools["unshare"]),
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            _MOUNT_SCRIPT,
            "sh",
            str(self.host_dir / "scratch"),
            *mounts,
            "--",
            str(tools["setpriv"]),
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--",
            *argv,
        ]

    def _bwrap_argv(self, as_root: bool, pass_fds: list[int]) -> list[str]:
        cfg = self.config
        argv = [
            _bwrap(),
            "--unshare-all",
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--cap-drop",
            "ALL",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        if cfg.network:
            argv += ["--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / d
            if host.is_symlink():
                argv += ["--symlink", os.readlink(host), f"/{d}"]
            elif host.is_dir():
                argv += ["--ro-bind", str(host), f"/{d}"]
        argv += [
            "--tmpfs",
            "/usr/local",
            "--dir",
            "/usr/local/bin",
            "--symlink",
            "/usr/bin/python3",
            "/usr/local/bin/python",
            "--remount-ro",
            "/usr/local",
        ]
        for name in _ETC:
            argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("hosts", _HOSTS)):
            r, w = os.pipe()  # small: fits in the pipe buffer; bwrap copies it into its own tmpfs
            os.write(w, text.encode())
            os.close(w)
            pass_fds.append(r)
            argv += ["--perms", "0644", "--ro-bind-data", str(r), f"/etc/{name}"]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        if as_root:
            (self.host_dir / "workspace").mkdir()
            (self.host_dir / "scratch").mkdir()
            scratch = self.host_dir / "scratch"
            argv += [
                "--bind",
                str(scratch / "shm"),
                "/dev/shm",
                "--remount-ro",
                "/dev",
                "--bind",
                str(scratch / "tmp"),
                "/tmp",
                "--bind",
                str(self.host_dir / "workspace"),
                self.workdir,
            ]
            for i, path in enumerate(self.extra_dirs):
                (self.host_dir / f"extra{i}").mkdir()
                argv += ["--bind", str(self.host_dir / f"extra{i}"), path]
        else:
            argv += [
                "--size",
                "67108864",
                "--tmpfs",
                "/dev/shm",
                "--remount-ro",
                "/dev",
                "--size",
                str(cfg.memory_mb * 1024 * 1024),
                "--tmpfs",
                "/tmp",
                "--size",
                str(cfg.disk_mb * 1024 * 1024),
                "--perms",
                "0755",
                "--tmpfs",
                self.workdir,
            ]
            for path in self.extra_dirs:
                argv += ["--size", str(cfg.disk_mb * 1024 * 1024), "--perms", "0755", "--tmpfs", path]
        argv += ["--chdir", self.workdir, "--remount-ro", "/"]
        return argv

    def _diagnose(self) -> str:
        if not isinstance(self._channel, _PipeChannel):
            return ""
        log = self._channel.drain_stderr().decode(errors="replace").strip()
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
        shutil.rmtree(self.host_dir, ignore_errors=True)


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
