"""One Playwright driver and one Chromium, on one event-loop thread, shared by ChromiumBrowsers.

A :class:`Driver` owns an asyncio loop on a private thread, Playwright's async API started on it
(one ``node`` driver process) and one Chromium. :class:`~agentgym.sandboxes.browser.ChromiumBrowser`
instances submit coroutines to the loop, so episodes of different instances overlap on Chromium
work instead of taking turns on one thread (Playwright objects stay on the loop's thread, where
they were made).

Instances with the same launch settings (executable and flags) in one process share a driver
(:func:`acquire`, :func:`release`: refcounted, closed with its last user); ``shared=False`` gets
a private one. Chromium starts on the first :meth:`Driver.ensure_browser` and is started again
there after a crash. A driver that stops answering is :meth:`Driver.fail`-ed: its users see
``BrowserCrashed`` from then on, it leaves the registry (the next instance gets a fresh one) and
its processes are killed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agentgym.errors import SandboxError

if TYPE_CHECKING:
    from playwright.async_api import Browser as PlaywrightBrowser
    from playwright.async_api import Playwright

__all__ = ["Driver", "acquire", "process_tree", "release"]

_T = TypeVar("_T")
_PING_SECONDS = 2.0  # how long a driver has to answer a ping after a call overran its deadline

_registry: dict[tuple[str, tuple[str, ...]], Driver] = {}
_registry_lock = threading.Lock()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (read from ``/proc``; empty when ``pid`` is gone)."""
    if not os.path.exists(f"/proc/{pid}"):
        return []
    seen, todo = [pid], [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in seen:
                seen.append(child)
                todo.append(child)
    return seen


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Driver:
    """An event loop on a private thread with Playwright (async API) and, once launched, Chromium."""

    def __init__(self, executable_path: str, args: Iterable[str], *, shared: bool):
        self.key = (executable_path, tuple(args))
        self.shared = shared
        self.users = 0
        self.broken: str | None = None
        """Why the driver is unusable (it hung); None while it works."""
        self.launches = 0
        """How many times Chromium was started (1 + relaunches after crashes)."""
        self.browser: PlaywrightBrowser | None = None
        self.driver_pid: int | None = None
        """The Playwright driver (``node``) process; Chromium runs under it."""
        self._pw: Playwright | None = None
        self._launch_lock: asyncio.Lock | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="agentgym-chromium", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self.loop):  # a hung driver's calls: nothing will answer them
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the loop; the caller waits on the future with its deadline."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def ensure_browser(self, launch_timeout: float) -> PlaywrightBrowser:  # loop thread
        """The running Chromium: started on first use, and again after it crashed or disconnected."""
        if self._launch_lock is None:
            self._launch_lock = asyncio.Lock()
        async with self._launch_lock:
            if self.browser is not None and self.browser.is_connected():
                return self.browser
            executable, args = self.key
            try:
                from playwright.async_api import async_playwright
            except ImportError as e:
                raise SandboxError("Playwright is not installed: pip install 'agentgym[browser]'") from e
            if not os.path.exists(executable):
                raise SandboxError(f"Chromium not found at {executable}: apt-get install chromium")
            try:
                if self._pw is None:
                    before = set(_children(os.getpid()))
                    self._pw = await async_playwright().start()
                    fresh = [p for p in _children(os.getpid()) if p not in before and "run-driver" in _cmdline(p)]
                    self.driver_pid = fresh[-1] if fresh else None
                self.browser = await self._pw.chromium.launch(
                    executable_path=executable, headless=True, args=list(args), timeout=launch_timeout * 1000
                )
            except Exception as e:
                first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise SandboxError(f"could not launch Chromium ({executable}): {first_line}") from e
            self.launches += 1
            return self.browser

    def responsive(self) -> bool:
        """Whether Chromium still answers (a round trip through the driver within a short deadline)."""
        browser = self.browser
        if self.broken or browser is None:
            return False

        async def ping() -> None:
            session = await browser.new_browser_cdp_session()
            await session.detach()

        try:
            self.submit(ping()).result(_PING_SECONDS)
            return True
        except Exception:
            return False

    def fail(self, reason: str) -> None:
        """Mark the driver hung: every user gets ``BrowserCrashed``; kill its processes; leave the registry."""
        if self.broken:
            return
        self.broken = reason
        # Playwright's pending calls fail once the driver is killed; nobody waits for them any more.
        self.loop.call_soon_threadsafe(self.loop.set_exception_handler, lambda loop, context: None)
        with _registry_lock:
            if _registry.get(self.key) is self:
                del _registry[self.key]
        self._kill()

    def _kill(self) -> None:
        if self.driver_pid is None:
            return
        for pid in reversed(process_tree(self.driver_pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def close(self, timeout: float) -> None:
        """Close Chromium and Playwright and stop the loop thread (kill the processes of a hung driver)."""

        async def shutdown() -> None:
            try:
                if self.browser is not None:
                    await self.browser.close()
                if self._pw is not None:
                    await self._pw.stop()
            except Exception:
                pass  # a crashed browser or a dead driver: nothing left to release
            self.browser = self._pw = None

        if self.on_loop_thread():  # closed by the garbage collector on the loop itself: cannot wait here

            async def shutdown_and_stop() -> None:
                await shutdown()
                self.loop.stop()

            self.loop.create_task(shutdown_and_stop())
            return
        try:  # a hung driver's processes are killed already: stopping it only closes its pipes
            self.submit(shutdown()).result(_PING_SECONDS if self.broken else timeout)
        except Exception:
            self._kill()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the loop's thread (where waiting for the loop would deadlock)."""
        return threading.current_thread() is self._thread


def acquire(executable_path: str, args: Iterable[str], *, shared: bool) -> Driver:
    """A driver for these launch settings: the process's shared one (made if needed), or a private one."""
    if not shared:
        private = Driver(executable_path, args, shared=False)
        private.users = 1
        return private
    key = (executable_path, tuple(args))
    with _registry_lock:
        driver = _registry.get(key)
        if driver is None or driver.broken:
            driver = _registry[key] = Driver(executable_path, args, shared=True)
        driver.users += 1
        return driver


def release(driver: Driver, timeout: float) -> None:
    """Drop one user of ``driver``; the last one closes it."""
    with _registry_lock:
        driver.users -= 1
        last = driver.users <= 0
        if last and _registry.get(driver.key) is driver:
            del _registry[driver.key]
    if last:
        driver.close(timeout)
