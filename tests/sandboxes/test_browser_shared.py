"""One Chromium per process: ChromiumBrowser instances with the same launch settings share it."""

from __future__ import annotations

import http.server
import os
import signal
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from test_sandbox_browser import _require_browser

from agentgym.sandboxes.browser import BrowserCrashed, ChromiumBrowser, chromium
from agentgym.sandboxes.browser._driver import process_tree

pytestmark = pytest.mark.browser

PAGE = "<html><head><title>p</title></head><body><button onclick=\"this.textContent='done'\">Go</button></body></html>"


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pids: list[int], wait: float = 5.0) -> list[int]:
    """The processes of ``pids`` still running after up to ``wait`` seconds (a zombie counts as ended)."""

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + wait
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if running(p)]


def _chromium_roots(box: ChromiumBrowser) -> list[int]:
    """Chromium processes started by the box's Playwright driver (the browser processes, not their helpers)."""
    assert box.driver_pid is not None
    tree = process_tree(box.driver_pid)
    chrome = [p for p in tree if "chrom" in _name(p)]
    parents = {p: int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) for p in chrome}
    return [p for p in chrome if parents[p] not in chrome]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shared")
    (root / "index.html").write_text(PAGE)
    return root


@pytest.fixture
def one_origin(site: Path) -> Iterator[str]:
    """A server of its own, so several browsers can open the very same origin."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _flags() -> tuple[str, ...]:
    """Launch settings no other test module uses, so these tests own the shared process."""
    return (f"--user-agent=agentgym-shared-test-{os.getpid()}-{threading.get_ident()}",)


def test_four_instances_share_one_chromium_and_keep_their_state_apart(site: Path, one_origin: str) -> None:
    _require_browser()
    flags = _flags()
    boxes = [ChromiumBrowser(site, timeout=5, allowed_origins=[one_origin], extra_args=flags) for _ in range(4)]
    try:
        errors: list[BaseException] = []

        def episode(box: ChromiumBrowser, i: int) -> None:
            try:
                box.new_episode()
                box.goto(f"{one_origin}/index.html")
                box.evaluate(f"() => {{ document.cookie = 'who={i}'; localStorage.setItem('who', '{i}'); }}")
                box.click("text=Go")
            except BaseException as e:  # reported below, on the test thread
                errors.append(e)

        threads = [threading.Thread(target=episode, args=(box, i)) for i, box in enumerate(boxes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len({box.driver_pid for box in boxes}) == 1
        assert len(_chromium_roots(boxes[0])) == 1
        for i, box in enumerate(boxes):  # same origin, separate contexts: each sees only its own state
            assert box.evaluate("() => [document.cookie, localStorage.getItem('who')]") == [f"who={i}", str(i)]
            assert box.text("button") == "done"
        # Each keeps its own file server and fence.
        assert len({box.base_url for box in boxes}) == 4
        boxes[0].goto("index.html")
        assert boxes[0].url.startswith(boxes[0].base_url)
        with pytest.raises(chromium.BrowserActionError, match="blocked"):
            boxes[1].goto(boxes[0].base_url + "index.html")
        # A new episode of one leaves the others' pages alone.
        boxes[2].new_episode()
        assert boxes[2].url == "about:blank" and boxes[3].text("button") == "done"
        # Closing one leaves the others working; the last close ends the process.
        driver, roots = boxes[0].driver_pid, _chromium_roots(boxes[0])
        assert driver is not None
        boxes[0].close()
        boxes[1].new_episode()
        boxes[1].goto("index.html")
        boxes[1].click("text=Go")
        assert boxes[1].text("button") == "done" and process_tree(driver)
        for box in boxes[1:3]:
            box.close()
        assert boxes[3].text("button") == "done"
        boxes[3].close()
        assert _alive(process_tree(driver)) == [] and all(_alive(process_tree(r)) == [] for r in roots)
    finally:
        for box in boxes:
            box.close()


def test_shared_false_gets_a_chromium_of_its_own(site: Path) -> None:
    _require_browser()
    flags = _flags()
    with ChromiumBrowser(site, extra_args=flags) as a, ChromiumBrowser(site, extra_args=flags, shared=False) as b:
        a.new_episode()
        b.new_episode()
        assert a.driver_pid != b.driver_pid
        assert len(_chromium_roots(a)) == 1 and len(_chromium_roots(b)) == 1


def test_a_crash_relaunches_for_every_instance(site: Path) -> None:
    _require_browser()
    flags = _flags()
    with (
        ChromiumBrowser(site, timeout=5, extra_args=flags) as a,
        ChromiumBrowser(site, timeout=5, extra_args=flags) as b,
    ):
        for box in (a, b):
            box.new_episode()
            box.goto("index.html")
        (root,) = _chromium_roots(a)
        os.kill(root, signal.SIGKILL)
        for box in (a, b):
            with pytest.raises(BrowserCrashed, match="Chromium failed during"):
                box.click("text=Go")
        a.new_episode()  # relaunches the shared Chromium
        b.new_episode()  # and b uses the new one
        for box in (a, b):
            box.goto("index.html")
            box.click("text=Go")
            assert box.text("button") == "done"
        assert a._driver is b._driver and a._driver.launches == 2
        assert _chromium_roots(a) != [root] and len(_chromium_roots(a)) == 1


def test_a_hung_driver_breaks_all_its_instances_and_the_next_one_gets_a_fresh_one(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_browser()
    monkeypatch.setattr(chromium, "HARD_DEADLINE_GRACE", 0.5)
    flags = _flags()
    a = ChromiumBrowser(site, timeout=0.5, extra_args=flags)
    b = ChromiumBrowser(site, timeout=0.5, extra_args=flags)
    try:
        for box in (a, b):
            box.new_episode()
            box.goto("index.html")
        hung = a.driver_pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)  # the driver stops answering: only the hard deadline ends the call
        with pytest.raises(
            BrowserCrashed, match=r"Chromium did not answer: clicking 'text=Go' hung for more than 1 s$"
        ):
            a.click("text=Go")
        for box in (a, b):
            with pytest.raises(BrowserCrashed, match=r"unusable \(.*\); create a new ChromiumBrowser"):
                box.new_episode()
        assert _alive(process_tree(hung)) == []  # its processes were killed
        with ChromiumBrowser(site, timeout=5, extra_args=flags) as c:
            c.new_episode()
            c.goto("index.html")
            c.click("text=Go")
            assert c.text("button") == "done" and c.driver_pid != hung
    finally:
        a.close()
        b.close()


def test_a_hung_page_loses_only_its_episode(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_browser()
    monkeypatch.setattr(chromium, "HARD_DEADLINE_GRACE", 0.5)
    flags = _flags()
    with (
        ChromiumBrowser(site, timeout=1, extra_args=flags) as a,
        ChromiumBrowser(site, timeout=1, extra_args=flags) as b,
    ):
        for box in (a, b):
            box.new_episode()
            box.goto("index.html")
        with pytest.raises(BrowserCrashed, match=r"hung for more than 1\.5 s \(the page hung\)"):
            a.evaluate("() => { while (true) {} }")
        with pytest.raises(BrowserCrashed, match="start a new episode"):
            a.text()
        b.click("text=Go")  # the other instance never noticed
        assert b.text("button") == "done"
        a.new_episode()
        a.goto("index.html")
        assert a.text("button") == "Go"
