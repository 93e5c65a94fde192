"""DockerSandbox: a hardened container on a real Docker engine.

It is driven through one long-lived helper over the container's attach stream (no
``docker exec`` per command).
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import socket
import struct
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._client import HelperSandbox, SocketChannel, helper_argv, helper_env
from .base import SandboxConfig, SandboxError
from .image import DEFAULT_IMAGE
from .local import WORKDIR, check_mount_points

RUN_ID = uuid.uuid4().hex[:12]
"""Labels every container this process creates (``agentgym.run_id``)."""
LABEL = "agentgym.sandbox"
_LIVE: dict[str, Any] = {}  # container id -> docker client, for the exit-time reaper
_LIVE_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


@functools.cache  # one client per process; a failure is not cached, so the next call tries again
def docker_client() -> Any:
    """The process's client for the local engine (shared).

    Raises:
        SandboxError: the SDK is missing or the engine cannot be reached (says how to fix it).
    """
    try:
        import docker  # type: ignore[import-untyped]  # no stubs installed (types-docker)
    except ImportError as e:
        raise SandboxError("the docker SDK is missing: pip install 'agentgym[docker]' (docker>=7)") from e
    try:
        client = docker.from_env(timeout=120, max_pool_size=32)
        client.ping()
    except Exception as e:
        raise SandboxError(
            f"cannot reach the Docker engine ({e}): install and start it with "
            "sudo scripts/setup-system.sh (apt-get install docker.io; dockerd &)"
        ) from e
    return client


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _owner_labels(run_id: str) -> dict[str, str]:
    return {
        LABEL: "1",
        "agentgym.run_id": run_id,
        "agentgym.host": socket.gethostname(),
        "agentgym.pid": str(os.getpid()),
        "agentgym.pid_start": _proc_start(os.getpid()) or "",
    }


def _reap_live() -> None:
    """Remove every container this process still holds (atexit and signal hook)."""
    with _LIVE_LOCK:
        items = list(_LIVE.items())
        _LIVE.clear()
    for cid, client in items:
        try:
            client.api.remove_container(cid, force=True, v=True)
        except Exception:
            pass


def _on_signal(signum: int, frame: Any) -> None:
    _reap_live()
    previous = _PREVIOUS.get(signum)
    if callable(previous):
        previous(signum, frame)
    else:  # default action: die by the same signal
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


_PREVIOUS: dict[int, Any] = {}


def _install_hooks() -> None:
    """Reap our containers at interpreter exit and on SIGTERM/SIGINT.

    The signal handlers are installed only where those signals still have their default
    handlers, and only from the main thread.
    """
    global _HOOKS_INSTALLED  # noqa: PLW0603 - once per process, whichever sandbox starts first
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_reap_live)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, default in ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler)):
        if signal.getsignal(signum) is default:
            _PREVIOUS[signum] = default
            signal.signal(signum, _on_signal)


class _AttachChannel(SocketChannel):
    """The container's stdin/stdout over the engine's attach socket (multiplexed frames)."""

    exited = "the container's helper exited"

    def __init__(self, sock: Any) -> None:
        super().__init__(getattr(sock, "_sock", sock))
        self._io = sock
        self._raw = bytearray()
        self.stderr = bytearray()

    def _received(self, chunk: bytes) -> None:
        self._raw += chunk
        while len(self._raw) >= 8:  # demultiplex: [stream, 0, 0, 0, size(4)] payload
            stream, size = self._raw[0], struct.unpack(">I", self._raw[4:8])[0]
            if len(self._raw) < 8 + size:
                break
            payload = self._raw[8 : 8 + size]
            del self._raw[: 8 + size]
            if stream == 2:
                self.stderr = (self.stderr + payload)[-4000:]
            else:
                self._out += payload

    def close(self) -> None:
        for s in (self._sock, self._io):
            try:
                s.close()
            except OSError:
                pass


class DockerSandbox(HelperSandbox):
    """A container with hardened defaults; commands go through one helper process.

    Defaults: ``network_mode="none"``, memory (no swap), CPU and pids limits from
    ``config``, non-root user ``1000:1000``, all capabilities dropped,
    ``no-new-privileges``, a read-only root filesystem. The workspace is a tmpfs at
    ``workdir`` (``/workspace`` by default) of ``disk_mb`` (owned by the user, exec
    allowed), each of ``extra_dirs`` a tmpfs like it, ``/tmp`` a tmpfs of ``memory_mb``,
    ``/dev/shm`` one of 64 MiB, each capped at ``max_inodes`` entries: past a cap, writes
    fail with ENOSPC. tmpfs is memory: the container's memory limit is ``memory_mb +
    disk_mb * (1 + len(extra_dirs))`` so that full workspace and extra directories still
    leave ``memory_mb`` to the processes, while what ``/tmp`` and ``/dev/shm`` hold shares
    ``memory_mb`` with them. Containers carry ``agentgym.sandbox=1`` and ``agentgym.run_id`` labels and are
    removed on :meth:`close`, at interpreter exit and on SIGTERM/SIGINT; :func:`gc`
    reaps what a killed process left behind.

    The host<->helper channel (the attach stream) is held only by the helper, which is
    the container's PID 1 (no docker-init), non-dumpable and reaps orphans itself: the
    commands it runs (same uid) cannot ptrace it, open ``/proc/1/fd``/``environ``/``mem``,
    ``pidfd_getfd`` its descriptors, kill it, or lower its rlimits or priority (a seccomp
    filter on top of Docker's refuses ``prlimit``/``sched_*``/``setpriority``/``ioprio_set``
    on pid 1); every frame the host reads is bounded and validated. The container's
    environment is the image's plus ``config.env``: no host variable is passed. No host
    directory is mounted; nothing inside is writable but those tmpfs (and the mqueue of
    the container's own IPC namespace).

    Not isolated: the host kernel is shared (no gVisor/Kata); the OOM killer picks by
    size within the container, so processes that fill ``/tmp`` and then exhaust memory
    can get the helper killed (a :class:`SandboxError`); Docker binds its own
    ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` (host files, read-only and
    root-owned inside); the helper's command line (the sandbox's own config) is readable
    inside. The image needs ``/usr/bin/python3`` for the helper.

    Args:
        image: Local image to run (never pulled); the agentgym base image by default.
        files: Host directory whose contents are uploaded into the workspace (the reset state).
        config: Limits; :class:`SandboxConfig` defaults when None.
        user: ``uid:gid`` (or a user name) the helper and commands run as.
        run_id: Value of the ``agentgym.run_id`` label; this process's id when None.
        labels: Extra container labels.
        python: The interpreter in the image that runs the helper.
        client: A ``docker`` SDK client; the process's shared one when None.
        workdir: Where the workspace tmpfs is mounted; the :attr:`workdir` of the sandbox,
            the container's working directory and the base of relative paths. The image's
            own ``/workspace`` stays read-only when it is elsewhere.
        extra_dirs: Absolute paths of extra empty tmpfs directories, writable by ``user``,
            each capped like the workspace; e.g. ``("/tests", "/logs")`` for a verifier. Not
            part of :meth:`snapshot`/:meth:`reset`, which cover the workspace only. Paths are
            checked by :func:`~agentgym.sandboxes.local.check_mount_points`.

    Raises:
        ValueError: a bad ``workdir`` or ``extra_dirs``.
        SandboxError: the engine, the image or the container failed.
    """

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        files: str | Path | None = None,
        config: SandboxConfig | None = None,
        *,
        user: str = "1000:1000",
        run_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        python: str = "/usr/bin/python3",
        client: Any = None,
        workdir: str = WORKDIR,
        extra_dirs: Sequence[str] = (),
    ) -> None:
        self.workdir, self.extra_dirs = check_mount_points(workdir, extra_dirs)  # before anything exists
        super().__init__(config)
        self.image = image
        self.run_id = run_id or RUN_ID
        self._client = client or docker_client()
        self.container_id: str | None = None
        _install_hooks()
        self._boot(lambda: self._start(user, labels or {}, python), files)

    def _start(self, user: str, labels: Mapping[str, str], python: str) -> None:
        import docker.errors  # type: ignore[import-untyped]  # no stubs installed (types-docker)

        cfg = self.config
        mb = 1024 * 1024
        server_cfg = {
            **self._server_limits(),
            "workdir": self.workdir,
            "env": helper_env(cfg),
            "sweep": True,
            "rlimits": {"cpu": cfg.cpu_seconds, "fsize": cfg.max_file_mb * mb, "core": 0},
        }
        owner = ",mode=1777"  # a user name: we cannot tell its uid, so anyone may write
        uid, _, gid = user.partition(":")
        if uid.isdigit():
            owner = f",mode=0755,uid={uid},gid={gid if gid.isdigit() else uid}"
        inodes = int(cfg.max_inodes)
        disk = f"size={int(cfg.disk_mb)}m,nr_inodes={inodes},exec{owner}"
        # the workspace and extra tmpfs are memory too
        memory = (cfg.memory_mb + int(cfg.disk_mb) * (1 + len(self.extra_dirs))) * mb
        try:
            container = self._client.api.create_container(
                self.image,
                command=helper_argv(python, server_cfg),
                user=user,
                working_dir=self.workdir,
                stdin_open=True,
                labels={**_owner_labels(self.run_id), **labels},
                network_disabled=not cfg.network,
                host_config=self._client.api.create_host_config(
                    network_mode="none" if not cfg.network else "bridge",
                    mem_limit=memory,
                    memswap_limit=memory,
                    nano_cpus=int(cfg.cpus * 1e9),
                    pids_limit=cfg.max_processes,
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    init=False,
                    read_only=True,
                    tmpfs={
                        "/tmp": f"size={cfg.memory_mb}m,nr_inodes={inodes},mode=1777",
                        "/dev/shm": f"size=64m,nr_inodes={inodes},mode=1777",
                        self.workdir: disk,
                        **dict.fromkeys(self.extra_dirs, disk),
                    },
                ),
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(
                f"image {self.image} not found: build it with `agentgym sandbox build-image` "
                "(or python -m agentgym.sandboxes.image)"
            ) from None
        self.container_id = container["Id"]
        with _LIVE_LOCK:
            _LIVE[self.container_id] = self._client
        sock = self._client.api.attach_socket(
            self.container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        self._client.api.start(self.container_id)
        self._connect(_AttachChannel(sock), timeout=60.0)

    def _diagnose(self) -> str:
        parts = []
        if isinstance(self._channel, _AttachChannel) and self._channel.stderr:
            parts.append(f"helper stderr:\n{self._channel.stderr.decode(errors='replace')}")
        try:
            state = self._client.api.inspect_container(self.container_id)["State"]
            parts.append(
                f"container state: {state.get('Status')}, exit {state.get('ExitCode')}, "
                f"OOMKilled {state.get('OOMKilled')}"
            )
        except Exception:
            pass
        return "".join("\n" + p for p in parts)

    def _release(self) -> None:
        cid = self.container_id
        if cid is None:
            return
        try:
            self._client.api.remove_container(cid, force=True, v=True)
        except Exception as e:
            import docker.errors

            if not isinstance(e, docker.errors.NotFound):
                raise SandboxError(f"could not remove container {cid[:12]}: {e}") from e
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(cid, None)


def gc(all_runs: bool = False, client: Any = None) -> list[str]:
    """Remove agentgym sandbox containers left by dead processes on this host; the removed ids.

    With ``all_runs=True``, every agentgym sandbox container goes, live runs' too.
    """
    client = client or docker_client()
    host, removed = socket.gethostname(), []
    for c in client.api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        labels = c.get("Labels") or {}
        if not all_runs:
            if labels.get("agentgym.host") != host:
                continue
            pid = int(labels.get("agentgym.pid", "0") or 0)
            if pid and _proc_start(pid) is not None and _proc_start(pid) == labels.get("agentgym.pid_start"):
                continue  # its process is alive
        try:
            client.api.remove_container(c["Id"], force=True, v=True)
            removed.append(c["Id"])
        except Exception:
            pass
    return removed
