"""The sandbox protocol: where agent actions run.

Every backend (local namespaces, Docker, ...) implements :class:`Sandbox`.
Environments depend only on this protocol, never on a backend.

A backend that fails itself (its helper died, its channel broke, it could not start)
raises :class:`~agentgym.errors.SandboxError`, an
:class:`~agentgym.errors.InfrastructureError`: an environment that catches one ends the
episode with ``info["termination_reason"] = "infra_error"`` and
``info["infra_failure"] = True``. The agent's own command failing is not an error: a
non-zero exit code or a timeout is an :class:`ExecResult`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Re-exported: backends raise it from here; it lives in agentgym.errors so that every layer
# (tools, graders, the core) catches the same class.
from agentgym.errors import SandboxError as SandboxError


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one command.

    ``stdout``/``stderr`` are decoded as UTF-8 with replacement characters; when the
    output exceeded the cap, ``truncated`` is True and the text keeps its head and tail
    around a marker that says how many bytes were cut.
    """

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration: float = 0.0
    truncated: bool = False
    oom_killed: bool = False

    @property
    def ok(self) -> bool:
        """The command exited with status 0 within its timeout."""
        return self.exit_code == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """Stdout and stderr joined, for showing to a model."""
        if self.stderr and self.stdout:
            return self.stdout.rstrip("\n") + "\n" + self.stderr
        return self.stdout or self.stderr


def truncate_bytes(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Keep the head and tail of ``data`` within ``limit`` bytes, with a marker in between."""
    if len(data) <= limit:
        return data, False
    head = limit // 2
    tail = limit - head
    cut = len(data) - head - tail
    marker = f"\n[... {cut} bytes truncated ...]\n".encode()
    return data[:head] + marker + data[len(data) - tail :], True


@dataclass
class SandboxConfig:
    """Limits shared by every backend."""

    timeout: float = 30.0
    """Default per-command timeout in seconds."""
    memory_mb: int = 1024
    """Memory limit for the sandbox's processes."""
    cpu_seconds: int = 120
    """CPU-time limit per command (RLIMIT_CPU, both backends)."""
    cpus: float = 1.0
    """CPU share of the whole sandbox (docker ``nano_cpus``; the local backend has none)."""
    max_processes: int = 256
    """Process/thread limit (pids)."""
    max_file_mb: int = 256
    """Largest file a process may write."""
    output_limit: int = 64 * 1024
    """Bytes of stdout and of stderr kept per command (head + tail)."""
    network: bool = False
    """Allow network access. Off by default; keep it off for agents."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables for every command."""
    disk_mb: int = 512
    """Size of the workspace (a tmpfs on both backends): writing past it fails with
    ENOSPC. It is memory: on Docker it counts against ``memory_mb``; locally it is host
    memory outside any per-sandbox limit, so keep ``disk_mb x sandboxes`` below host RAM."""
    max_inodes: int = 65536
    """Most files + directories the workspace (and ``/tmp``) may hold; creating more
    fails with ENOSPC. Not enforced by the local backend when the host is not root."""
    max_transfer_mb: int = 1024
    """Largest file or archive moved between host and sandbox (``read_file``,
    ``download``, ``snapshot``); beyond it the call fails with EFBIG. Keep it above
    ``disk_mb`` plus tar overhead so a full workspace can still be snapshotted."""


class Sandbox(abc.ABC):
    """A place to run commands and keep files, isolated from the host.

    ``workdir`` is the path *inside* the sandbox where the workspace lives; relative
    paths given to the file methods and ``cwd`` are resolved against it.
    """

    workdir: str = "/workspace"

    @abc.abstractmethod
    def exec(
        self,
        cmd: str | list[str],
        *,
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        """Run ``cmd`` (a shell string run with ``sh -c``, or an argv list)."""

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """The contents of the sandbox file ``path`` (``OSError`` subclasses when it cannot be read)."""

    @abc.abstractmethod
    def write_file(self, path: str, data: str | bytes) -> None:
        """Create or overwrite the sandbox file ``path`` (``str`` is written as UTF-8)."""

    @abc.abstractmethod
    def upload(self, local_dir: str | Path, dest: str = ".") -> None:
        """Copy a host directory's contents into the sandbox at ``dest``."""

    @abc.abstractmethod
    def download(self, path: str, local_dir: str | Path) -> None:
        """Copy a sandbox file or directory to a host directory."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Restore the workspace to its state when the sandbox was created (or last snapshot)."""

    def archive(self, path: str) -> bytes:
        """A tar of the sandbox directory ``path``'s contents (or of the file), exactly as stored.

        Symlinks stay links (never followed), whatever they point at; only directories, regular
        files and symlinks are included. The bytes are untrusted: extract them with a filter
        (``tarfile.data_filter``) or hand them back to a sandbox with :meth:`restore_archive`.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot archive")

    def restore_archive(self, blob: bytes, dest: str = ".") -> None:
        """Extract an :meth:`archive` tar at ``dest`` inside the sandbox (links kept, nothing written through one)."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore an archive")

    def snapshot(self) -> None:
        """Make the current workspace the state that :meth:`reset` restores."""
        raise NotImplementedError

    def kill_processes(self) -> int:
        """SIGKILL every process in the sandbox except its own helper; returns how many were killed.

        It repeats until none is left (background jobs, daemons, processes that fork while
        being killed). The workspace is untouched and the sandbox stays usable. Graders call
        this before grading so nothing the agent started can run (or interfere) while grading
        happens.
        """
        raise NotImplementedError(f"{type(self).__name__} runs no processes to kill")

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything; idempotent."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
