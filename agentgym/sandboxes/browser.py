"""``BrowserSandbox``: a headless Chromium, driven by Playwright, that can only reach its task.

What it does:

* drives the system Chromium (``/usr/bin/chromium``, the Debian package) with Playwright's
  sync API; Playwright is imported on first use, never when ``agentgym.sandboxes`` is imported;
* serves the task's files from ``root`` with a stdlib HTTP server bound to 127.0.0.1 on a free
  port (a real origin, so relative URLs, MIME types, cookies and ``localStorage`` behave as on
  the web; ``page.route`` fulfilment would fake an origin and need its own MIME/404 handling);
* gives every episode a fresh browser context (:meth:`new_episode`): no cookies, storage,
  cache or service workers survive from one episode to the next;
* limits the network to that server: a route on the context aborts every request that is not
  for an allowed origin (the task server, ``data:``, ``about:``); the route's URL pattern is a
  regular expression that excludes the allowed origins, so their requests are not held up by a
  round trip to Python; WebSockets to other origins are closed; as a second fence Chromium's host resolver
  maps every host name except ``localhost`` and 127.0.0.1 to "not found", so even a request the route never
  sees (prefetch, a browser service) cannot reach a named host;
* puts a timeout on every call: Playwright's own (``timeout`` seconds) and a hard deadline a
  few seconds later on the thread that owns the browser.

All Playwright calls run on one private thread owned by the sandbox, so its methods may be
called from any thread (environments run tools on worker threads; Playwright's sync objects
belong to the thread that created them).

Errors: a mistake of the caller (no such element, a selector that never appears, a blocked
URL) raises :class:`BrowserActionError` (``BrowserTimeout`` for timeouts), with a message meant
for the model. A failure of the browser itself (crash, disconnect, a call stuck past its hard
deadline) raises :class:`~agentgym.sandboxes.SandboxError`.

What it does not isolate: Chromium runs with ``--no-sandbox`` as the calling user (the
container is the boundary); the task server is reachable by any local process while the
sandbox lives; requests to IP literals are stopped only by the route, not by the resolver rule.
It is not a filesystem sandbox: ``exec``/``read_file`` and friends raise ``NotImplementedError``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import http.server
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from .base import ExecResult, Sandbox, SandboxError

T = TypeVar("T")

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    # Second fence behind the route: no host name but localhost resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)
HARD_DEADLINE_GRACE = 10.0
"""Seconds past a call's Playwright timeout after which the browser counts as hung."""

_CRASH_MARKERS = (
    "target crashed",
    "page crashed",
    "has been closed",
    "browser closed",
    "connection closed",
    "target closed",
)
_ID_ATTR = "data-agentgym-id"


class BrowserActionError(RuntimeError):
    """The page refused an action (no such element, blocked URL, script error); the model's mistake."""


class BrowserTimeout(BrowserActionError):
    """An action did not complete within its timeout (e.g. a selector never appeared)."""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def list_directory(self, path: str) -> None:  # type: ignore[override]
        self.send_error(404, "No directory listings")
        return None

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class _FileServer:
    """A read-only static file server for one directory, on 127.0.0.1:<free port>."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name=f"agentgym-browser-http-{self.port}", daemon=True
        )
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


# Lists the visible interactive elements (and, optionally, text) under a root, giving each a
# stable id kept in an attribute: an element keeps its id for the life of the page.
_SNAPSHOT_JS = (
    r"""
([rootSel, includeText, maxItems, clickableSel]) => {
  const ATTR = "%s";
  const root = document.querySelector(rootSel);
  if (!root) return null;
  if (window.__agentgymNext === undefined) window.__agentgymNext = 1;
  const visible = (el) => {
    if (!el.getClientRects().length) return false;
    const s = getComputedStyle(el);
    return s.visibility !== "hidden" && s.display !== "none";
  };
  const clean = (t) => (t || "").replace(/\s+/g, " ").trim().slice(0, 80);
  const roleOf = (el) => {
    const r = el.getAttribute("role");
    if (r) return r;
    if (clickableSel && el.matches(clickableSel)) return "clickable";
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute("type") || "text").toLowerCase();
    if (tag === "a" && el.hasAttribute("href")) return "link";
    if (tag === "button") return "button";
    if (tag === "select") return "combobox";
    if (tag === "textarea") return "textbox";
    if (tag === "input") {
      if (["button", "submit", "reset", "image"].includes(type)) return "button";
      if (type === "checkbox" || type === "radio") return type;
      if (type === "hidden") return null;
      return "textbox";
    }
    if (el.hasAttribute("onclick") || tag === "summary") return "clickable";
    return null;
  };
  const nameOf = (el) => {
    const aria = el.getAttribute("aria-label");
    if (aria) return clean(aria);
    if (el.id) {
      const lab = document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
      if (lab) return clean(lab.innerText);
    }
    const tag = el.tagName.toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      const lab = el.closest("label");
      if (lab) return clean(lab.innerText);
      if (tag === "input" && ["button", "submit", "reset"].includes((el.type || "").toLowerCase())) return clean(el.value);
      return clean(el.getAttribute("placeholder") || el.getAttribute("title") || el.getAttribute("name") || "");
    }
    return clean(el.innerText || el.getAttribute("title") || "");
  };
  const lines = [];
  const walk = (node) => {
    if (lines.length >= maxItems) return;
    if (node.nodeType === Node.TEXT_NODE) {
      const t = clean(node.textContent);
      const p = node.parentElement;
      const lab = p && p.closest("label");
      const named = lab && lab.querySelector("input, select, textarea");  // already the control's name
      if (includeText && t && p && !named && visible(p)) lines.push("text " + JSON.stringify(t));
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const tag = node.tagName.toLowerCase();
    if (["script", "style", "noscript", "template", "head"].includes(tag)) return;
    if (!visible(node) && tag !== "option") {
      // a hidden parent may still hold visible children (display: contents is rare); skip it
      return;
    }
    const role = roleOf(node);
    if (role) {
      let id = node.getAttribute(ATTR);
      if (!id) { id = String(window.__agentgymNext++); node.setAttribute(ATTR, id); }
      let line = "[" + id + "] " + role + " " + JSON.stringify(nameOf(node));
      if (role === "textbox") line += " value=" + JSON.stringify(String(node.value || "").slice(0, 80));
      if (role === "combobox") line += " options=" + JSON.stringify(Array.from(node.options).map(o => clean(o.text))) + " value=" + JSON.stringify(clean(node.selectedOptions[0] ? node.selectedOptions[0].text : ""));
      if ((role === "checkbox" || role === "radio") && node.checked) line += " checked";
      if (node.disabled) line += " disabled";
      if (document.activeElement === node) line += " focused";
      lines.push(line);
      // the name already carries the text of links and buttons
      if (["link", "button", "clickable"].includes(role) || tag === "select") return;
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(root);
  if (lines.length >= maxItems) lines.push("... (more elements not shown)");
  return lines.join("\n");
}
"""
    % _ID_ATTR
)


class BrowserSandbox(Sandbox):
    """A headless Chromium whose pages can reach only the task's own files.

    >>> with BrowserSandbox("task_dir", timeout=5) as sb:  # doctest: +SKIP
    ...     sb.new_episode()
    ...     sb.goto("index.html")
    ...     print(sb.snapshot())          # [1] button "Submit"
    ...     sb.click(sb.ref(1))
    """

    workdir = "/"

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        timeout: float = 10.0,
        allowed_origins: Iterable[str] = (),
        executable_path: str = CHROMIUM_PATH,
        viewport: tuple[int, int] = (800, 600),
        extra_args: Iterable[str] = (),
    ):
        """Args:
        root: directory served at ``base_url`` (None: no server; only ``data:``/``about:`` pages).
        timeout: default seconds for every call (navigation, waiting for a selector, scripts).
        allowed_origins: further origins pages may reach, e.g. ``"http://127.0.0.1:8123"``.
        executable_path: the Chromium binary (Playwright's own download is not used).
        viewport: page size in CSS pixels.
        extra_args: more Chromium command-line flags.
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive: every browser call needs a deadline")
        self.timeout = float(timeout)
        self.executable_path = executable_path
        self.viewport = {"width": int(viewport[0]), "height": int(viewport[1])}
        self.extra_args = tuple(extra_args)
        self._server: _FileServer | None = None
        if root is not None:
            root = Path(root)
            if not root.is_dir():
                raise ValueError(f"root {str(root)!r} is not a directory")
            self._server = _FileServer(root.resolve())
        self.allowed_origins = frozenset(_origin(o) for o in allowed_origins) | (
            {self._server.origin} if self._server else set()
        )
        self._executor: concurrent.futures.ThreadPoolExecutor | None = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="agentgym-browser"
        )
        self._pw: Any = None
        self._browser: Any = None
        self._context: Any = None
        self._page: Any = None
        self._broken: str | None = None
        self._closed = False
        self.blocked: list[str] = []
        """URLs the route aborted in the current episode (for tests and debugging)."""

    # ----- plumbing -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """URL of the served ``root`` (ends with ``/``)."""
        if self._closed:
            raise SandboxError("the BrowserSandbox is closed")
        if self._server is None:
            raise RuntimeError("this BrowserSandbox serves no files: pass root= to serve a directory")
        return self._server.origin + "/"

    def _run(self, fn: Callable[[], T], timeout: float | None = None, what: str = "browser call") -> T:
        """Run ``fn`` on the browser thread with a hard deadline; map Playwright errors."""
        if self._closed:
            raise SandboxError("the BrowserSandbox is closed")
        if self._broken:
            raise SandboxError(f"the browser is unusable ({self._broken}); create a new BrowserSandbox")
        assert self._executor is not None
        seconds = timeout if timeout is not None else self.timeout

        def call() -> T:  # on the browser thread, where the Playwright objects may be touched
            try:
                return fn()
            except (BrowserActionError, SandboxError):
                raise
            except Exception as e:
                raise self._classify(e, what, seconds) from e

        future = self._executor.submit(call)
        try:
            return future.result(seconds + HARD_DEADLINE_GRACE)
        except concurrent.futures.TimeoutError:
            self._broken = f"{what} hung for more than {seconds + HARD_DEADLINE_GRACE:g} s"
            raise SandboxError(f"Chromium did not answer: {self._broken}") from None

    def _classify(self, e: Exception, what: str, seconds: float) -> Exception:  # browser thread
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        message = str(e).split("\n")[0]
        if isinstance(e, PlaywrightTimeout):
            return BrowserTimeout(
                f"{what} timed out after {seconds:g} s (the element never appeared or never became "
                f"visible and enabled, or the page never finished loading): {message}"
            )
        if isinstance(e, PlaywrightError):
            lowered = message.lower()
            browser_gone = self._browser is not None and not self._safe_connected()
            if browser_gone or any(m in lowered for m in _CRASH_MARKERS):
                return SandboxError(f"Chromium failed during {what}: {message}")
            return BrowserActionError(f"{what} failed: {message}")
        return e

    def _safe_connected(self) -> bool:
        try:
            return bool(self._browser.is_connected())
        except Exception:
            return False

    def _launch(self) -> None:  # browser thread
        if self._browser is not None and self._safe_connected():
            return
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as e:
            raise SandboxError("Playwright is not installed: pip install playwright") from e
        if not os.path.exists(self.executable_path):
            raise SandboxError(f"Chromium not found at {self.executable_path}: apt-get install chromium")
        try:
            if self._pw is None:
                self._pw = sync_playwright().start()
            self._browser = self._pw.chromium.launch(
                executable_path=self.executable_path,
                headless=True,
                args=[*CHROMIUM_ARGS, *self.extra_args],
                timeout=max(self.timeout, 30.0) * 1000,
            )
        except Exception as e:
            raise SandboxError(f"could not launch Chromium ({self.executable_path}): {str(e).splitlines()[0]}") from e

    @functools.cached_property
    def _fence(self) -> re.Pattern[str]:
        """URLs to intercept: everything but the allowed origins (those then skip the Python round trip)."""
        allowed = "|".join(re.escape(o + "/") for o in sorted(self.allowed_origins))
        return re.compile(
            rf"^(?!(?:{allowed}|data:|about:|blob:))" if allowed else r"^(?!(?:data:|about:|blob:))", re.I
        )

    def _route(self, route: Any) -> None:  # browser thread
        url = route.request.url
        if url.startswith(("data:", "about:", "blob:")) or _origin(url) in self.allowed_origins:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _page_or_raise(self) -> Any:
        if self._page is None:
            raise RuntimeError("no episode: call new_episode() first")
        return self._page

    def _ms(self, timeout: float | None) -> float:
        return (timeout if timeout is not None else self.timeout) * 1000

    # ----- episodes -------------------------------------------------------------------

    def new_episode(self, init_script: str | None = None) -> None:
        """Start an episode: a fresh context (no cookies, storage, cache) with one blank page.

        ``init_script`` runs in every document before the page's own scripts (e.g. to seed
        ``Math.random``). Relaunches Chromium if it died since the last episode.
        """

        def go() -> None:
            self._close_context()
            self._launch()
            self.blocked = []
            ctx = self._browser.new_context(
                viewport=self.viewport, service_workers="block", java_script_enabled=True, accept_downloads=False
            )
            ctx.set_default_timeout(self._ms(None))
            ctx.set_default_navigation_timeout(self._ms(None))
            ctx.route(self._fence, self._route)
            if hasattr(ctx, "route_web_socket"):
                ctx.route_web_socket(
                    lambda u: _origin(u.replace("ws", "http", 1)) not in self.allowed_origins, lambda ws: ws.close()
                )
            if init_script:
                ctx.add_init_script(script=init_script)
            self._context = ctx
            self._page = ctx.new_page()

        self._run(go, max(self.timeout, 30.0), "starting an episode")

    def reset(self) -> None:
        """Same as :meth:`new_episode` (the Sandbox protocol's name)."""
        self.new_episode()

    def _close_context(self) -> None:  # browser thread
        ctx, self._context, self._page = self._context, None, None
        if ctx is not None:
            try:
                ctx.close()
            except Exception:
                pass

    # ----- actions --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._run(lambda: self._page_or_raise().url, what="reading the URL")

    def goto(self, url_or_path: str, *, timeout: float | None = None) -> None:
        """Open a URL, or a path relative to :attr:`base_url`; waits for the ``load`` event."""
        parts = urlsplit(url_or_path)
        if parts.scheme:
            url = url_or_path
        else:
            url = urljoin(self.base_url, url_or_path.lstrip("/"))
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https", "data", "about"):
            raise BrowserActionError(f"cannot open {url!r}: only http(s), data: and about: URLs are allowed")
        if scheme in ("http", "https") and _origin(url) not in self.allowed_origins:
            self.blocked.append(url)
            raise BrowserActionError(
                f"blocked: {url} is outside the allowed origins ({', '.join(sorted(self.allowed_origins)) or 'none'})"
            )
        self._run(
            lambda: self._page_or_raise().goto(url, wait_until="load", timeout=self._ms(timeout)),
            timeout,
            f"opening {url}",
        )

    def click(self, selector: str, *, timeout: float | None = None) -> None:
        """Click the element ``selector`` matches (waits until it is visible and enabled)."""
        self._run(
            lambda: self._page_or_raise().click(selector, timeout=self._ms(timeout)), timeout, f"clicking {selector!r}"
        )

    def fill(self, selector: str, text: str, *, timeout: float | None = None) -> None:
        """Replace the value of the input ``selector`` matches with ``text``."""
        self._run(
            lambda: self._page_or_raise().fill(selector, text, timeout=self._ms(timeout)),
            timeout,
            f"filling {selector!r}",
        )

    def press(self, key: str, selector: str | None = None, *, timeout: float | None = None) -> None:
        """Press a key (``"Enter"``, ``"Control+A"``) on ``selector``, or on the focused element."""

        def go() -> None:
            page = self._page_or_raise()
            if selector is None:
                page.keyboard.press(key)
            else:
                page.press(selector, key, timeout=self._ms(timeout))

        self._run(go, timeout, f"pressing {key!r}")

    def wait_for(self, selector: str, *, state: str = "visible", timeout: float | None = None) -> None:
        """Wait until ``selector`` is in ``state`` (``attached``/``visible``/``hidden``/``detached``)."""
        self._run(
            lambda: self._page_or_raise().wait_for_selector(selector, state=state, timeout=self._ms(timeout)),
            timeout,
            f"waiting for {selector!r}",
        )

    def text(self, selector: str = "body", *, timeout: float | None = None) -> str:
        """The visible text of ``selector`` (default: the whole page)."""
        return self._run(
            lambda: self._page_or_raise().inner_text(selector, timeout=self._ms(timeout)),
            timeout,
            f"reading {selector!r}",
        )

    def snapshot(
        self,
        selector: str = "body",
        *,
        include_text: bool = False,
        max_items: int = 200,
        clickable: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Visible interactive elements under ``selector``, one a line: ``[3] button "Submit"``.

        The number is a stable id (kept on the element for the life of the page); address the
        element with :meth:`ref`. ``include_text`` also lists visible text as ``text "..."``;
        ``clickable`` is a CSS selector of further elements to list (role ``clickable``), for
        pages whose click targets are plain ``span``/``div`` elements with script handlers.
        """
        out = self._run(
            lambda: self._page_or_raise().evaluate(_SNAPSHOT_JS, [selector, include_text, max_items, clickable]),
            timeout,
            "taking a snapshot",
        )
        if out is None:
            raise BrowserActionError(f"no element matches {selector!r}")
        return out

    @staticmethod
    def ref(element_id: int | str) -> str:
        """The selector of the element listed as ``[element_id]`` by :meth:`snapshot`."""
        return f'[{_ID_ATTR}="{int(element_id)}"]'

    def evaluate(self, js: str, arg: Any = None, *, timeout: float | None = None) -> Any:
        """Evaluate a JS expression or function in the page; for graders, not for agents."""

        def go() -> Any:
            page = self._page_or_raise()
            # Page.evaluate has no timeout of its own: race it against one in the page.
            return page.evaluate(
                "async ([js, arg, ms]) => { const f = (0, eval)('(' + js + ')');"
                " const v = typeof f === 'function' ? f(arg) : f;"
                " return await Promise.race([Promise.resolve(v), new Promise((_, rej) =>"
                " setTimeout(() => rej(new Error('evaluate timed out after ' + ms + ' ms')), ms))]); }",
                [js, arg, self._ms(timeout)],
            )

        return self._run(go, timeout, "evaluating a script")

    def screenshot(self, path: str | Path, *, full_page: bool = False, timeout: float | None = None) -> Path:
        """Save a PNG of the page to ``path`` and return the path."""
        path = Path(path)
        self._run(
            lambda: self._page_or_raise().screenshot(path=str(path), full_page=full_page, timeout=self._ms(timeout)),
            timeout,
            "taking a screenshot",
        )
        return path

    # ----- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the browser, Playwright and the file server; idempotent."""
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None

        def shutdown() -> None:
            self._close_context()
            for obj, method in ((self._browser, "close"), (self._pw, "stop")):
                if obj is not None:
                    try:
                        getattr(obj, method)()
                    except Exception:
                        pass
            self._browser = self._pw = None

        if executor is not None:
            if not self._broken:
                try:
                    executor.submit(shutdown).result(30)
                except Exception:
                    pass
            executor.shutdown(wait=not self._broken, cancel_futures=True)
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> BrowserSandbox:
        return self

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass

    # ----- not a filesystem sandbox ------------------------------------------------------

    def _no_files(self, what: str) -> NotImplementedError:
        return NotImplementedError(
            f"BrowserSandbox has no {what}: it drives a browser, not a filesystem; use LocalSandbox or DockerSandbox "
            "for commands and files, and BrowserSandbox(root=...) to serve a task's files"
        )

    def exec(
        self,
        cmd: str | list[str],
        *,
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
    ) -> ExecResult:
        raise self._no_files("exec()")

    def read_file(self, path: str) -> bytes:
        raise self._no_files("read_file()")

    def write_file(self, path: str, data: str | bytes) -> None:
        raise self._no_files("write_file()")

    def upload(self, local_dir: str | Path, dest: str = ".") -> None:
        raise self._no_files("upload()")

    def download(self, path: str, local_dir: str | Path) -> None:
        raise self._no_files("download()")
