"""A hardened JSON-over-HTTP server on the standard library (``http.server``), for agentgym's servers.

Subclass :class:`JSONHandler`, list its :class:`Route` s, and serve it with :class:`JSONServer`::

    class Handler(JSONHandler):
        routes = (Route("GET", "/healthz", "on_health", public=True), Route("POST", "/items/{id}", "on_update"))

        def on_health(self, body: None) -> Any:
            return {"status": "ok"}

        def on_update(self, body: dict[str, Any], id: str) -> Any:
            if "value" not in body:
                raise HTTPError(400, "missing field 'value'")
            return {"id": id}  # 200; or Reply(201, {...}, headers={...})

    server = JSONServer(("127.0.0.1", 0), Handler, token="secret")
    threading.Thread(target=server.serve_forever, daemon=True).start()

What every request gets (limits are :class:`Limits`, per server):

* ``Authorization: Bearer <token>`` checked in constant time when the server has a token
  (routes with ``public=True`` excepted); 401 with ``WWW-Authenticate: Bearer`` otherwise.
* Request line and headers capped (``max_header_bytes``, ``max_headers``; 431), body capped
  (``max_body``; 413, never read past the cap); 400 for a negative or non-numeric
  ``Content-Length``, 411 when a body route gets none (chunked uploads are not accepted).
* A whole request (headers and body) must arrive within ``request_timeout`` seconds of its first
  byte (a client trickling bytes is cut off); an idle keep-alive connection is closed after
  ``idle_timeout`` (``untrusted_idle_timeout`` until the connection has sent the server's token:
  a client without it cannot hold one of the ``max_connections`` slots for long); at most
  ``max_connections`` connections at once (more get 503); a 401 closes the connection.
* HTTP/1.1 keep-alive; every reply carries ``Content-Length`` (or is chunked: :class:`StreamReply`).
* JSON replies; errors are ``{"error": "..."}``: 404 unknown route, 405 wrong method (with
  ``Allow``), 400 for a body that is not a JSON object, :class:`HTTPError` for the handler's
  own 4xx, and 500 for any other exception (logged with its traceback on the server; the client
  sees only its type and message).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

log = logging.getLogger("agentgym.http")

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is loopback only: 127.0.0.0/8, ::1 or a name resolving to them."""
    if not host:
        return False  # "" binds every interface
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def serve_until_interrupted(server: ThreadingHTTPServer) -> int:
    """``serve_forever`` until Ctrl-C, then close the server; a command's exit status (0)."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


class HTTPError(Exception):
    """Raise from a route method to answer ``{"error": message}`` with ``status`` (and extra headers)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class Reply:
    """A route's answer when it is not a plain 200: a status, a JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamReply:
    """A streamed 200 (``Transfer-Encoding: chunked``): each item of ``chunks`` is sent as it comes.

    For server-sent events keep ``content_type="text/event-stream"`` and yield ``data: ...`` events,
    each ending in a blank line.
    """

    chunks: Iterable[bytes]
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """``method`` + ``path`` -> the handler method named ``action``.

    ``path`` segments in braces (``/envs/{session}/step``) match one segment and are passed to
    the method as keyword arguments: it is called as ``action(body, **params)``, ``body`` being
    the request's JSON object (``{}`` for an empty body) on ``POST``/``PUT``/``PATCH``, else
    None. Name the methods ``on_<name>``: ``http.server`` has its own ``setup``, ``handle``,
    ``finish``..., and a route naming one of those is refused. ``public`` routes need no token.
    """

    method: str
    path: str
    action: str
    public: bool = False

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` matches, else None."""
        m = _compile(self.path).fullmatch(path)
        return m.groupdict() if m else None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compile(template: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(template)
    if pattern is None:
        parts = re.split(r"\{(\w+)\}", template)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        pattern = _PATTERNS[template] = re.compile(regex)
    return pattern


@dataclass(frozen=True)
class Limits:
    """Per-server limits (sizes in bytes, times in seconds)."""

    max_body: int = 8 << 20  # request body
    max_header_bytes: int = 32 << 10  # request line + all header lines
    max_headers: int = 64  # header lines
    request_timeout: float = 30.0  # from a request's first byte to its last
    idle_timeout: float = 120.0  # a keep-alive connection waiting for its next request
    untrusted_idle_timeout: float = 5.0  # the same, before the connection sent a valid token (servers with one)
    max_connections: int = 128  # connections served at once


class _HeaderTooLarge(Exception):
    pass


class _RequestReader:
    """The connection's input: a total deadline per request, and a budget on its head (line + headers)."""

    def __init__(self, sock: socket.socket, limits: Limits):
        self.sock = sock
        self.limits = limits
        self.buffer = bytearray()
        self.deadline: float | None = None  # None: waiting for a request (idle timeout per read)
        self.head_bytes: int | None = None  # counted while reading the head, else None
        self.head_lines = 0
        self.trusted = False  # the connection has proved it holds the token (or the server has none)

    def start_request(self) -> None:
        self.deadline = None
        self.head_bytes, self.head_lines = 0, 0

    def _fill(self) -> bool:
        """Receive more bytes into the buffer; False at end of stream."""
        if self.deadline is None:
            timeout = self.limits.idle_timeout
            if not self.trusted:
                timeout = min(timeout, self.limits.untrusted_idle_timeout)
        else:
            timeout = self.deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError(f"the request was not received within {self.limits.request_timeout:g} s")
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if data and self.deadline is None:
            self.deadline = time.monotonic() + self.limits.request_timeout
        self.buffer += data
        return bool(data)

    def readline(self, limit: int = -1) -> bytes:
        cap = limit if limit >= 0 else 1 << 62
        if self.head_bytes is not None:
            cap = min(cap, max(0, self.limits.max_header_bytes - self.head_bytes) + 1)
        while True:
            end = self.buffer.find(b"\n", 0, cap)
            if end >= 0:
                n = end + 1
                break
            if len(self.buffer) >= cap or not self._fill():
                n = min(cap, len(self.buffer))
                break
        line = bytes(self.buffer[:n])
        del self.buffer[:n]
        if self.head_bytes is not None:
            self.head_bytes += len(line)
            self.head_lines += 1
            if self.head_bytes > self.limits.max_header_bytes:
                raise _HeaderTooLarge
            if self.head_lines - 1 > self.limits.max_headers and line.strip():  # the request line is not a header
                raise _HeaderTooLarge
        return line

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n and self._fill():
            pass
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def close(self) -> None:
        self.buffer.clear()


class JSONServer(ThreadingHTTPServer):
    """A threading HTTP server (daemon threads) with a bearer token, :class:`Limits` and a connection cap."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[JSONHandler],
        *,
        token: str | None = None,
        limits: Limits | None = None,
    ):
        self.token = token or None
        self.limits = limits or Limits()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:  # an IPv6 address such as ::1
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread, or answer 503 when ``max_connections`` are open."""
        if not self._slots.acquire(blocking=False):
            body = json.dumps({"error": f"too many connections (at most {self.limits.max_connections}); retry later"})
            try:
                request.settimeout(1.0)
                request.sendall(
                    (
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}"
                    ).encode()
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: Any) -> None:
        with self._connections_lock:
            if request in self._connections:
                self._connections.discard(request)
                self._slots.release()

    def server_close(self) -> None:
        """Stop listening and cut the open connections."""
        super().server_close()
        with self._connections_lock:
            open_now = list(self._connections)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class JSONHandler(BaseHTTPRequestHandler):
    """Base request handler: routing, auth, limits and JSON replies (see the module docstring)."""

    server: JSONServer
    protocol_version = "HTTP/1.1"
    server_version = "agentgym"
    routes: ClassVar[tuple[Route, ...]] = ()
    rfile: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for route in cls.routes:
            if not callable(getattr(cls, route.action, None)) or hasattr(BaseHTTPRequestHandler, route.action):
                raise TypeError(
                    f"{cls.__name__}: route {route.method} {route.path} names {route.action!r}, which is not a "
                    "method of the handler or is one of http.server's own (name route methods on_<name>)"
                )

    def setup(self) -> None:
        """Wrap the connection's input in the deadline- and budget-keeping reader."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # replies are one small write
        self.rfile.close()
        self.reader = _RequestReader(self.connection, self.server.limits)
        self.reader.trusted = self.server.token is None
        self.rfile = self.reader

    def version_string(self) -> str:
        """The ``Server`` header: no Python version advertised."""
        return self.server_version

    # ----- logging -----------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        """Access log at debug level (``logging.getLogger("agentgym.http")``)."""
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        """Protocol errors (timeouts, malformed requests) at info level."""
        log.info("%s %s", self.address_string(), format % args)

    # ----- replies -----------------------------------------------------------------

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send one JSON reply with its ``Content-Length`` (closing the connection when it must)."""
        self.send_bytes(status, json.dumps(body, allow_nan=False).encode(), headers)

    def send_bytes(self, status: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Send one reply whose body is already JSON-encoded."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors raised by ``http.server`` itself, as JSON (the connection is closed after)."""
        self.close_connection = True
        status = HTTPStatus(code)
        text = message or status.phrase
        if code == 431:
            lim = self.server.limits
            text = f"request headers too large (at most {lim.max_headers} lines, {lim.max_header_bytes} bytes)"
        self.send_json(code, {"error": text})

    def send_stream(self, reply: StreamReply) -> None:
        """Send a chunked 200 from ``reply.chunks``."""
        self.send_response(200)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            for chunk in reply.chunks:
                if chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
        except Exception:
            log.exception("stream for %s %s failed", self.command, self.path)
            self.close_connection = True  # the client sees a stream cut without its last chunk
            return
        self.wfile.write(b"0\r\n\r\n")

    # ----- the request cycle ---------------------------------------------------------

    def handle_one_request(self) -> None:
        """Read one request within the limits, then route it (``http.server``'s loop calls this)."""
        self.reader.start_request()
        try:
            try:
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline:
                    self.close_connection = True
                    return
                if self.reader.deadline is None:  # the request line was already buffered
                    self.reader.deadline = time.monotonic() + self.server.limits.request_timeout
                if not self.parse_request():
                    return
            except _HeaderTooLarge:
                self.requestline = self.requestline if hasattr(self, "requestline") else ""
                self.request_version = getattr(self, "request_version", "HTTP/1.1")
                self.command = getattr(self, "command", "") or ""
                self.send_error(431)
                return
            finally:
                self.reader.head_bytes = None
            self._route()
            self.wfile.flush()
        except TimeoutError as e:
            self.log_error("connection cut: %s", e)
            self.close_connection = True
        except OSError as e:
            self.log_error("connection lost: %s", e)
            self.close_connection = True

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method != self.command:
                allowed.append(route.method)
                continue
            return self._serve(route, params)
        self._discard_body(limit=64 << 10)  # a body sent to no route is not read in full
        if allowed:
            self.send_json(
                405,
                {"error": f"{self.command} is not allowed on {path}; use {', '.join(sorted(set(allowed)))}"},
                {"Allow": ", ".join(sorted(set(allowed)))},
            )
        else:
            self.send_json(404, {"error": f"no route {self.command} {path}"})

    def _serve(self, route: Route, params: dict[str, str]) -> None:
        try:
            if not route.public:
                self._check_token()
            body = self._read_body(route.method in BODY_METHODS)
            self.reader.deadline = None  # the request is in; the handler may take its time
            self.connection.settimeout(self.server.limits.request_timeout)  # for writing the reply
            result = getattr(self, route.action)(body, **params)
            if isinstance(result, StreamReply):
                return self.send_stream(result)
            status, headers = (result.status, result.headers) if isinstance(result, Reply) else (200, {})
            data = json.dumps(result.body if isinstance(result, Reply) else result, allow_nan=False).encode()
        except HTTPError as e:
            if e.status >= 500:
                log.warning("%s %s -> %d: %s", self.command, self.path, e.status, e.message)
            return self.send_json(e.status, {"error": e.message}, e.headers)
        except TimeoutError:
            raise
        except Exception as e:
            log.exception("%s %s failed", self.command, self.path)
            return self.send_json(500, {"error": f"internal server error: {type(e).__name__}: {e}"})
        self.send_bytes(status, data, headers)

    def _check_token(self) -> None:
        token = self.server.token
        if token is None:
            return
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
        if ok:
            self.reader.trusted = True
            return
        self.close_connection = True  # a client without the token keeps no connection slot
        self._discard_body(limit=64 << 10)  # an unauthenticated client's big body is not read
        what = "no Authorization header" if not given else "a wrong token"
        raise HTTPError(
            401,
            f"unauthorized: {what}; send 'Authorization: Bearer <token>' with the server's token",
            {"WWW-Authenticate": 'Bearer realm="agentgym"'},
        )

    def _content_length(self, required: bool) -> int:
        raw = self.headers.get("Content-Length")
        if len(self.headers.get_all("Content-Length") or []) > 1:
            self.close_connection = True  # two framings of one body: a request could hide in it (RFC 9112 6.3)
            raise HTTPError(400, "more than one Content-Length header; send exactly one")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HTTPError(411, "chunked request bodies are not accepted; send a Content-Length")
        if raw is None:
            if required:
                self.close_connection = True
                raise HTTPError(411, "this route needs a JSON body with a Content-Length header")
            return 0
        try:
            n = int(raw.strip())
            if n < 0 or not raw.strip().isdigit():
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise HTTPError(400, f"invalid Content-Length {raw!r}: must be a non-negative integer") from None
        if n > self.server.limits.max_body:
            self.close_connection = True  # the body stays unread: the connection cannot be reused
            raise HTTPError(413, f"request body of {n} bytes is over the limit of {self.server.limits.max_body} bytes")
        return n

    def _read_body(self, json_body: bool) -> dict[str, Any] | None:
        n = self._content_length(required=json_body)
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            self.close_connection = True
            raise HTTPError(400, f"the body ended after {len(data)} of {n} bytes")
        if not json_body:
            return None
        if not data.strip():
            return {}
        try:
            body = json.loads(data, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as e:
            raise HTTPError(400, f"the body is not valid JSON: {e}") from None
        except RecursionError:
            raise HTTPError(400, "the body's JSON is nested too deeply") from None
        if not isinstance(body, dict):
            raise HTTPError(400, f"the body must be a JSON object, got {type(body).__name__}")
        return body

    def _discard_body(self, limit: int | None = None) -> None:
        """Skip a body we will not use when it is at most ``limit`` bytes; otherwise close after the reply."""
        try:
            n = self._content_length(required=False)
        except HTTPError:
            self.close_connection = True
            return
        if limit is not None and n > limit:
            self.close_connection = True
        elif n:
            self.rfile.read(n)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
