"""``ChromiumBrowser``: a headless Chromium, driven by Playwright, that can only reach its task.

What it does:

* drives the system Chromium (``/usr/bin/chromium``, the Debian package) with Playwright's
  async API on one event-loop thread; Playwright is imported on first use, never when
  ``agentgym.sandboxes`` is imported;
* shares one Chromium (and one Playwright driver) between the instances of a process that have
  the same launch settings (``shared=True``, the default; see :mod:`._driver`): each instance
  has its own context per episode, file server and fence; the process closes with its last
  instance; ``shared=False`` gives an instance a Chromium of its own;
* serves the task's files from ``root`` with a stdlib HTTP server bound to 127.0.0.1 on a free
  port (a real origin, so relative URLs, MIME types, cookies and ``localStorage`` behave as on
  the web);
* gives every episode a fresh browser context (:meth:`ChromiumBrowser.new_episode`): no
  cookies, storage, cache or service workers survive from one episode to the next, and no
  episode sees another instance's; pages an episode's page opens (``target=_blank``,
  ``window.open``) are its tabs, in the same context and behind the same fence;
* limits the network to that server: a route on the context aborts every request that is not
  for an allowed origin (the task server, ``data:``, ``about:``, ``blob:``); the route's URL
  pattern is a regular expression that excludes the allowed origins, so their requests are not
  held up by a round trip to Python; WebSockets to other origins are closed; as a second fence
  Chromium's host resolver maps every host name except ``localhost`` and 127.0.0.1 to "not
  found", so even a request the route never sees (prefetch, a browser service) cannot reach a
  named host;
* puts a timeout on every call: Playwright's own (``timeout`` seconds) and a hard deadline
  :data:`HARD_DEADLINE_GRACE` seconds later, on the caller's side.

All Playwright calls run as coroutines on the driver's loop thread, so the methods may be
called from any thread (environments run tools on worker threads), and calls of different
instances overlap (one thread of the sync API would take them in turn).

Errors: a mistake of the caller (no such element, a selector that never appears, a blocked
URL) raises :class:`~agentgym.sandboxes.browser.BrowserActionError` (``BrowserTimeout`` for
timeouts), with a message meant for the model. A crash, a disconnect or a call stuck past its
hard deadline raises :class:`~agentgym.sandboxes.browser.BrowserCrashed`; a browser that cannot
start (no Chromium, no Playwright) raises :class:`~agentgym.errors.SandboxError`. A crashed
Chromium is started again by the next :meth:`~ChromiumBrowser.new_episode` of any instance
sharing it. When a call overruns its hard deadline and Chromium still answers, only that
instance's episode is lost (its next ``new_episode`` starts afresh); when Chromium does not
answer, every instance sharing it is unusable, its processes are killed, and the next
instance created starts a new one.

What it does not isolate: Chromium runs with ``--no-sandbox`` as the calling user (the
container is the boundary); the task server is reachable by any local process while the
browser lives; requests to IP literals are stopped only by the route, not by the resolver rule;
instances sharing a Chromium share its processes (a renderer exploit in one context could reach
the others; contexts separate state, not privileges).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from agentgym.errors import SandboxError

from . import _driver
from ._fileserver import FileServer
from ._snapshot import A11Y_JS, EVALUATE_JS, ID_ATTR, OPENED_JS, OPENER_JS, SNAPSHOT_JS
from .base import Browser, BrowserActionError, BrowserCrashed, BrowserTimeout, ElementState

if TYPE_CHECKING:
    from playwright.async_api import Browser as PlaywrightBrowser
    from playwright.async_api import BrowserContext, Page, Route, WebSocketRoute

__all__ = ["CHROMIUM_ARGS", "CHROMIUM_PATH", "HARD_DEADLINE_GRACE", "ChromiumBrowser"]

_T = TypeVar("_T")

CHROMIUM_PATH = "/usr/bin/chromium"
"""Where the Debian ``chromium`` package installs the browser (``scripts/setup-system.sh``)."""

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
"""Command-line flags every launch gets (before ``extra_args``)."""

HARD_DEADLINE_GRACE = 10.0
"""Seconds past a call's Playwright timeout after which the browser counts as hung."""

_LAUNCH_TIMEOUT = 30.0  # seconds at least for starting Chromium or an episode, whatever ``timeout`` is
_LOCAL_SCHEMES = ("data:", "about:", "blob:")
_CRASH_MARKERS = (
    "target crashed",
    "page crashed",
    "has been closed",
    "browser closed",
    "connection closed",
    "target closed",
)


_REF = re.compile(rf'^\[{re.escape(ID_ATTR)}="(\d+)"\]$')
_MAX_NAME = 150  # characters of an accessible name in a11y_tree
_MAX_TEXT = 500  # characters of a text line or a value
_POPUP_WAIT_MS = 3000.0  # how long an action that opened a tab waits for Playwright to report it


def _gone(element_id: str) -> BrowserActionError:
    return BrowserActionError(
        f"no element [{element_id}] on the page: it was removed or the page changed; "
        "act on the ids of the latest observation"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class ChromiumBrowser(Browser):
    """A headless Chromium whose pages can reach only the task's own files.

    >>> with ChromiumBrowser("task_dir", timeout=5) as browser:  # doctest: +SKIP
    ...     browser.new_episode()
    ...     browser.goto("index.html")
    ...     print(browser.a11y_tree())  # [1] button "Submit"
    ...     browser.click(browser.ref(1))

    Chromium starts on the first :meth:`new_episode` of the instances sharing it, not on construction.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        timeout: float = 10.0,
        allowed_origins: Iterable[str] = (),
        executable_path: str = CHROMIUM_PATH,
        viewport: tuple[int, int] = (800, 600),
        extra_args: Iterable[str] = (),
        shared: bool = True,
    ):
        """Create the browser (and start serving ``root``); Chromium itself starts later.

        Args:
            root: directory served at :attr:`base_url` (None: no server; only ``data:`` and
                ``about:`` pages).
            timeout: default seconds for every call (navigation, waiting for a selector,
                scripts); must be positive.
            allowed_origins: further origins pages may reach, e.g. ``"http://127.0.0.1:8123"``.
            executable_path: the Chromium binary (Playwright's own download is not used).
            viewport: page size in CSS pixels.
            extra_args: more Chromium command-line flags.
            shared: share one Chromium process (and Playwright driver) with the other instances
                of this process that have the same ``executable_path`` and ``extra_args``;
                False starts one for this instance alone.

        Raises:
            ValueError: ``timeout`` is not positive or ``root`` is not a directory.
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive: every browser call needs a deadline")
        self.timeout = float(timeout)
        self.executable_path = executable_path
        self.viewport = {"width": int(viewport[0]), "height": int(viewport[1])}
        self.extra_args = tuple(extra_args)
        self.shared = shared
        self._closed = True  # until the driver is acquired: __del__ and close() have nothing to do
        self._server: FileServer | None = None
        if root is not None:
            root = Path(root)
            if not root.is_dir():
                raise ValueError(f"root {str(root)!r} is not a directory")
            self._server = FileServer(root.resolve())
        self.allowed_origins: frozenset[str] = frozenset(_origin(o) for o in allowed_origins) | (
            {self._server.origin} if self._server else set()
        )
        """Origins pages may reach: the file server's and ``allowed_origins``."""
        self._driver = _driver.acquire(executable_path, (*CHROMIUM_ARGS, *self.extra_args), shared=shared)
        self._closed = False
        self._browser: PlaywrightBrowser | None = None  # the Chromium the current context lives in
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._pages: list[Page] = []  # the episode's tabs, in open order
        self._broken: str | None = None  # this episode's page hung (Chromium itself answers)
        self.blocked: list[str] = []
        """URLs the fence stopped in the current episode (for tests and debugging)."""

    @property
    def base_url(self) -> str:
        """URL of the served ``root`` (ends with ``/``)."""
        if self._closed:
            raise SandboxError("the ChromiumBrowser is closed")
        if self._server is None:
            raise RuntimeError("this ChromiumBrowser serves no files: pass root= to serve a directory")
        return self._server.origin + "/"

    @property
    def driver_pid(self) -> int | None:
        """The Playwright driver (``node``) process this instance uses, Chromium's parent; None before a launch."""
        return self._driver.driver_pid

    # ----- the loop thread ---------------------------------------------------------

    def _run(
        self,
        fn: Callable[[], Awaitable[_T]],
        timeout: float | None = None,
        what: str = "browser call",
        *,
        new_episode: bool = False,
    ) -> _T:
        """Run ``fn()`` on the driver's loop with a hard deadline; map Playwright's errors to ours."""
        if self._closed:
            raise SandboxError("the ChromiumBrowser is closed")
        driver = self._driver
        if driver.on_loop_thread():
            raise RuntimeError("ChromiumBrowser methods cannot be called from its own event-loop thread")
        if driver.broken:
            raise BrowserCrashed(f"the browser is unusable ({driver.broken}); create a new ChromiumBrowser")
        if self._broken and not new_episode:
            raise BrowserCrashed(f"this episode is unusable ({self._broken}); start a new episode")
        seconds = timeout if timeout is not None else self.timeout

        async def call() -> _T:  # on the loop thread, where the Playwright objects may be touched
            try:
                return await fn()
            except (BrowserActionError, SandboxError):
                raise
            except Exception as e:
                raise self._classify(e, what, seconds) from e

        future = driver.submit(call())
        try:
            return future.result(seconds + HARD_DEADLINE_GRACE)
        except concurrent.futures.TimeoutError:
            future.cancel()
            reason = f"{what} hung for more than {seconds + HARD_DEADLINE_GRACE:g} s"
            if driver.responsive():  # only this page hangs: the next episode gets a fresh context
                self._broken = reason
                raise BrowserCrashed(f"Chromium did not answer: {reason} (the page hung)") from None
            driver.fail(reason)
            raise BrowserCrashed(f"Chromium did not answer: {reason}") from None

    def _classify(self, e: Exception, what: str, seconds: float) -> Exception:  # loop thread
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        message = str(e).split("\n")[0]
        if isinstance(e, PlaywrightTimeout):
            return BrowserTimeout(
                f"{what} timed out after {seconds:g} s (the element never appeared or never became "
                f"visible and enabled, or the page never finished loading): {message}"
            )
        if isinstance(e, PlaywrightError):
            browser_gone = self._browser is not None and not self._browser.is_connected()
            if browser_gone or any(m in message.lower() for m in _CRASH_MARKERS):
                return BrowserCrashed(f"Chromium failed during {what}: {message}")
            return BrowserActionError(f"{what} failed: {message}")
        return e

    @functools.cached_property
    def _fence(self) -> re.Pattern[str]:
        """URLs to intercept: all but the allowed origins (whose requests then skip Python)."""
        allowed = "|".join([re.escape(o + "/") for o in sorted(self.allowed_origins)] + list(_LOCAL_SCHEMES))
        return re.compile(rf"^(?!(?:{allowed}))", re.I)

    async def _route(self, route: Route) -> None:  # loop thread
        url = route.request.url
        if url.startswith(_LOCAL_SCHEMES) or _origin(url) in self.allowed_origins:
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort("blockedbyclient")

    async def _close_socket(self, ws: WebSocketRoute) -> None:  # loop thread
        self.blocked.append(ws.url)
        await ws.close()

    async def _active(self) -> Page:  # loop thread
        if self._context is None:
            raise RuntimeError("no episode: call new_episode() first")
        if self._page is None:  # the page closed its last tab: show a blank one, as a browser would
            self._on_page(await self._context.new_page())
        assert self._page is not None
        return self._page

    def _ms(self, timeout: float | None) -> float:
        return (timeout if timeout is not None else self.timeout) * 1000

    def _on_page(self, page: Page) -> None:  # loop thread: a page the page opened becomes the active tab
        if page in self._pages:
            return
        self._pages.append(page)
        page.on("close", self._on_close)
        self._page = page

    def _on_close(self, page: Page) -> None:  # loop thread
        if page in self._pages:
            self._pages.remove(page)
        if self._page is page:
            self._page = self._pages[-1] if self._pages else None

    async def _attached(self, page: Page, selector: str | None) -> None:  # loop thread
        """Raise the model's error when ``selector`` is the ref of an element that left the page."""
        m = _REF.match(selector or "")
        if m and await page.query_selector(selector or "") is None:
            raise _gone(m.group(1))

    async def _settle(self, page: Page, before: int, timeout: float | None) -> None:  # loop thread
        """After an action: a tab it opened becomes the active one, once it has loaded."""
        if len(self._pages) == before and not page.is_closed():
            try:
                opened = await page.evaluate(OPENED_JS)
            except Exception:
                opened = 0  # the action navigated away: the new document opened nothing yet
            if opened and self._context is not None and len(self._pages) == before:
                try:
                    await self._context.wait_for_event("page", timeout=min(self._ms(timeout), _POPUP_WAIT_MS))
                except Exception:
                    pass  # a named target that already exists, or a blocked popup: no new tab
        if len(self._pages) > before and self._page is not None and self._page is not page:
            try:
                await self._page.wait_for_load_state("load", timeout=self._ms(timeout))
            except Exception:
                pass  # a slow tab is still the active one; the next read shows what has loaded

    async def _close_context(self) -> None:  # loop thread
        ctx, self._context, self._page = self._context, None, None
        self._pages = []
        if ctx is not None:
            try:
                await asyncio.wait_for(ctx.close(), _LAUNCH_TIMEOUT)
            except Exception:
                pass  # a crashed browser's context is gone already

    # ----- episodes ----------------------------------------------------------------

    def new_episode(self, init_script: str | None = None) -> None:
        """Start an episode: a fresh context (no cookies, storage, cache) with one blank page.

        Closes the previous episode's context. Starts Chromium on first use, and again if it
        crashed since (whichever instance sharing it gets here first); a Chromium that hung
        stays unusable (create a new ChromiumBrowser: it gets a fresh one).

        Args:
            init_script: JavaScript run in every document before the page's own scripts.
        """

        async def go() -> None:
            await self._close_context()
            self._broken = None
            browser = await self._driver.ensure_browser(max(self.timeout, _LAUNCH_TIMEOUT))
            self._browser = browser
            self.blocked = []
            ctx = await browser.new_context(
                viewport={"width": self.viewport["width"], "height": self.viewport["height"]},
                service_workers="block",
                java_script_enabled=True,
                accept_downloads=False,
            )
            ctx.set_default_timeout(self._ms(None))
            ctx.set_default_navigation_timeout(self._ms(None))
            await ctx.route(self._fence, self._route)
            await ctx.route_web_socket(
                lambda u: _origin(u.replace("ws", "http", 1)) not in self.allowed_origins, self._close_socket
            )
            await ctx.add_init_script(script=OPENER_JS)
            if init_script:
                await ctx.add_init_script(script=init_script)
            self._context = ctx
            ctx.on("page", self._on_page)
            self._on_page(await ctx.new_page())

        self._run(go, max(self.timeout, _LAUNCH_TIMEOUT), "starting an episode", new_episode=True)

    # ----- pages -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The current page's URL (``about:blank`` at the start of an episode)."""

        async def go() -> str:
            return (await self._active()).url

        return self._run(go, what="reading the URL")

    @property
    def title(self) -> str:
        """The current page's title (``""`` when it has none)."""

        async def go() -> str:
            return await (await self._active()).title()

        return self._run(go, what="reading the title")

    def go_back(self, *, timeout: float | None = None) -> None:
        """Go back one page in the current tab's history; waits for ``load``.

        Raises:
            BrowserActionError: there is no previous page in this tab.
        """

        async def go() -> None:
            page = await self._active()
            before = page.url
            # None for a same-document step (a #fragment) too: only an unchanged URL means "no history"
            if await page.go_back(wait_until="load", timeout=self._ms(timeout)) is None and page.url == before:
                raise BrowserActionError("cannot go back: there is no previous page in this tab")

        self._run(go, timeout, "going back")

    def tabs(self) -> list[dict[str, Any]]:
        """The episode's tabs in open order: ``{"index", "url", "title", "active"}`` each."""

        async def go() -> list[dict[str, Any]]:
            active = await self._active()
            titles = await asyncio.gather(*(p.title() for p in self._pages))
            return [
                {"index": i, "url": p.url, "title": t, "active": p is active}
                for i, (p, t) in enumerate(zip(self._pages, titles, strict=True))
            ]

        return self._run(go, what="listing the tabs")

    def switch_tab(self, index: int) -> None:
        """Make tab ``index`` (see :meth:`tabs`) the active one.

        Raises:
            BrowserActionError: there is no tab ``index``.
        """

        async def go() -> None:
            await self._active()
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self._pages):
                raise BrowserActionError(f"no tab {index!r}: the open tabs are numbered 0 to {len(self._pages) - 1}")
            self._page = self._pages[index]
            await self._page.bring_to_front()

        self._run(go, what="switching tabs")

    def goto(self, url_or_path: str, *, timeout: float | None = None) -> None:
        """Open a URL, or a path relative to :attr:`base_url`; waits for the ``load`` event.

        Raises:
            BrowserActionError: the URL is outside :attr:`allowed_origins` or not http(s),
                ``data:`` or ``about:``, or the page failed to load.
        """
        url = url_or_path if urlsplit(url_or_path).scheme else urljoin(self.base_url, url_or_path.lstrip("/"))
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https", "data", "about"):
            raise BrowserActionError(f"cannot open {url!r}: only http(s), data: and about: URLs are allowed")
        if scheme in ("http", "https") and _origin(url) not in self.allowed_origins:
            self.blocked.append(url)
            allowed = ", ".join(sorted(self.allowed_origins)) or "none"
            raise BrowserActionError(f"blocked: {url} is outside the allowed origins ({allowed})")

        async def go() -> None:
            await (await self._active()).goto(url, wait_until="load", timeout=self._ms(timeout))

        self._run(go, timeout, f"opening {url}")

    def text(self, selector: str = "body", *, timeout: float | None = None) -> str:
        """The visible text of ``selector`` (default: the whole page)."""

        async def go() -> str:
            page = await self._active()
            await self._attached(page, selector)
            return await page.inner_text(selector, timeout=self._ms(timeout))

        return self._run(go, timeout, f"reading {selector!r}")

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

        See :meth:`Browser.snapshot`; the id is kept in the element's ``data-agentgym-id`` attribute.

        Raises:
            BrowserActionError: no element matches ``selector``.
        """
        args = [selector, include_text, max_items, clickable, ID_ATTR]

        async def go() -> Any:
            return await (await self._active()).evaluate(SNAPSHOT_JS, args)

        out = self._run(go, timeout, "taking a snapshot")
        if out is None:
            raise BrowserActionError(f"no element matches {selector!r}")
        return str(out)

    def a11y_tree(self, *, root: str = "body", max_chars: int = 8000, timeout: float | None = None) -> str:
        """The page's accessibility tree as text; see :meth:`Browser.a11y_tree` for the line grammar.

        Ids are kept in the element's ``data-agentgym-id`` attribute (shared with :meth:`snapshot`).
        Frames and shadow roots are not entered.

        Raises:
            BrowserActionError: no element matches ``root``.
        """
        args = [root, int(max_chars), ID_ATTR, _MAX_NAME, _MAX_TEXT]

        async def go() -> Any:
            return await (await self._active()).evaluate(A11Y_JS, args)

        out = self._run(go, timeout, "reading the accessibility tree")
        if out is None:
            raise BrowserActionError(f"no element matches {root!r}")
        return str(out)

    def ref(self, element_id: int | str) -> str:
        """The selector of the element listed as ``[element_id]`` by :meth:`a11y_tree` or :meth:`snapshot`."""
        return f'[{ID_ATTR}="{int(element_id)}"]'

    def exists(self, element_id: int | str) -> bool:
        """Whether the element listed as ``[element_id]`` is attached to the current document."""
        selector = self.ref(element_id)

        async def go() -> bool:
            return await (await self._active()).query_selector(selector) is not None

        return self._run(go, what="finding an element")

    def evaluate(self, js: str, arg: Any = None, *, timeout: float | None = None) -> Any:
        """Evaluate a JS expression or function in the page; for environments and graders, not agents.

        Raises:
            BrowserActionError: the script threw, or did not settle within the timeout.
        """

        async def go() -> Any:
            return await (await self._active()).evaluate(EVALUATE_JS, [js, arg, self._ms(timeout)])

        return self._run(go, timeout, "evaluating a script")

    def screenshot(self, path: str | Path, *, full_page: bool = False, timeout: float | None = None) -> Path:
        """Save a PNG of the page to ``path`` and return the path."""
        path = Path(path)
        path.write_bytes(self.screenshot_png(full_page=full_page, timeout=timeout))
        return path

    def screenshot_png(self, *, full_page: bool = False, timeout: float | None = None) -> bytes:
        """A PNG of the page (the viewport, or the whole page), as bytes."""

        async def go() -> bytes:
            return await (await self._active()).screenshot(full_page=full_page, timeout=self._ms(timeout))

        return self._run(go, timeout, "taking a screenshot")

    # ----- actions -----------------------------------------------------------------

    def _act(
        self, selector: str | None, action: Callable[[Page], Awaitable[object]], timeout: float | None, what: str
    ) -> None:
        """Run ``action`` on the active page, after checking that a ref'd element is still there."""

        async def go() -> None:
            page = await self._active()
            await self._attached(page, selector)
            before = len(self._pages)
            await action(page)
            await self._settle(page, before, timeout)

        self._run(go, timeout, what)

    def click(self, selector: str, *, timeout: float | None = None) -> None:
        """Click the element ``selector`` matches (waits until it is visible and enabled)."""
        self._act(selector, lambda p: p.click(selector, timeout=self._ms(timeout)), timeout, f"clicking {selector!r}")

    def fill(self, selector: str, text: str, *, timeout: float | None = None) -> None:
        """Replace the value of the input ``selector`` matches with ``text``."""
        self._act(
            selector, lambda p: p.fill(selector, text, timeout=self._ms(timeout)), timeout, f"filling {selector!r}"
        )

    def select_option(self, selector: str, option: str, *, timeout: float | None = None) -> None:
        """Choose ``option`` in the ``<select>`` ``selector`` matches: by visible label, else by value.

        Raises:
            BrowserActionError: the element is not a ``<select>`` or has no such option.
        """

        async def choose(page: Page) -> None:
            handle = await page.wait_for_selector(selector, state="attached", timeout=self._ms(timeout))
            assert handle is not None
            options = await handle.evaluate(
                "el => el.tagName === 'SELECT' ? Array.from(el.options).map(o => [o.label.trim(), o.value]) : null"
            )
            if options is None:
                raise BrowserActionError(f"{selector} is not a drop-down list (<select>): click its options instead")
            want = str(option).strip()
            index = next((i for i, (label, _) in enumerate(options) if label == want), None)
            if index is None:
                index = next((i for i, (_, value) in enumerate(options) if value == option), None)
            if index is None:
                index = next((i for i, (label, _) in enumerate(options) if label.casefold() == want.casefold()), None)
            if index is None:
                labels = [label for label, _ in options]
                raise BrowserActionError(f"no option {option!r} in the drop-down list; its options are {labels}")
            await page.select_option(selector, index=index, timeout=self._ms(timeout))

        self._act(selector, choose, timeout, f"choosing {option!r} in {selector!r}")

    def hover(self, selector: str, *, timeout: float | None = None) -> None:
        """Move the mouse over the element ``selector`` matches."""
        self._act(selector, lambda p: p.hover(selector, timeout=self._ms(timeout)), timeout, f"hovering {selector!r}")

    def scroll(self, dy: int, selector: str | None = None, *, timeout: float | None = None) -> None:
        """Scroll by ``dy`` CSS pixels (down when positive): the page, or the element ``selector`` matches."""
        dy = int(dy)

        async def go(page: Page) -> None:
            if selector is None:
                await page.evaluate("(dy) => window.scrollBy({top: dy, behavior: 'instant'})", dy)
            else:
                await page.locator(selector).first.evaluate(
                    "(el, dy) => el.scrollBy({top: dy, behavior: 'instant'})", dy, timeout=self._ms(timeout)
                )

        self._act(selector, go, timeout, f"scrolling {selector or 'the page'}")

    def press(self, key: str, selector: str | None = None, *, timeout: float | None = None) -> None:
        """Press a key (``"Enter"``, ``"Control+A"``) on ``selector``, or on the focused element."""

        async def go(page: Page) -> None:
            if selector is None:
                await page.keyboard.press(key)
            else:
                await page.press(selector, key, timeout=self._ms(timeout))

        self._act(selector, go, timeout, f"pressing {key!r}")

    def wait_for(self, selector: str, *, state: ElementState = "visible", timeout: float | None = None) -> None:
        """Wait until ``selector`` is in ``state`` (``attached``/``visible``/``hidden``/``detached``)."""

        async def go() -> None:
            await (await self._active()).wait_for_selector(selector, state=state, timeout=self._ms(timeout))

        self._run(go, timeout, f"waiting for {selector!r}")

    # ----- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close this instance's context and file server; the last instance sharing Chromium closes it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        driver = self._driver
        if not driver.broken and self._context is not None:
            if driver.on_loop_thread():  # the garbage collector, on the loop: close without waiting
                driver.loop.create_task(self._close_context())
            else:
                try:
                    driver.submit(self._close_context()).result(_LAUNCH_TIMEOUT)
                except Exception:
                    pass
        _driver.release(driver, _LAUNCH_TIMEOUT)
        if self._server is not None:
            self._server.close()
            self._server = None

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass
