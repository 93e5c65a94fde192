"""The ``openai:`` policy on the official client, against a scripted stdlib HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import agentgym
from agentgym.parsing import without_tools_prompt
from agentgym.policies import EPISODE_HEADER, OpenAIPolicy, OpenAIPolicyError, PolicyContext, make_policy
from agentgym.trajectory import TokenSegment

ENV = "agentgym/ToolUse-v0"
TASK = "chain-0056"  # 8 peaches at 18 and 4 melons at 24: 240

Scripted = tuple[int, dict[str, Any], dict[str, str]]


def completion(calls: list[tuple[str, dict[str, Any]]], extras: dict[str, Any] | None = None) -> Scripted:
    """A 200 chat completion whose message makes ``calls`` (name, arguments)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": f"stub_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                        for i, (n, a) in enumerate(calls)
                    ],
                },
            }
        ],
    }
    if extras is not None:
        body["agentgym"] = extras
    return 200, body, {}


def error(status: int, message: str, **headers: str) -> Scripted:
    return status, {"error": {"message": message, "type": "error", "param": None, "code": None}}, headers


class Stub(ThreadingHTTPServer):
    """Answers each POST with the next scripted reply (the last one repeats) and records the requests."""

    daemon_threads = True

    def __init__(self, script: list[Scripted]):
        self.script = list(script)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        super().__init__(("127.0.0.1", 0), _StubHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


class _StubHandler(BaseHTTPRequestHandler):
    server: Stub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status, reply, headers = self.server.script.pop(0) if len(self.server.script) > 1 else self.server.script[0]
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub() -> Iterator[Any]:
    servers: list[Stub] = []

    def start(*script: Scripted) -> Stub:
        server = Stub(list(script))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _episode(policy: OpenAIPolicy) -> agentgym.Trajectory:
    try:
        (traj,) = agentgym.collect(ENV, policy, tasks=[TASK], num_workers=1, progress=False)
    finally:
        policy.close()
    return traj


def test_one_rate_limit_does_not_end_the_episode(stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTGYM_OPENAI_API_KEY", "k-123")
    server = stub(error(429, "slow down", **{"Retry-After": "0"}), completion([("submit", {"answer": "240"})]))
    traj = _episode(OpenAIPolicy(server.url, "m"))
    assert traj.termination_reason == "submitted" and traj.outcome_reward == 1.0, traj.metadata
    assert len(server.requests) == 2  # the 429, then its retry
    (h1, b1), (h2, b2) = server.requests
    assert b1 == b2 and h1["authorization"] == "Bearer k-123"
    assert h1[EPISODE_HEADER.lower()] == h2[EPISODE_HEADER.lower()]
    env = agentgym.make(ENV)
    _, info = env.reset(options={"task_id": TASK})
    env.close()
    assert b1["tools"] == info["tools"] and b1["model"] == "m"
    assert b1["messages"] == without_tools_prompt(traj.messages[:2], info["tools"])  # the block is not sent twice
    (assistant,) = [m for m in traj.messages if m["role"] == "assistant"]
    assert assistant["tool_calls"][0]["id"] == "stub_0" and traj.segments == []


def test_an_auth_failure_says_which_variable_to_set(stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTGYM_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = stub(error(401, "invalid api key"))
    traj = _episode(OpenAIPolicy(server.url, "m"))
    assert traj.infra_failure and traj.termination_reason == "policy_error"
    assert "authentication failed (401); set AGENTGYM_OPENAI_API_KEY or OPENAI_API_KEY" in traj.metadata["error"]
    assert len(server.requests) == 1 and server.requests[0][0]["authorization"] == "Bearer EMPTY"


def test_server_errors_are_retried_then_reported_with_the_servers_message(stub: Any) -> None:
    server = stub(error(503, "overloaded"))
    traj = _episode(OpenAIPolicy(server.url, "m", max_retries=2))
    assert len(server.requests) == 3
    assert traj.termination_reason == "policy_error"
    assert "the server answered 503: overloaded" in traj.metadata["error"]


def test_a_server_that_is_down_is_reported_after_the_retries(stub: Any) -> None:
    server = stub(error(500, "unused"))
    url = server.url
    server.shutdown()
    server.server_close()
    policy = OpenAIPolicy(url, "m", max_retries=0, timeout=5)
    env = agentgym.make(ENV)
    obs, info = env.reset(options={"task_id": TASK})
    ctx = PolicyContext(env=env, task=env.task, messages=env.messages, new_messages=obs, tools=info["tools"])
    try:
        with pytest.raises(OpenAIPolicyError, match=r"cannot connect after 0 retries \(is the server up\?\)"):
            policy.act(ctx)
    finally:
        env.close()
        policy.close()


def test_segments_of_a_recording_server_go_to_the_context(stub: Any) -> None:
    def extras(new: bool, *segments: TokenSegment) -> dict[str, Any]:
        return {"new_context": new, "context": 0, "segments": [vars(s) for s in segments]}

    prompt, env_delta = TokenSegment([1, 2], False, None, "prompt", 0), TokenSegment([5], False, None, "env", 1)
    first, second = TokenSegment([3], True, [-0.5], "sampled", 1), TokenSegment([6], True, [-0.1], "sampled", 2)
    call = [("lookup", {"key": "price-peach"})]
    server = stub(
        completion(call, extras(True, prompt, first)),
        completion(call, extras(False, env_delta, second)),
        completion(call, extras(True, prompt, first)),
    )
    policy = OpenAIPolicy(server.url, "m")
    env = agentgym.make(ENV)
    obs, info = env.reset(options={"task_id": TASK})
    ctx = PolicyContext(env=env, task=env.task, messages=env.messages, new_messages=obs, tools=info["tools"])
    try:
        policy.act(ctx)
        policy.act(ctx)
        assert ctx.segments == [prompt, first, env_delta, second]
        policy.act(ctx)  # the server started over (a new context): the segments are the new context's
        assert ctx.segments == [prompt, first] and ctx.state["token_contexts"] == 2
    finally:
        env.close()
        policy.close()
    episodes = {h[EPISODE_HEADER.lower()] for h, _ in server.requests}
    assert len(episodes) == 1 and next(iter(episodes)).startswith("agentgym-")


def test_the_spec_and_the_request_body() -> None:
    policy = make_policy("openai:http://127.0.0.1:9/v1/#tiny")
    assert isinstance(policy, OpenAIPolicy)
    assert (policy.base_url, policy.model) == ("http://127.0.0.1:9/v1", "tiny")
    assert policy.name == "openai:http://127.0.0.1:9/v1#tiny"
    assert make_policy("openai:http://127.0.0.1:9/v1").model == "default"  # type: ignore[attr-defined]
    env = agentgym.make(ENV)
    obs, info = env.reset(seed=0)
    ctx = PolicyContext(env=env, task=env.task, messages=env.messages, new_messages=obs, tools=info["tools"])
    env.close()
    plain = OpenAIPolicy("http://127.0.0.1:9/v1", tools=False).request(ctx)
    assert "tools" not in plain and plain["messages"] == env.messages
    native = OpenAIPolicy("http://127.0.0.1:9/v1").request(ctx)
    assert native["tools"] == info["tools"] and native["messages"][0]["content"] == env.system_prompt
