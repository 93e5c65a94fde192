"""The host side of the helper protocol treats every frame as hostile.

A fake helper on the other end of a socketpair answers the real client code with
malformed, oversized, forged or mistyped frames; each must be a SandboxError with a
clear message, allocate nothing large, and leave the sandbox marked broken.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from agentgym.sandboxes import SandboxConfig, SandboxError
from agentgym.sandboxes._client import MAX_HEADER, HelperSandbox, SocketChannel

HDR = struct.Struct(">II")


Reply = Callable[[dict[str, Any]], bytes]
"""Given the request the fake helper read, the raw bytes it answers with."""


def frame(obj: Any, blob: bytes = b"") -> bytes:
    head = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return HDR.pack(len(head), len(blob)) + head + blob


def ok_exec(req: dict[str, Any], **over: Any) -> bytes:
    res = {
        "ok": True,
        "id": req["id"],
        "exit_code": 0,
        "timed_out": False,
        "duration": 0.01,
        "out_len": 3,
        "truncated": False,
        "oom_killed": False,
    }
    res.update(over)
    return frame(res, b"hi\n")


class FakeSandbox(HelperSandbox):
    """HelperSandbox over a socketpair to a thread that plays the helper with ``replies``."""

    def __init__(self, replies: list[Reply], config: SandboxConfig | None = None) -> None:
        super().__init__(config)
        host, fake = socket.socketpair()
        self.requests: list[dict[str, Any]] = []
        self._fake = fake
        self._thread = threading.Thread(target=self._serve, args=(replies,), daemon=True)
        self._thread.start()
        self._channel = SocketChannel(host)

    def _serve(self, replies: list[Reply]) -> None:
        buf = bytearray()

        def need(n: int) -> bytes | None:
            while len(buf) < n:
                chunk = self._fake.recv(1 << 16)
                if not chunk:
                    return None
                buf.extend(chunk)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        try:
            for reply in replies:
                head = need(8)
                if head is None:
                    return
                jlen, blen = HDR.unpack(head)
                req = json.loads(need(jlen) or b"{}")
                need(blen)
                self.requests.append(req)
                self._fake.sendall(reply(req))
            self._fake.shutdown(socket.SHUT_WR)  # out of replies: the helper "exits"
            while need(1) is not None:  # until the host hangs up
                pass
        except OSError:
            pass
        finally:
            self._fake.close()

    def _release(self) -> None:
        """The host end closes after this; the fake helper then sees EOF and ends."""


def _assert_broken(sb: FakeSandbox) -> None:
    with pytest.raises(SandboxError, match="broken"):
        sb.exec("true")


def test_honest_frames_work() -> None:
    sb = FakeSandbox([ok_exec, lambda req: frame({"ok": True, "id": req["id"]}, b"data")])
    r = sb.exec("echo hi")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "hi\n", "")
    assert sb.read_file("f") == b"data"
    ids = [req["id"] for req in sb.requests]
    assert len(set(ids)) == 2 and all(isinstance(i, str) and len(i) >= 16 for i in ids)
    sb.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (lambda req: frame(b"{not json"), "not JSON"),
        (lambda req: frame(b"\xff\xfe\x00"), "not JSON"),
        (lambda req: frame([1, 2]), "list header"),
        (lambda req: frame({"ok": True, "id": "0" * 16, "exit_code": 0}), "waiting for"),
        (lambda req: frame({"ok": True, "exit_code": 0}), "waiting for"),
        (lambda req: ok_exec(req, exit_code="0"), "exit_code='0'"),
        (lambda req: ok_exec(req, exit_code=True), "exit_code=True"),
        (lambda req: ok_exec(req, exit_code=1.5), "exit_code=1.5"),
        (lambda req: ok_exec(req, timed_out=1), "timed_out=1"),
        (lambda req: ok_exec(req, out_len=99), "out_len=99"),
        (lambda req: ok_exec(req, out_len=-1), "out_len=-1"),
        (lambda req: ok_exec(req, duration="fast"), "duration"),
        (lambda req: ok_exec(req, ok="yes"), "'ok'"),
        (lambda req: frame({"ok": False, "id": req["id"], "errno": "2", "error": "x"}), "errno"),
        (lambda req: frame({"ok": False, "id": req["id"], "errno": None, "error": ["x"]}), "non-text"),
        (lambda req: HDR.pack(MAX_HEADER + 1, 0), "header"),
        (lambda req: HDR.pack(16, 0xFFFFFFFF), "payload"),
        (lambda req: HDR.pack(100, 0)[:5], "did not answer|exited"),
    ],
    ids=[
        "bad-json",
        "bad-utf8",
        "not-object",
        "wrong-id",
        "no-id",
        "exit-code-str",
        "exit-code-bool",
        "exit-code-float",
        "timed-out-int",
        "out-len-past-blob",
        "out-len-negative",
        "duration-str",
        "ok-str",
        "errno-str",
        "error-list",
        "header-too-big",
        "blob-too-big",
        "truncated",
    ],
)
def test_bad_frames_are_sandbox_errors(reply: Reply, message: str) -> None:
    sb = FakeSandbox([reply], SandboxConfig(timeout=1.0))
    with pytest.raises(SandboxError, match=message) as info:
        sb.exec("true", timeout=0.5)
    assert "create a new one" in str(info.value) or "lost the sandbox helper" in str(info.value)
    _assert_broken(sb)
    sb.close()


def test_announced_sizes_are_checked_before_allocating() -> None:
    """A 128 MiB (or 4 GiB) announcement fails at once, without reading or allocating it."""
    for size in (128 << 20, 0xFFFFFFFF):
        sb = FakeSandbox([lambda req, size=size: HDR.pack(2, size) + b"{}"], SandboxConfig(max_transfer_mb=16))
        tracemalloc.start()
        t0 = time.monotonic()
        with pytest.raises(SandboxError, match="payload"):
            sb.read_file("big")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 4 << 20 and time.monotonic() - t0 < 5
        sb.close()
    # the exec cap follows output_limit: 2 x (limit + marker slack)
    sb = FakeSandbox([lambda req: frame({"ok": True, "id": req["id"]}, b"x" * 3000)], SandboxConfig(output_limit=1000))
    with pytest.raises(SandboxError, match="payload"):
        sb.exec("true")
    sb.close()


def test_stale_result_is_rejected_and_not_served_later() -> None:
    """A response to an earlier request (the 'previous result' desync) is refused.

    The sandbox then refuses every later call instead of returning shifted results.
    """
    sent: list[bytes] = []

    def first(req: dict[str, Any]) -> bytes:
        sent.append(ok_exec(req))
        return ok_exec(req) + ok_exec(req)  # an extra copy queued behind the real answer

    sb = FakeSandbox([first, lambda req: b""])
    assert sb.exec("true").ok
    with pytest.raises(SandboxError, match="waiting for"):
        sb.exec("true")
    _assert_broken(sb)
    sb.close()


def test_error_responses_keep_the_sandbox_usable() -> None:
    sb = FakeSandbox(
        [lambda req: frame({"ok": False, "id": req["id"], "errno": 2, "error": "No such file", "path": "x"}), ok_exec]
    )
    with pytest.raises(FileNotFoundError):
        sb.read_file("x")
    assert sb.exec("true").ok
    sb.close()


def test_file_over_the_transfer_limit_says_so() -> None:
    """The real helper refuses files over max_transfer_mb with a clear message (EFBIG)."""
    from sandbox_helpers import require_bwrap

    require_bwrap()
    from agentgym.sandboxes import LocalSandbox

    with LocalSandbox(config=SandboxConfig(max_transfer_mb=1)) as sb:
        assert sb.exec("head -c 2000000 /dev/zero > big && head -c 1000 /dev/zero > small").ok
        with pytest.raises(OSError, match="larger than 1 MiB") as info:
            sb.read_file("big")
        assert info.value.errno == 27
        with pytest.raises(OSError, match="larger than 1 MiB"):
            sb.download(".", "/nonexistent-unused")
        assert sb.read_file("small") == b"\0" * 1000
