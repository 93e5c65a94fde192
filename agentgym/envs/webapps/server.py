"""One loopback HTTP server for the three web apps, over a fresh SQLite database per episode.

:class:`AppServer` binds ``127.0.0.1`` on a free port and serves the routes of the shop
(``/shop``), the admin console (``/admin``) and the clinic (``/clinic``). Pages are Jinja2
templates rendered with autoescaping on (text a visitor typed is shown as text), plain HTML
forms and links, and a Content-Security-Policy that allows no script at all. The episode's
database lives in a private temporary directory; the server maps URLs to routes only, never
to files, so no URL reaches the database (or any other file).

What it does not cover: the server trusts its loopback clients to be the episode's browser
(any local process can reach the port); sessions are cookies with random ids, no CSRF tokens.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agentgym.envs.webapps.fixtures import create_database, fixture

MAX_BODY = 64 * 1024
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Request:
    """One request as the route functions see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    sid: str
    conn: sqlite3.Connection
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        """The first value of ``name`` in the form (POST) or the query string."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of ``name`` (checkboxes)."""
        return self.form.get(name) or self.query.get(name) or []

    @property
    def user_id(self) -> int | None:
        """The admin logged in with this session, if any."""
        row = self.conn.execute("SELECT user_id FROM sessions WHERE sid = ?", (self.sid,)).fetchone()
        return int(row[0]) if row and row[0] is not None else None


@dataclass
class Response:
    """A page (``template`` with ``context``) or a redirect (``location``)."""

    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    location: str | None = None


def page(template: str, code: int = 200, /, **context: Any) -> Response:
    """Render ``template`` with ``context`` (HTTP status ``code``)."""
    return Response(template, context, code)


def redirect(location: str) -> Response:
    """A 303 redirect to the same-origin path ``location``."""
    return Response(location=location, status=303)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """``method`` and a path pattern such as ``/shop/product/{id}`` (``{name}`` matches one path segment)."""

    method: str
    pattern: str
    handler: Handler

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when the request matches, else None."""
        if method != self.method:
            return None
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_-]+)", self.pattern) + "$"
        found = re.match(regex, path)
        return found.groupdict() if found else None


def _index(req: Request) -> Response:
    return page("index.html")


def all_routes() -> list[Route]:
    """The routes of the three apps and the index page."""
    from agentgym.envs.webapps import admin, clinic, shop

    return [Route("GET", "/", _index), *shop.ROUTES, *admin.ROUTES, *clinic.ROUTES]


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.0"
    timeout = 10.0  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the browser's requests are not worth a log line each

    def version_string(self) -> str:
        return "agentgym-webapps"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_HEAD(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed", {"Allow": "GET, POST"})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _form(self) -> dict[str, list[str]] | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return None
        raw = self.rfile.read(length) if length else b""
        return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)

    def _handle(self, method: str) -> None:
        app = self.server.app
        parts = urlsplit(self.path)
        form: dict[str, list[str]] = {}
        if method == "POST":
            parsed = self._form()
            if parsed is None:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"request body too large or unreadable")
                return
            form = parsed
        query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=50)
        sid = ""
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            if "sid" in cookie:
                sid = cookie["sid"].value
        except CookieError:
            pass
        try:
            status, body, headers = app.respond(method, parts.path, query, form, sid)
        except Exception as e:  # a bug in a route: the page says so, the server keeps serving
            status, body, headers = 500, f"internal error: {type(e).__name__}".encode(), {}
        self._send(status, body, headers)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: AppServer


class AppServer:
    """The apps on ``127.0.0.1:<free port>``; :meth:`reset` gives them a fresh database for a seed.

    >>> with AppServer() as server:  # doctest: +SKIP
    ...     server.reset(seed=3)
    ...     print(server.origin)  # http://127.0.0.1:40123
    """

    def __init__(self) -> None:
        """Start serving (on a daemon thread); the apps answer 503 until the first :meth:`reset`."""
        self.routes = all_routes()
        try:
            import jinja2  # optional dependency: only the web apps render HTML
        except ImportError as e:
            raise ModuleNotFoundError("the web apps render their pages with Jinja2: pip install jinja2") from e
        self._jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,  # every template, whatever its name: typed text is data
            undefined=jinja2.StrictUndefined,
        )
        self._jinja.filters["money"] = lambda cents: f"${int(cents) / 100:,.2f}"
        self._dir = Path(tempfile.mkdtemp(prefix="agentgym-webapps-"))
        self._lock = threading.Lock()
        self._db: Path | None = None
        self._episode = 0
        self.seed: int | None = None
        self._http = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._http.app = self
        self._thread = threading.Thread(target=self._http.serve_forever, name="agentgym-webapps", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def db_path(self) -> Path:
        """The current episode's database file (outside anything the server serves)."""
        if self._db is None:
            raise RuntimeError("no episode: call reset(seed) first")
        return self._db

    def reset(self, seed: int) -> Path:
        """Replace the database with a fresh one made from ``fixture(seed)``; returns its path."""
        with self._lock:
            old = self._db
            self._episode += 1
            self._db = create_database(self._dir / f"episode-{self._episode}.db", fixture(seed))
            self.seed = seed
            if old is not None:
                old.unlink(missing_ok=True)
            return self._db

    def connect(self) -> sqlite3.Connection:
        """A new connection to the current database (the caller closes it)."""
        return sqlite3.connect(self.db_path, timeout=5.0)

    def _render(self, template: str, context: dict[str, Any]) -> bytes:
        return str(self._jinja.get_template(template).render(**context)).encode()

    def respond(
        self, method: str, path: str, query: dict[str, list[str]], form: dict[str, list[str]], sid: str
    ) -> tuple[int, bytes, dict[str, str]]:
        """Run the route for one request: (status, body, headers)."""
        with self._lock:  # one request at a time: the apps' state changes are small and ordered
            if self._db is None:
                return 503, b"no episode yet", {}
            conn = sqlite3.connect(self._db, timeout=5.0)
            try:
                headers: dict[str, str] = {}
                known = sid and conn.execute("SELECT 1 FROM sessions WHERE sid = ?", (sid,)).fetchone()
                if not known:
                    sid = secrets.token_urlsafe(18)
                    conn.execute("INSERT INTO sessions VALUES (?, NULL, NULL)", (sid,))
                    headers["Set-Cookie"] = f"sid={sid}; Path=/; HttpOnly; SameSite=Lax"
                for route in self.routes:
                    params = route.match(method, path)
                    if params is not None:
                        break
                else:
                    allowed = any(r.match(r.method, path) is not None for r in self.routes)
                    conn.commit()
                    status = 405 if allowed else 404
                    return status, self._render("error.html", {"status": status}), headers
                response = route.handler(Request(method, path, query, form, sid, conn, params))
                conn.commit()
            finally:
                conn.close()
            if response.location is not None:
                headers["Location"] = response.location
                return response.status, b"", headers
            assert response.template is not None
            return response.status, self._render(response.template, response.context), headers

    def close(self) -> None:
        """Stop serving and delete the databases; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._http.shutdown()
        self._http.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
