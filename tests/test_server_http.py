"""agentgym._http: the hardened JSON-over-HTTP base, against a real server and real sockets."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentgym._http import HTTPError, JSONHandler, JSONServer, Limits, Reply, Route, StreamReply

LIMITS = Limits(
    max_body=1024, max_header_bytes=2048, max_headers=10, request_timeout=0.6, idle_timeout=1.0, max_connections=3
)


class Handler(JSONHandler):
    routes = (
        Route("GET", "/healthz", "on_health", public=True),
        Route("POST", "/echo", "on_echo"),
        Route("POST", "/items/{item}", "on_item"),
        Route("DELETE", "/items/{item}", "on_item_delete"),
        Route("GET", "/boom", "on_boom"),
        Route("GET", "/stream", "on_stream"),
    )

    def on_health(self, body: None) -> Any:
        return {"status": "ok"}

    def on_echo(self, body: dict[str, Any]) -> Any:
        return {"body": body}

    def on_item(self, body: dict[str, Any], item: str) -> Any:
        if "value" not in body:
            raise HTTPError(422, "missing field 'value'")
        return Reply(201, {"item": item, "value": body["value"]}, {"X-Item": item})

    def on_item_delete(self, body: None, item: str) -> Any:
        return {"deleted": item}

    def on_boom(self, body: None) -> Any:
        raise KeyError("secret-internal-detail")

    def on_stream(self, body: None) -> Any:
        return StreamReply(iter([b"data: 1\n\n", b"data: 2\n\n"]))


@pytest.fixture
def make_server() -> Iterator[Any]:
    servers: list[JSONServer] = []

    def start(token: str | None = None, limits: Limits = LIMITS) -> JSONServer:
        srv = JSONServer(("127.0.0.1", 0), Handler, token=token, limits=limits)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def request(
    srv: JSONServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=headers or {})
    resp = conn.getresponse()
    out = json.loads(resp.read())
    conn.close()
    return resp.status, out, resp


def raw(srv: JSONServer, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh socket; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", srv.server_port), timeout=timeout) as s:
        s.sendall(data)
        chunks: list[bytes] = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_routes_params_replies_and_keep_alive(make_server: Any) -> None:
    srv = make_server()
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    conn.request("POST", "/items/a7", body=json.dumps({"value": 3}))
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read()), resp.getheader("X-Item")) == (201, {"item": "a7", "value": 3}, "a7")
    sock = conn.sock
    conn.request("DELETE", "/items/a7")
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (200, {"deleted": "a7"})
    assert conn.sock is sock and sock is not None  # the same connection served both
    assert resp.getheader("Content-Length") == str(len(json.dumps({"deleted": "a7"})))
    conn.close()


def test_client_errors_are_4xx_json(make_server: Any) -> None:
    srv = make_server()
    status, out, _ = request(srv, "GET", "/nope")
    assert (status, out) == (404, {"error": "no route GET /nope"})
    status, out, resp = request(srv, "GET", "/echo")
    assert status == 405 and resp.getheader("Allow") == "POST" and "use POST" in out["error"]
    status, out, _ = request(srv, "POST", "/echo", b"{not json")
    assert status == 400 and out["error"].startswith("the body is not valid JSON")
    status, out, _ = request(srv, "POST", "/echo", b"[1, 2]")
    assert (status, out) == (400, {"error": "the body must be a JSON object, got list"})
    status, out, _ = request(srv, "POST", "/echo", b'{"x": NaN}')
    assert status == 400 and "NaN is not a JSON number" in out["error"]
    status, out, _ = request(srv, "POST", "/items/a", {})
    assert (status, out) == (422, {"error": "missing field 'value'"})
    status, out, _ = request(srv, "POST", "/echo", b"")
    assert (status, out) == (200, {"body": {}})


def test_server_fault_is_500_with_type_and_message_logged_with_traceback(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    srv = make_server()
    with caplog.at_level(logging.ERROR, logger="agentgym.http"):
        status, out, _ = request(srv, "GET", "/boom")
    assert (status, out) == (500, {"error": "internal server error: KeyError: 'secret-internal-detail'"})
    assert "Traceback" not in out["error"]
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_bearer_token(make_server: Any) -> None:
    srv = make_server(token="s3cret")
    status, out, resp = request(srv, "POST", "/echo", {})
    assert status == 401 and "no Authorization header" in out["error"] and "Bearer" in out["error"]
    assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
    status, out, _ = request(srv, "POST", "/echo", {}, {"Authorization": "Bearer wrong"})
    assert status == 401 and "a wrong token" in out["error"]
    status, out, _ = request(srv, "POST", "/echo", {}, {"Authorization": "Basic s3cret"})
    assert status == 401
    assert request(srv, "POST", "/echo", {"a": 1}, {"Authorization": "Bearer s3cret"})[:2] == (200, {"body": {"a": 1}})
    assert request(srv, "GET", "/healthz")[:2] == (200, {"status": "ok"})  # public route
    # An unauthenticated big body is not read: the answer comes from the headers alone, then the connection closes.
    reply = raw(srv, b"POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 401 ") and b"Connection: close\r\n" in reply


def test_oversized_body_is_413_without_reading_it(make_server: Any) -> None:
    srv = make_server()
    started = time.monotonic()
    # 1 GB announced, none sent: the server must answer from the headers alone.
    reply = raw(srv, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in reply
    assert b"over the limit of 1024 bytes" in reply
    assert time.monotonic() - started < LIMITS.request_timeout  # answered, not waited for the body


@pytest.mark.parametrize(
    ("length", "status", "message"),
    [
        ("-1", b"400", b"invalid Content-Length '-1'"),
        ("abc", b"400", b"invalid Content-Length 'abc'"),
        (None, b"411", b"needs a JSON body with a Content-Length"),
    ],
)
def test_bad_content_length(make_server: Any, length: str | None, status: bytes, message: bytes) -> None:
    srv = make_server()
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + (f"Content-Length: {length}\r\n".encode() if length else b"")
    reply = raw(srv, head + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 " + status) and message in reply


def test_header_caps_431(make_server: Any) -> None:
    srv = make_server()
    many = b"".join(f"X-H{i}: v\r\n".encode() for i in range(11))
    reply = raw(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ") and b"at most 10 lines" in reply
    big = b"X-Big: " + b"a" * 3000 + b"\r\n"
    assert raw(srv, b"GET /healthz HTTP/1.1\r\n" + big + b"\r\n").startswith(b"HTTP/1.1 431 ")
    ten = b"".join(f"X-H{i}: v\r\n".encode() for i in range(9)) + b"Connection: close\r\n"
    reply = raw(srv, b"GET /healthz HTTP/1.1\r\n" + ten + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ") and b"Server: agentgym\r\n" in reply  # no Python version told


@pytest.mark.parametrize("head_at_once", [False, True], ids=["trickled-headers", "trickled-body"])
def test_slowloris_is_cut_off_within_the_request_timeout(make_server: Any, head_at_once: bool) -> None:
    srv = make_server()
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n"
    body = b'{"a": "' + b"x" * 31 + b'"}'
    with socket.create_connection(("127.0.0.1", srv.server_port), timeout=5) as s:
        started = time.monotonic()
        if head_at_once:
            s.sendall(head)
        closed_after = None
        # One byte every 0.1 s: each read is quick, the whole request is not.
        for byte in body if head_at_once else head + body:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.1)
        if closed_after is None:
            s.settimeout(2)
            try:
                assert s.recv(1024) == b""  # cut without an answer
            except ConnectionResetError:
                pass
            closed_after = time.monotonic() - started
    assert LIMITS.request_timeout - 0.15 < closed_after < LIMITS.request_timeout + 1.5  # margin for a loaded machine


def test_idle_keep_alive_connection_is_closed(make_server: Any) -> None:
    srv = make_server()
    with socket.create_connection(("127.0.0.1", srv.server_port), timeout=5) as s:
        started = time.monotonic()
        assert s.recv(1024) == b""
        assert LIMITS.idle_timeout - 0.1 < time.monotonic() - started < LIMITS.idle_timeout + 1.0


def test_connection_cap_answers_503(make_server: Any) -> None:
    srv = make_server()
    held = [socket.create_connection(("127.0.0.1", srv.server_port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.1)
        reply = raw(srv, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in reply and b"too many connections" in reply
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert request(srv, "GET", "/healthz")[0] == 200  # slots are freed when connections end


def test_stream_reply_is_chunked(make_server: Any) -> None:
    srv = make_server()
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    conn.request("GET", "/stream")
    resp = conn.getresponse()
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.read() == b"data: 1\n\ndata: 2\n\n"
    conn.request("GET", "/healthz")  # the connection is still usable
    assert json.loads(conn.getresponse().read()) == {"status": "ok"}
    conn.close()


def test_a_route_naming_an_http_server_method_is_refused() -> None:
    with pytest.raises(TypeError, match=r"route POST /x names 'finish'.*name route methods on_<name>"):

        class Clash(JSONHandler):
            routes = (Route("POST", "/x", "finish"),)

    with pytest.raises(TypeError, match=r"names 'on_missing', which is not a method"):

        class Missing(JSONHandler):
            routes = (Route("GET", "/y", "on_missing"),)


def test_two_content_lengths_are_refused_not_split_into_two_requests(make_server: Any) -> None:
    """Review finding: the first Content-Length counted and the rest of the body was read as a second request."""
    srv = make_server()
    hidden = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"{}" + hidden
    head = f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    out = raw(srv, head + body)
    assert out.startswith(b"HTTP/1.1 400") and b"more than one Content-Length" in out
    assert out.count(b"HTTP/1.1 ") == 1  # the connection closed: nothing after it was read as a request


def test_deeply_nested_json_is_the_clients_400_not_a_500(make_server: Any) -> None:
    srv = make_server(limits=Limits(max_body=1 << 20))
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    conn.request("POST", "/echo", body=b'{"a": ' + b"[" * 5_000 + b"]" * 5_000 + b"}")
    resp = conn.getresponse()
    status, out = resp.status, json.loads(resp.read())
    conn.close()
    assert status == 400 and "nested too deeply" in out["error"]


def test_a_client_without_the_token_cannot_hold_a_connection_slot(make_server: Any) -> None:
    limits = Limits(idle_timeout=3.0, untrusted_idle_timeout=0.3, max_connections=2)
    srv = make_server(token="s3cret", limits=limits)
    # silent: closed after the short untrusted idle timeout, not the 3 s a client with the token gets
    with socket.create_connection(("127.0.0.1", srv.server_port), timeout=5) as s:
        started = time.monotonic()
        assert s.recv(1024) == b""
        assert time.monotonic() - started < 2.0
    # a 401 closes the connection, even on keep-alive; so does the public route's keep-alive run out fast
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    conn.request("POST", "/echo", body=b"{}", headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 401 and resp.getheader("Connection") == "close"
    conn.close()
    # with the token, keep-alive lasts: a second request 0.8 s later rides the same connection
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=5)
    auth = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
    conn.request("POST", "/echo", body=b"{}", headers=auth)
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    time.sleep(0.8)
    conn.request("POST", "/echo", body=b"{}", headers=auth)
    second = conn.getresponse()
    second.read()
    assert (first.status, second.status) == (200, 200) and conn.sock is sock
    conn.close()
