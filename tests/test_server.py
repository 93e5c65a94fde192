"""`agentgym serve` + RemoteEnv: the same episode as a local env, and a server fit for a network.

Every test runs a real server on 127.0.0.1 (port 0, in a thread) and talks to it over real
sockets. Each hardening test names the defect of the old server it guards against.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym import AgentEnv, Task, TaskSet, tool
from agentgym._http import Limits
from agentgym.policies import ScriptedPolicy
from agentgym.server import CLIENT_KWARGS, EnvServer, RemoteEnv, is_loopback, serve
from agentgym.spaces import AssistantTurn
from agentgym.testing import run_cli

TOKEN = "test-token-0123456789abcdef"
FAST = Limits(request_timeout=0.5, idle_timeout=5.0, max_body=64 << 10)
SIDE_EFFECTS: list[str] = []


def evil_source() -> TaskSet:
    """A ``module:function`` task source a client must not be able to make the server call."""
    SIDE_EFFECTS.append("called")
    return TaskSet([Task("x", "x", split="train"), Task("y", "y", split="test")])


class Probe(AgentEnv):
    """A tool that waits (to overlap requests), a setup with a bug (task ``boom``), and a record of events."""

    default_max_turns = 5
    made = 0

    def __init__(self, **kwargs: Any):
        Probe.made += 1
        self.events: list[str] = []
        self.active = self.max_active = 0
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task("ok", "Wait, then finish.", split="train"), Task("boom", "Crash.", split="test")])

    def setup(self, task: Task) -> None:
        if task.id == "boom":
            raise ZeroDivisionError("probe setup bug")

    @tool(timeout=10)
    def wait(self, seconds: float) -> str:
        """Wait.

        Args:
            seconds: how long
        """
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        time.sleep(seconds)
        self.active -= 1
        self.events.append("waited")
        return f"waited {self.max_active}"

    @tool(terminal=True)
    def done(self) -> str:
        """Finish."""
        return "ok"

    def close(self) -> None:
        self.events.append("closed")
        super().close()


PROBE = "agentgym/ServeProbe-v0"


@pytest.fixture(scope="module", autouse=True)
def _probe_registered() -> Iterator[None]:
    """The probe env exists for this module's tests only (other modules iterate the registry)."""
    assert agentgym.register("ServeProbe-v0", Probe, override=True) == PROBE
    yield
    del gym.registry[PROBE]


def call(name: str, **args: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"


@pytest.fixture
def start() -> Iterator[Any]:
    """Start servers on 127.0.0.1 (port 0) in threads; stopped and closed after the test."""
    servers: list[EnvServer] = []

    def go(host: str = "127.0.0.1", **kwargs: Any) -> EnvServer:
        kwargs.setdefault("allowed", ["agentgym/ToolUse-v0", PROBE])
        kwargs.setdefault("limits", FAST)
        srv = serve(host, 0, **kwargs)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(srv)
        return srv

    yield go
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server(start: Any) -> str:
    srv = start()
    return f"http://127.0.0.1:{srv.server_port}"


def post(url: str, path: str, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


def raw(url: str, data: bytes, timeout: float = 3.0) -> bytes:
    """Send bytes on a fresh socket and read the answer until the server closes (or ``timeout``)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks: list[bytes] = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# ----- the environment over HTTP -------------------------------------------------------


def test_remote_episode_equals_local(server: str) -> None:
    local = agentgym.make("agentgym/ToolUse-v0")
    remote = RemoteEnv(server, "agentgym/ToolUse-v0")
    assert remote.env_id == "agentgym/ToolUse-v0"
    space, local_space = remote.action_space, local.action_space
    assert isinstance(space, AssistantTurn) and isinstance(local_space, AssistantTurn)
    assert (space.tool_names, space.arg_names) == (local_space.tool_names, local_space.arg_names)
    assert remote.task_ids == local.tasks.ids
    obs_l, info_l = local.reset(seed=4)
    obs_r, info_r = remote.reset(seed=4)
    assert (obs_l, info_l) == (obs_r, info_r)
    for action in [*local.oracle_turns(local.task)]:
        assert local.step(action) == tuple(remote.step(action))
    assert remote.messages == local.messages  # rebuilt from reset/step returns alone
    remote.close()
    remote.close()
    local.close()


def test_remote_env_passes_gymnasium_check_env(start: Any) -> None:
    srv = start(limits=Limits())  # sampled actions can be large
    env = RemoteEnv(f"http://127.0.0.1:{srv.server_port}", "agentgym/ToolUse-v0")
    check_env(env, skip_render_check=True)
    env.close()


def test_remote_finish_equals_local(server: str) -> None:
    local = agentgym.make("agentgym/ToolUse-v0")
    remote = RemoteEnv(server, "agentgym/ToolUse-v0", max_turns=3)
    local.reset(seed=1)
    remote.reset(seed=1)
    assert remote.finish("budget") == local.finish("budget")
    with pytest.raises(RuntimeError, match=r"-> 409: no running episode to finish"):
        remote.finish("again")
    with pytest.raises(RuntimeError, match=r"-> 409: no running episode in this session: reset it first"):
        remote.step("hi")
    remote.close()
    local.close()


def test_remote_errors_are_clear(server: str) -> None:
    with pytest.raises(RuntimeError, match="agentgym/Calculator-v0 is not served here"):
        RemoteEnv(server, "agentgym/Calculator-v0")
    remote = RemoteEnv(server, "agentgym/ToolUse-v0")
    with pytest.raises(RuntimeError, match=r"-> 409: no running episode in this session: reset it first"):
        remote.step("hi")
    with pytest.raises(RuntimeError, match=r"-> 400: no task 'nope' in agentgym/ToolUse-v0"):
        remote.reset(options={"task_id": "nope"})
    with pytest.raises(RuntimeError, match=r"-> 400: reset options not allowed from clients: extra"):
        remote.reset(options={"extra": 1})
    remote.close()
    with pytest.raises(RuntimeError, match=r"-> 400: cannot make agentgym/ToolUse-v0 .*unknown ToolUse kinds"):
        RemoteEnv(server, "agentgym/ToolUse-v0", kinds=["nope"])  # the constructor's own error, relayed
    with pytest.raises(RuntimeError, match=r"-> 400: constructor arguments 'split' must be"):
        RemoteEnv(server, "agentgym/ToolUse-v0", split="nope")


def test_collect_through_remote_env_equals_local(start: Any) -> None:
    """Agentgym's own collect drives a RemoteEnv with policies that read only ctx.messages/ctx.tools."""
    server = f"http://127.0.0.1:{start(limits=Limits()).server_port}"  # random turns can be 0.5 MB
    local = agentgym.make("agentgym/ToolUse-v0")
    tasks = local.tasks.ids[:3]
    script = ScriptedPolicy([call("calculator", expression="2+3"), "no call here", call("submit", answer="5")])
    for policy in ("random", script):
        want = agentgym.collect("agentgym/ToolUse-v0", policy, tasks=tasks, group_size=2, seed=3, progress=False)
        got = agentgym.collect(
            lambda: RemoteEnv(server, "agentgym/ToolUse-v0"), policy, tasks=tasks, group_size=2, seed=3, progress=False
        )
        assert [t.metadata.get("error") for t in got] == [None] * len(got)
        assert [t.env_id for t in got] == ["agentgym/ToolUse-v0"] * len(got)
        assert [(t.reward, t.outcome_reward, t.process_rewards) for t in got] == [
            (t.reward, t.outcome_reward, t.process_rewards) for t in want
        ]
        assert [t.messages for t in got] == [t.messages for t in want]
        assert [t.termination_reason for t in got] == [t.termination_reason for t in want]
    local.close()


# ----- hardening: one test per defect of the old server -----------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_limit": "x"},
        {"max_tool_output": "x"},
        {"max_tool_output": 0},
        {"max_turns": 1e300},
        {"parser": 5},
        {"parser": "not-a-parser"},
        {"process_rewards": {"step_cost": 1e308}},
        {"kinds": ["arithmetic"] * 256},
        {"split": "everything"},
        {"grade_on_truncation": "yes"},
    ],
    ids=lambda k: next(iter(k)),
)
def test_allowed_kwargs_of_the_wrong_type_or_range_are_a_400_before_the_env_is_made(
    server: str, kwargs: dict[str, Any]
) -> None:
    """Review finding: allowed names with bad values made every later step a 500 (or cost seconds of CPU)."""
    made = Probe.made
    status, out = post(server, "/envs", {"env_id": "agentgym/ToolUse-v0", "kwargs": kwargs})
    assert status == 400 and "must be" in out["error"], out
    status, out = post(server, "/envs", {"env_id": PROBE, "kwargs": kwargs})
    assert status == 400 and Probe.made == made


@pytest.mark.parametrize("tool_format", [["hermes"], {"a": 1}, 5, "nope"])
def test_a_bad_tool_format_or_task_id_in_reset_options_is_a_400(server: str, tool_format: Any) -> None:
    status, out = post(server, "/envs", {"env_id": "agentgym/ToolUse-v0"})
    sid = out["session"]
    status, out = post(server, f"/envs/{sid}/reset", {"seed": 1, "options": {"tool_format": tool_format}})
    assert status == 400 and "tool_format" in out["error"], out
    status, out = post(server, f"/envs/{sid}/reset", {"seed": 1, "options": {"task_id": [1]}})
    assert status == 400 and "task_id" in out["error"], out
    status, _ = post(server, f"/envs/{sid}/reset", {"seed": 1, "options": {"tool_format": "json"}})
    assert status == 200


def test_task_source_and_code_kwargs_are_rejected_before_making_the_env(server: str) -> None:
    """Old server: ``kwargs`` went straight to the constructor, so ``tasks="module:function"`` ran the function."""
    made, SIDE_EFFECTS[:] = Probe.made, []
    for kwargs in (
        {"tasks": f"{__name__}:evil_source"},
        {"source": f"{__name__}:evil_source"},
        {"tool_timeout": 1e9},
        {"split": "train", "sandbox_options": {"image": "x"}},
    ):
        status, out = post(server, "/envs", {"env_id": PROBE, "kwargs": kwargs})
        assert status == 400, out
        assert "not allowed from clients" in out["error"] and "allowed: " in out["error"]
        assert "max_turns" in out["error"] and "--allow-kwarg" in out["error"]
    status, out = post(
        server, "/envs", {"env_id": "agentgym/ToolUse-v0", "kwargs": {"tasks": f"{__name__}:evil_source"}}
    )
    assert status == 400
    assert SIDE_EFFECTS == [] and Probe.made == made  # nothing was called, no environment was made
    status, out = post(server, "/envs", {"env_id": PROBE, "kwargs": {"kinds": [["nested"]]}})
    assert status == 400 and "must be a JSON scalar" in out["error"] and "flat list or object" in out["error"]
    status, out = post(server, "/envs", {"env_id": PROBE, "kwargs": {"process_rewards": {"a": {"b": 1}}}})
    assert status == 400 and "must be a JSON scalar" in out["error"]
    assert CLIENT_KWARGS.isdisjoint({"tasks", "source", "sandbox", "sandbox_options", "integrity_scan", "tool_timeout"})


def test_process_reward_weights_travel(server: str) -> None:
    remote = RemoteEnv(server, "agentgym/ToolUse-v0", process_rewards={"step_cost": 0.5})
    remote.reset(seed=0)
    assert remote.step("no call")[4]["reward_components"]["step_cost"] != 0
    remote.close()
    with pytest.raises(RuntimeError, match=r"-> 400: cannot make .*unknown reward components \['nope'\]"):
        RemoteEnv(server, "agentgym/ToolUse-v0", process_rewards={"nope": 1.0})


def test_operator_can_allow_more_kwargs(start: Any) -> None:
    srv = start(allowed_kwargs=CLIENT_KWARGS | {"tool_timeout"})
    remote = RemoteEnv(f"http://127.0.0.1:{srv.server_port}", PROBE, tool_timeout=3.0)
    [session] = srv.sessions.values()
    assert session.env.tool_timeout == 3.0
    remote.close()


def test_oversized_body_is_413_without_reading_it(server: str) -> None:
    """Old server: read Content-Length bytes whatever their number (a 1 GB body was read into memory)."""
    started = time.monotonic()
    reply = raw(server, b"POST /envs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{")
    assert reply.startswith(b"HTTP/1.1 413 ") and b"over the limit of 65536 bytes" in reply
    assert time.monotonic() - started < 1.0


def test_negative_content_length_is_400(server: str) -> None:
    """Old server: ``rfile.read(-1)`` read until the client closed (a hung thread per request)."""
    for length in (b"-1", b"-5"):
        reply = raw(server, b"POST /envs HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b'\r\n\r\n{"env_id": 1}')
        assert reply.startswith(b"HTTP/1.1 400 ") and b"invalid Content-Length '" + length + b"'" in reply


def test_slowloris_is_cut_off(server: str) -> None:
    """Old server: no socket timeout, so a client trickling its request held a thread forever."""
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(b"POST /envs HTTP/1.1\r\n")
        cut = None
        for _ in range(40):  # a header byte every 0.1 s, for up to 4 s
            try:
                s.sendall(b"X")
            except OSError:
                cut = time.monotonic() - started
                break
            time.sleep(0.1)
        if cut is None:
            s.settimeout(3)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
            cut = time.monotonic() - started
    assert cut < FAST.request_timeout + 1.5  # 4 s if never cut; margin for a loaded machine


def test_session_cap_then_room_after_close(start: Any) -> None:
    """Old server: unlimited sessions (every POST /envs held an environment forever)."""
    srv = start(max_sessions=2)
    url = f"http://127.0.0.1:{srv.server_port}"
    first, second = RemoteEnv(url, PROBE), RemoteEnv(url, PROBE)
    host = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    host.request("POST", "/envs", body=json.dumps({"env_id": PROBE}))
    resp = host.getresponse()
    out = json.loads(resp.read())
    assert resp.status == 503 and resp.getheader("Retry-After") == "5"
    assert "maximum of 2 sessions" in out["error"] and "DELETE /envs/<session>" in out["error"]
    host.close()
    first.close()
    third = RemoteEnv(url, PROBE)
    assert len(srv.sessions) == 2 and len(third.session) >= 32  # secrets.token_urlsafe(24)
    second.close()
    third.close()


def test_idle_session_expires(start: Any) -> None:
    """Old server: sessions never expired (an abandoned client leaked its environment and sandboxes)."""
    srv = start(session_ttl=0.3)
    remote = RemoteEnv(f"http://127.0.0.1:{srv.server_port}", PROBE)
    remote.reset(seed=0)
    [session] = srv.sessions.values()
    time.sleep(0.9)
    assert srv.sessions == {} and session.env.events[-1] == "closed"
    with pytest.raises(RuntimeError, match=r"-> 404: session \S+ expired after 0.3 s idle; create a new one"):
        remote.step(call("done"))
    remote.close()  # closing an expired session is not an error


def test_token(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old server: no authentication at all."""
    monkeypatch.delenv("AGENTGYM_SERVE_TOKEN", raising=False)
    srv = start(token=TOKEN)
    url = f"http://127.0.0.1:{srv.server_port}"
    with pytest.raises(RuntimeError, match=r"-> 401: unauthorized: no Authorization header.*AGENTGYM_SERVE_TOKEN"):
        RemoteEnv(url, PROBE)
    with pytest.raises(RuntimeError, match=r"-> 401: unauthorized: a wrong token"):
        RemoteEnv(url, PROBE, token="nope")
    assert srv.sessions == {}
    RemoteEnv(url, PROBE, token=TOKEN).close()
    monkeypatch.setenv("AGENTGYM_SERVE_TOKEN", TOKEN)
    remote = RemoteEnv(url, PROBE)  # the token from the environment
    remote.reset(seed=0)
    remote.close()
    assert raw(url, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").endswith(b'{"status": "ok"}')


def test_token_is_required_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTGYM_SERVE_TOKEN", raising=False)
    with pytest.raises(ValueError, match=r"without a token .* --token TOKEN, or set AGENTGYM_SERVE_TOKEN"):
        serve("0.0.0.0", 0)
    with pytest.raises(ValueError, match="without a token"):
        serve("", 0)
    srv = serve("0.0.0.0", 0, token=TOKEN)
    srv.server_close()
    srv = serve("::1", 0)  # IPv6 loopback: no token needed
    assert srv.token is None and srv.server_address[0] == "::1"
    srv.server_close()
    monkeypatch.setenv("AGENTGYM_SERVE_TOKEN", TOKEN)
    srv = serve("0.0.0.0", 0)
    assert srv.token == TOKEN
    srv.server_close()
    assert [is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost", "0.0.0.0", "", "10.0.0.1")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_server_fault_is_500_client_error_is_4xx(server: str) -> None:
    """Old server: every exception was a 400, a bug in the environment included."""
    remote = RemoteEnv(server, PROBE)
    with pytest.raises(RuntimeError, match=r"-> 500: internal server error: ZeroDivisionError: probe setup bug"):
        remote.reset(options={"task_id": "boom"})
    session = remote.session
    assert post(server, f"/envs/{session}/step", {"action": "hi"})[0] == 409  # no episode: the client's fault
    assert post(server, f"/envs/{session}/step", {})[0] == 400
    assert post(server, f"/envs/{session}/step", {"action": 5})[0] == 400
    assert post(server, f"/envs/{session}/reset", {"seed": "x"})[0] == 400
    assert post(server, "/envs/not-a-session/step", {"action": "hi"}) == (
        404,
        {"error": "no session not-a-session; create one (POST /envs)"},
    )
    assert raw(server, b"PUT /envs HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert raw(server, b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    remote.close()


def test_keep_alive(server: str) -> None:
    """Old server: HTTP/1.0, one connection per request (and RemoteEnv opened one per call)."""
    host, port = server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/envs", body=json.dumps({"env_id": PROBE}))
    resp = conn.getresponse()
    session = json.loads(resp.read())["session"]
    assert resp.version == 11 and not resp.will_close
    sock = conn.sock
    conn.request("DELETE", f"/envs/{session}")
    assert json.loads(conn.getresponse().read()) == {"closed": True}
    assert conn.sock is sock
    conn.close()
    remote = RemoteEnv(server, PROBE)
    remote.reset(seed=0)
    assert remote._conn is not None
    sock = remote._conn.sock
    remote.step(call("done"))
    assert remote._conn.sock is sock  # RemoteEnv kept its connection
    remote.close()


def test_concurrent_steps_on_one_session_are_serialized(server: str) -> None:
    remote = RemoteEnv(server, PROBE)
    remote.reset(seed=0)
    results: list[tuple[int, dict[str, Any]]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                post(server, f"/envs/{remote.session}/step", {"action": call("wait", seconds=0.2)})
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[1]["info"]["turn"] for r in results) == [1, 2, 3]
    assert all(r[1]["observation"][0]["content"] == "waited 1" for r in results)  # never two at once
    remote.close()


def test_delete_waits_for_the_running_step(start: Any) -> None:
    """Old server: DELETE closed the environment under a running step (no lock on DELETE)."""
    srv = start()
    url = f"http://127.0.0.1:{srv.server_port}"
    remote = RemoteEnv(url, PROBE)
    remote.reset(seed=0)
    [session] = srv.sessions.values()
    out: list[tuple[int, dict[str, Any]]] = []
    stepping = threading.Thread(
        target=lambda: out.append(post(url, f"/envs/{remote.session}/step", {"action": call("wait", seconds=0.4)}))
    )
    stepping.start()
    deadline = time.monotonic() + 5
    while session.env.active == 0 and time.monotonic() < deadline:  # the step is inside the tool
        time.sleep(0.01)
    remote.close()
    stepping.join()
    assert out[0][0] == 200 and session.env.events == ["waited", "closed"]
    assert post(url, f"/envs/{remote.session}/step", {"action": "x"})[1]["error"].endswith(
        "was closed; create a new one (POST /envs)"
    )


def test_remote_env_reconnects_after_the_server_closed_an_idle_connection(start: Any) -> None:
    srv = start(limits=Limits(idle_timeout=0.2))
    remote = RemoteEnv(f"http://127.0.0.1:{srv.server_port}", PROBE)
    remote.reset(seed=0)
    time.sleep(0.5)  # the server closes the kept-alive connection
    _, _, terminated, _, _ = remote.step(call("done"))  # a step is not retried: it must not hit the dead socket
    assert terminated
    remote.close()


class ResettingProxy:
    """A TCP proxy to the server that resets the next ``drop`` connections once their request has arrived."""

    def __init__(self, port: int):
        self.port, self.drop, self.dropped = port, 0, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.port))
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        with client, upstream:
            while data := client.recv(65536):
                if self.drop:
                    self.drop -= 1
                    self.dropped += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                    return
                upstream.sendall(data)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass


def test_remote_env_retries_only_repeatable_calls_after_a_reset_connection(start: Any) -> None:
    srv = start()
    proxy = ResettingProxy(srv.server_port)
    remote = RemoteEnv(f"http://127.0.0.1:{proxy.listener.getsockname()[1]}", PROBE)
    proxy.drop = 1
    assert remote.task_ids == ["ok"]  # GET: retried on a new connection
    proxy.drop = 1
    assert remote.reset(seed=0)[1]["task_id"] == "ok"  # a seeded reset: retried
    assert proxy.dropped == 2
    proxy.drop = 1
    with pytest.raises(ConnectionError, match=r"POST /envs/\S+/step failed: .*not retried: the call is not safe"):
        remote.step(call("wait", seconds=0.0))
    [session] = srv.sessions.values()
    assert session.env.events == []  # the step never reached the environment, and was not sent twice
    assert remote.step(call("wait", seconds=0.0))[4]["turn"] == 1
    remote.close()
    proxy.listener.close()


def test_remote_env_timeout_is_clear(server: str) -> None:
    remote = RemoteEnv(server, PROBE, timeout=0.3)
    remote.reset(seed=0)
    with pytest.raises(TimeoutError, match=r"step got no reply within 0.3 s \(RemoteEnv\(timeout=...\) waits longer\)"):
        remote.step(call("wait", seconds=0.8))
    remote.close()


def test_cli_serve_prints_url_and_auth() -> None:
    cmd = [sys.executable, "-m", "agentgym.cli", "serve", "--port", "0", "--env", "ToolUse-v0", "--max-sessions", "3"]
    env = {**os.environ, "AGENTGYM_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        url = first.split(" on ")[-1].strip()
        assert first.startswith("serving agentgym/ToolUse-v0 on http://127.0.0.1:") and url.startswith("http://")
        assert second.startswith("auth: on") and "at most 3 sessions" in second and "900 s idle" in second
        remote = RemoteEnv(url, "ToolUse-v0", token=TOKEN)
        assert remote.reset(seed=0)[1]["turn"] == 0
        remote.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_cli_serve_errors() -> None:
    out = run_cli("serve", "--host", "0.0.0.0", "--port", "0", env={"AGENTGYM_SERVE_TOKEN": ""}, timeout=60)
    assert out.returncode == 2 and "--token TOKEN, or set AGENTGYM_SERVE_TOKEN" in out.stderr
    out = run_cli("serve", "--env", "Nope-v0", timeout=60)
    assert out.returncode == 2 and "unknown environment agentgym/Nope-v0" in out.stderr
    help_text = run_cli("serve", "--help", timeout=60).stdout
    for flag in ("--token", "--max-sessions", "--session-ttl", "--allow-kwarg", "--env", "--host", "--port"):
        assert flag in help_text
