"""Host side of the helper protocol, shared by every backend that runs ``_server.py``.

A backend provides a byte :class:`Channel` to the helper (pipes for LocalSandbox, the
container's attach socket for DockerSandbox); :class:`HelperSandbox` implements the
whole :class:`~agentgym.sandboxes.base.Sandbox` protocol on top of it.
"""

from __future__ import annotations

import abc
import io
import json
import secrets
import socket
import struct
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .base import ExecResult, Sandbox, SandboxConfig, SandboxError

HDR = struct.Struct(">II")
SERVER_SOURCE = (Path(__file__).with_name("_server.py")).read_text()
# The helper's source goes over the channel first, so process listings stay short.
BOOTSTRAP = (
    "import os,sys\nn=int(sys.argv[1]);b=b''\nwhile len(b)<n:\n c=os.read(0,n-len(b))\n"
    " if not c:raise SystemExit(1)\n b+=c\nsys.argv=sys.argv[1:]\nexec(compile(b,'agentgym-helper','exec'))"
)
RPC_GRACE = 15.0
"""Seconds the helper may take beyond a command's own timeout before it counts as dead."""


class _Violation(Exception):
    """A frame from the helper broke the protocol (becomes a SandboxError)."""


def _check_response(op: str, res: dict[str, Any], data: bytes) -> None:
    """Type-check a response header; raise :class:`_Violation` on anything unexpected."""
    ok = res.get("ok")
    if not isinstance(ok, bool):
        raise _Violation("a response without a boolean 'ok'")
    if not ok:
        if data:
            raise _Violation("an error response with a payload")
        if not isinstance(res.get("error"), (str, type(None))) or not isinstance(res.get("path"), (str, type(None))):
            raise _Violation("an error response with a non-text message or path")
        errno = res.get("errno")
        if errno is not None and (type(errno) is not int or not 0 < errno < 4096):
            raise _Violation(f"an error response with errno {errno!r}")
        return
    for name, types in _FIELDS.get(op, {}).items():
        value = res.get(name)
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise _Violation(f"{name}={value!r} ({type(value).__name__}, expected {types[0].__name__})")
    if op == "exec" and not 0 <= res["out_len"] <= len(data):
        raise _Violation(f"out_len={res['out_len']} for a {len(data)}-byte payload")
    if op == "exec" and not (res["duration"] >= 0 and -256 < res["exit_code"] < 512):
        raise _Violation(f"exit_code={res['exit_code']}, duration={res['duration']}")
    if op == "diff" and not all(isinstance(n, str) for n in res["restore"]):
        raise _Violation("a restore list with non-text names")
    if op in ("write", "tar_in", "restore", "kill", "ping", "diff", "exit") and data:
        raise _Violation(f"a {len(data)}-byte payload where none belongs")


class Channel(abc.ABC):
    """A reliable byte stream to the helper."""

    @abc.abstractmethod
    def send(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def recv_exact(self, n: int, deadline: float) -> bytes:
        """Read exactly ``n`` bytes; raise :class:`SandboxError` on EOF or after ``deadline``."""

    @abc.abstractmethod
    def close(self) -> None: ...


class SocketChannel(Channel):
    """A byte stream to the helper over a connected socket."""

    exited = "the sandbox helper exited"
    """What :meth:`recv_exact` says when the other end closes the stream."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._out = bytearray()

    def send(self, data: bytes) -> None:
        """Write all of ``data``."""
        self._sock.sendall(data)

    def recv_exact(self, n: int, deadline: float) -> bytes:
        """Read exactly ``n`` bytes; raise :class:`SandboxError` on EOF or after ``deadline``."""
        while len(self._out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError("the sandbox helper did not answer in time")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                raise SandboxError("the sandbox helper did not answer in time") from None
            if not chunk:
                raise SandboxError(self.exited)
            self._received(chunk)
        out = bytes(self._out[:n])
        del self._out[:n]
        return out

    def _received(self, chunk: bytes) -> None:
        """Take bytes read from the socket (a subclass unwraps its transport's framing here)."""
        self._out += chunk

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


def helper_argv(python: str, config: dict[str, Any]) -> list[str]:
    """Command line that starts the helper (it then reads its source from stdin)."""
    return [python, "-I", "-S", "-B", "-c", BOOTSTRAP, str(len(SERVER_SOURCE.encode())), json.dumps(config)]


def helper_env(config: SandboxConfig, home: str = "/tmp") -> dict[str, str]:
    """The environment every command starts from."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "USER": "agent",
        "TMPDIR": "/tmp",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(config.env)
    return env


def tar_directory(local_dir: str | Path) -> bytes:
    """A tar of the directory's contents (symlinks kept as links)."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise NotADirectoryError(f"upload expects a directory, got {local_dir}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(local_dir.iterdir()):
            tar.add(child, arcname=child.name)
    return buf.getvalue()


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Tar from a sandbox is untrusted: drop members that would land or point outside ``dest``.

    Absolute or ``..`` paths and links, and device files, are dropped instead of failing.
    """
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


MAX_HEADER = 1 << 20
"""Largest JSON header the host accepts from the helper."""
OUTPUT_SLACK = 256
"""Bytes a truncation marker may add to each of stdout and stderr."""

_INT, _BOOL, _NUM, _STR = (int,), (bool,), (int, float), (str,)
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "exec": {
        "exit_code": _INT,
        "timed_out": _BOOL,
        "duration": _NUM,
        "out_len": _INT,
        "truncated": _BOOL,
        "oom_killed": _BOOL,
    },
    "diff": {"restore": (list,)},
    "kill": {"killed": _INT},
    "ping": {"pid": _INT},
}


class HelperSandbox(Sandbox):
    """A :class:`Sandbox` whose operations are requests to the in-sandbox helper.

    Every frame from the helper is untrusted input: its header is bounded
    (:data:`MAX_HEADER`), its blob by a cap per operation (exec: twice
    ``output_limit`` plus markers; files and archives: ``max_transfer_mb``) checked
    before anything is allocated, its JSON and field types are checked, and it must
    echo the random id of the request it answers. Any violation is a
    :class:`SandboxError` and marks the sandbox broken (no later call is trusted).
    """

    def __init__(self, config: SandboxConfig | None) -> None:
        self.config = config or SandboxConfig()
        self._lock = threading.Lock()
        self._channel: Channel | None = None
        self._broken: str | None = None
        self._closed = False
        self._snapshot: tarfile.TarFile | None = None
        self._snapshot_file: Any = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self.helper_pid: int | None = None

    def _boot(self, start: Callable[[], None], files: Any) -> None:
        """Start the helper, upload ``files`` and take the reset snapshot; on any failure, clean up."""
        try:
            start()
            if files is not None:
                self.upload(files)
            self.snapshot()
        except BaseException:
            self.close()
            raise

    @property
    def _transfer_limit(self) -> int:
        return int(self.config.max_transfer_mb) * 1024 * 1024

    def _server_limits(self) -> dict[str, Any]:
        """Helper configuration every backend passes (limits the helper enforces itself)."""
        return {"output_limit": self.config.output_limit, "max_blob": self._transfer_limit}

    # -- transport -------------------------------------------------------------
    def _connect(self, channel: Channel, timeout: float = 30.0) -> None:
        self._channel = channel
        channel.send(SERVER_SOURCE.encode())
        res, _ = self._call("ping", wait=timeout)
        self.helper_pid = res["pid"]

    def _read_frame(self, deadline: float, rid: str, blob_limit: int) -> tuple[dict[str, Any], bytes]:
        """One response frame, checked: sizes before reading, then JSON, then the id."""
        assert self._channel is not None
        jlen, blen = HDR.unpack(self._channel.recv_exact(HDR.size, deadline))
        if jlen > MAX_HEADER:
            raise _Violation(f"a {jlen}-byte header (the limit is {MAX_HEADER})")
        if blen > blob_limit:
            raise _Violation(f"a {blen}-byte payload (the limit for this call is {blob_limit})")
        raw = self._channel.recv_exact(jlen, deadline)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise _Violation(f"a header that is not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise _Violation(f"a {type(obj).__name__} header instead of an object")
        if obj.get("id") != rid:
            raise _Violation(f"an answer to request {obj.get('id')!r} while waiting for {rid!r}")
        blob = self._channel.recv_exact(blen, deadline) if blen else b""
        return obj, blob

    def _call(
        self, op: str, blob: bytes = b"", wait: float = RPC_GRACE, blob_limit: int = 0, **fields: Any
    ) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if self._broken:
                raise SandboxError(f"the sandbox is broken ({self._broken}); create a new one")
            assert self._channel is not None
            rid = secrets.token_hex(8)
            head = json.dumps({"op": op, "id": rid, **fields}).encode()
            try:
                self._channel.send(HDR.pack(len(head), len(blob)) + head + blob)
                res, data = self._read_frame(time.monotonic() + wait, rid, blob_limit)
                _check_response(op, res, data)
            except _Violation as e:
                self._broken = f"invalid frame from the helper: {e}"
                raise SandboxError(
                    f"the sandbox helper sent {e} during {op!r}; the sandbox can no longer be "
                    "trusted: close it and create a new one"
                ) from None
            except (SandboxError, OSError, struct.error) as e:
                self._broken = str(e)
                raise SandboxError(f"lost the sandbox helper during {op!r}: {e}{self._diagnose()}") from e
        if not res["ok"]:
            if res.get("errno") is not None:
                raise OSError(res["errno"], res.get("error"), res.get("path"))
            raise SandboxError(f"sandbox helper failed on {op!r}: {res.get('error')}")
        return res, data

    def _diagnose(self) -> str:
        """Extra context for a lost helper (e.g. its stderr); backends override."""
        return ""

    # -- protocol --------------------------------------------------------------
    def exec(
        self,
        cmd: str | list[str],
        *,
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
        timeout = self.config.timeout if timeout is None else float(timeout)
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        res, out = self._call(
            "exec",
            data,
            wait=timeout + RPC_GRACE,
            blob_limit=2 * (self.config.output_limit + OUTPUT_SLACK),
            argv=argv,
            timeout=timeout,
            cwd=cwd,
            env={str(k): str(v) for k, v in (env or {}).items()},
            stdin=stdin is not None,
        )
        n = res["out_len"]
        return ExecResult(
            exit_code=res["exit_code"],
            stdout=out[:n].decode("utf-8", "replace"),
            stderr=out[n:].decode("utf-8", "replace"),
            timed_out=res["timed_out"],
            duration=res["duration"],
            truncated=res["truncated"],
            oom_killed=res["oom_killed"],
        )

    def read_file(self, path: str) -> bytes:
        return self._call("read", blob_limit=self._transfer_limit, path=path)[1]

    def kill_processes(self) -> int:
        res, _ = self._call("kill", wait=60.0)
        return int(res["killed"])

    def write_file(self, path: str, data: str | bytes, mode: int | None = None) -> None:
        self._call("write", data.encode() if isinstance(data, str) else bytes(data), path=path, mode=mode)

    def upload(self, local_dir: str | Path, dest: str = ".") -> None:
        self._call("tar_in", tar_directory(local_dir), wait=300.0, dest=dest)

    def download(self, path: str, local_dir: str | Path) -> None:
        _, blob = self._call("tar_out", wait=300.0, blob_limit=self._transfer_limit, path=path)
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
            tar.extractall(local_dir, filter=_safe_member)

    def archive(self, path: str) -> bytes:
        _, blob = self._call("tar_out", wait=300.0, blob_limit=self._transfer_limit, path=path)
        return blob

    def restore_archive(self, blob: bytes, dest: str = ".") -> None:
        self._call("tar_in", blob, wait=300.0, dest=dest)

    def snapshot(self) -> None:
        _, blob = self._call("snapshot", wait=300.0, blob_limit=self._transfer_limit)
        self._drop_snapshot()
        # Both stay open until the next snapshot or close (see _drop_snapshot).
        self._snapshot_file = tempfile.TemporaryFile(prefix="agentgym-snapshot-")  # noqa: SIM115
        self._snapshot_file.write(blob)
        self._snapshot_file.seek(0)
        self._snapshot = tarfile.open(fileobj=self._snapshot_file, mode="r")  # noqa: SIM115
        self._members = {m.name: m for m in self._snapshot.getmembers()}

    def reset(self) -> None:
        if self._snapshot is None:
            raise SandboxError("reset() before any snapshot: the sandbox takes one at creation")
        res, _ = self._call("diff", wait=300.0)
        names: list[str] = res["restore"]
        buf = io.BytesIO()
        if names:
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
                for name in sorted(names):  # parents before children
                    m = self._members.get(name)
                    if m is not None:
                        out.addfile(m, self._snapshot.extractfile(m) if m.isfile() else None)
        self._call("restore", buf.getvalue(), wait=300.0, names=names)

    def _drop_snapshot(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot_file.close()
            self._snapshot = self._snapshot_file = None

    def _shutdown_helper(self, wait: float = 1.0) -> bool:
        """Ask the helper to exit; False when it could not be asked (does not raise)."""
        if self._channel is None or self._broken:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # a command is in flight (closed from another thread): the backend kills it
        try:
            rid = secrets.token_hex(8)
            head = json.dumps({"op": "exit", "id": rid}).encode()
            self._channel.send(HDR.pack(len(head), 0) + head)
            self._read_frame(time.monotonic() + wait, rid, 0)
            return True
        except (SandboxError, OSError, ValueError, struct.error):
            return False
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_snapshot()
        try:
            self._release()
        finally:
            if self._channel is not None:
                self._channel.close()

    @abc.abstractmethod
    def _release(self) -> None:
        """Stop the helper and free the backend's resources; called once by :meth:`close`."""

    def __del__(self) -> None:  # last resort; close() is the contract
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:
            pass
