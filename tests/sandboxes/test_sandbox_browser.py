"""ChromiumBrowser against the real Chromium: the Browser protocol, pages, the network fence, failures."""

from __future__ import annotations

import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sandbox_helpers import require  # tests/conftest.py's rule: skip outside CI, fail in CI

from agentgym.errors import InfrastructureError, SandboxError
from agentgym.sandboxes import Sandbox
from agentgym.sandboxes.browser import (
    Browser,
    BrowserActionError,
    BrowserCrashed,
    BrowserTimeout,
    ChromiumBrowser,
    chromium,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><html><head><title>t</title></head><body>
<h1>Counter</h1>
<p id="count">0</p>
<button id="inc" onclick="const c = document.getElementById('count'); c.textContent = String(Number(c.textContent) + 1)"
  >Add one</button>
<input id="name" placeholder="your name"
  onkeydown="if (event.key === 'Enter') document.getElementById('greet').textContent = 'hi ' + this.value">
<p id="greet"></p>
<div style="display:none"><button>Hidden</button></div>
<a href="other.html">Other page</a>
</body></html>"""


def _require_browser() -> None:
    require(os.path.exists(CHROMIUM), "Chromium is not installed: apt-get install chromium")
    require(importlib.util.find_spec("playwright") is not None, "Playwright is not installed: pip install playwright")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PAGE)
    (root / "other.html").write_text("<html><body><p id='o'>the other page</p></body></html>")
    return root


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[ChromiumBrowser]:
    """One Chromium for the whole module (launching costs ~1.5 s on two shared cores)."""
    _require_browser()
    with ChromiumBrowser(site, timeout=5) as sb:
        yield sb


@pytest.fixture
def sb(browser: ChromiumBrowser) -> ChromiumBrowser:
    browser.new_episode()
    return browser


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _launched(site: Path, timeout: float) -> tuple[ChromiumBrowser, list[psutil.Process], list[psutil.Process]]:
    """A new browser showing index.html, with its Playwright driver (node) and Chromium root processes."""
    _require_browser()
    before = _children()
    box = ChromiumBrowser(site, timeout=timeout, shared=False)  # processes of its own, to kill or suspend
    box.new_episode()
    box.goto("index.html")
    mine = [psutil.Process(pid) for pid in _children() - before]
    drivers = [p for p in mine if p.name().startswith("node")]
    roots = [p for p in mine if "chrom" in p.name() and p.ppid() not in {q.pid for q in mine if "chrom" in q.name()}]
    assert drivers and roots, f"could not find this browser's processes among {[p.name() for p in mine]}"
    return box, drivers, roots


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012  (the test reads the requests the handler instances saw)

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(b"secret")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[tuple[str, list[str]]]:
    """A server on loopback, on another port than the sandbox's: pages must not reach it."""
    _Recorder.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Recorder.hits
    httpd.shutdown()
    httpd.server_close()


def test_page_renders_and_click_changes_state(sb: ChromiumBrowser) -> None:
    sb.goto("index.html")
    assert "Counter" in sb.text()
    sb.click("#inc")
    sb.click("#inc")
    assert sb.text("#count") == "2"
    assert sb.evaluate("() => document.getElementById('count').textContent") == "2"


def test_snapshot_lists_visible_elements_with_stable_ids(sb: ChromiumBrowser) -> None:
    sb.goto("index.html")
    snap = sb.snapshot()
    assert snap.splitlines() == ['[1] button "Add one"', '[2] textbox "your name" value=""', '[3] link "Other page"']
    sb.fill(sb.ref(2), "Ada")
    sb.press("Enter", sb.ref(2))
    sb.click(sb.ref(1))
    assert sb.text("#greet") == "hi Ada"
    again = sb.snapshot(include_text=True)
    assert '[2] textbox "your name" value="Ada"' in again and '[1] button "Add one" focused' in again
    assert 'text "1"' in again and '[1] button "Add one"' in again  # same ids after the page changed
    sb.click(sb.ref(3))
    assert sb.url.endswith("/other.html") and sb.text() == "the other page"


def test_other_origins_are_blocked(sb: ChromiumBrowser, other_server: tuple[str, list[str]]) -> None:
    other, hits = other_server
    sb.goto("index.html")
    for url in (f"{other}/page", "http://example.com/", "https://example.com/"):
        with pytest.raises(BrowserActionError, match=r"blocked: .* outside the allowed origins"):
            sb.goto(url)
    with pytest.raises(BrowserActionError, match="only http"):
        sb.goto("file:///etc/passwd")
    # The page itself cannot reach out either: fetch, images and navigation all fail.
    results = sb.evaluate(
        """async (urls) => Promise.all(urls.map(async (u) => {
        try { const r = await fetch(u); return await r.text(); } catch (e) { return 'failed'; } }))""",
        [f"{other}/fetch", "http://example.com/fetch", "http://localhost:1/x"],
    )
    assert results == ["failed", "failed", "failed"]
    sb.evaluate(
        f"() => new Promise(r => {{ const i = new Image(); i.onerror = i.onload = r; i.src = '{other}/img'; }})"
    )
    with pytest.raises(BrowserActionError):
        sb.evaluate(f"() => {{ location.href = '{other}/nav'; return new Promise(r => setTimeout(r, 300)); }}")
    assert hits == []
    assert any(u.startswith(other) for u in sb.blocked) and any("example.com" in u for u in sb.blocked)
    assert sb.url.startswith(sb.base_url)


def test_allowed_origins_opt_in(site: Path, other_server: tuple[str, list[str]]) -> None:
    other, _ = other_server
    with ChromiumBrowser(site, allowed_origins=[other]) as box:
        assert box.allowed_origins == {box.base_url.rstrip("/"), other}
        with pytest.raises(RuntimeError, match="call new_episode"):
            box.text()


def test_each_episode_gets_a_fresh_context(sb: ChromiumBrowser) -> None:
    sb.goto("index.html")
    sb.evaluate(
        "() => { document.cookie = 'session=abc'; localStorage.setItem('k', 'v'); sessionStorage.setItem('s', 'v'); }"
    )
    assert sb.evaluate("() => [document.cookie, localStorage.getItem('k')]") == ["session=abc", "v"]
    sb.new_episode()
    assert sb.url == "about:blank"
    sb.goto("index.html")
    assert sb.evaluate("() => [document.cookie, localStorage.getItem('k'), sessionStorage.getItem('s')]") == [
        "",
        None,
        None,
    ]


def test_init_script_runs_before_page_scripts(sb: ChromiumBrowser) -> None:
    sb.new_episode(init_script="window.__seeded = 42;")
    sb.goto("index.html")
    assert sb.evaluate("() => window.__seeded") == 42


def test_timeouts_give_clear_errors(sb: ChromiumBrowser) -> None:
    sb.goto("index.html")
    with pytest.raises(
        BrowserTimeout, match=r"waiting for '#never' timed out after 0\.5 s \(the element never appeared"
    ):
        sb.wait_for("#never", timeout=0.5)
    with pytest.raises(BrowserTimeout, match=r"clicking 'text=Hidden' timed out after 0\.5 s"):
        sb.click("text=Hidden", timeout=0.5)
    with pytest.raises(BrowserActionError, match="evaluate timed out after 500 ms"):
        sb.evaluate("() => new Promise(() => {})", timeout=0.5)
    assert sb.text("#count") == "0"  # the sandbox is still usable


def test_screenshot(sb: ChromiumBrowser, tmp_path: Path) -> None:
    sb.goto("index.html")
    out = sb.screenshot(tmp_path / "page.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_browser_is_not_a_sandbox(browser: ChromiumBrowser) -> None:
    assert isinstance(browser, Browser) and not isinstance(browser, Sandbox)
    assert not hasattr(browser, "exec") and not hasattr(browser, "read_file")
    # The old name still imports, from both places.
    from agentgym.sandboxes import BrowserSandbox
    from agentgym.sandboxes.browser import BrowserSandbox as same

    assert BrowserSandbox is same is ChromiumBrowser
    # The errors: the model's mistakes are not infrastructure; a crashed browser is.
    assert not issubclass(BrowserActionError, InfrastructureError) and issubclass(BrowserTimeout, BrowserActionError)
    assert issubclass(BrowserCrashed, SandboxError) and issubclass(BrowserCrashed, InfrastructureError)


PROTOCOL = {
    "new_episode", "url", "title", "goto", "go_back", "tabs", "switch_tab", "text", "snapshot", "a11y_tree",
    "ref", "exists", "evaluate", "screenshot", "screenshot_png", "click", "fill", "select_option", "hover",
    "scroll", "press", "wait_for", "close",
}  # fmt: skip


def test_every_protocol_method_works_on_chromium(site: Path, tmp_path: Path) -> None:
    """One pass through the whole Browser protocol; a method added to it must be added here."""
    assert Browser.__abstractmethods__ == PROTOCOL
    _require_browser()
    box: Browser = ChromiumBrowser(site, timeout=5)
    with box:
        box.new_episode(init_script="window.__n = 7;")
        assert box.url == "about:blank"
        box.goto("index.html")
        assert box.url.endswith("/index.html") and box.evaluate("() => window.__n") == 7
        assert box.snapshot().splitlines()[0] == '[1] button "Add one"'
        box.click(box.ref(1))
        box.fill("#name", "Ada")
        box.press("Enter", "#name")
        box.wait_for("#greet:has-text('hi Ada')")
        assert box.text("#count") == "1" and box.text("#greet") == "hi Ada"
        assert box.screenshot(tmp_path / "p.png").stat().st_size > 100
        # The methods of issue 14 (test_browser_a11y.py tests each in depth).
        assert box.title == "t" and '[1] button "Add one"' in box.a11y_tree().splitlines()
        assert box.exists(1) and not box.exists(99)
        box.hover(box.ref(1))
        box.scroll(50)
        box.goto("other.html")
        box.go_back()
        assert box.url.endswith("/index.html")
        assert box.tabs() == [{"index": 0, "url": box.url, "title": "t", "active": True}]
        box.switch_tab(0)
        box.evaluate(
            "() => { document.body.innerHTML = '<select id=s><option>a</option><option>b</option></select>'; }"
        )
        box.select_option("#s", "b")
        assert box.evaluate("() => document.getElementById('s').value") == "b"
        assert box.screenshot_png()[:4] == b"\x89PNG"
    box.close()  # idempotent after the with block closed it
    with pytest.raises(SandboxError, match="closed"):
        box.goto("index.html")


def test_crash_is_an_infrastructure_error_and_close_is_idempotent(site: Path) -> None:
    """Killing Chromium turns the next call into BrowserCrashed; a new episode relaunches it."""
    box, _, roots = _launched(site, timeout=5)
    for process in roots:
        process.kill()
    with pytest.raises(BrowserCrashed, match="Chromium failed during clicking"):
        box.click("#inc")
    box.new_episode()  # relaunches
    box.goto("index.html")
    box.click("#inc")
    assert box.text("#count") == "1"
    box.close()
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.goto("index.html")
    with ChromiumBrowser(site) as unused:  # never launched: closing costs nothing
        pass
    unused.close()


def test_a_hung_browser_is_an_infrastructure_error(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that gets no answer past its hard deadline raises BrowserCrashed, and so does every later call."""
    monkeypatch.setattr(chromium, "HARD_DEADLINE_GRACE", 0.5)
    box, drivers, roots = _launched(site, timeout=0.5)
    for process in drivers:
        process.suspend()  # Playwright's driver stops answering: only the hard deadline can end the call
    try:
        with pytest.raises(BrowserCrashed, match=r"Chromium did not answer: clicking '#inc' hung for more than 1 s"):
            box.click("#inc")
        with pytest.raises(BrowserCrashed, match=r"unusable \(.*\); create a new ChromiumBrowser"):
            box.new_episode()
        box.close()  # does not wait for the stuck thread
    finally:
        for process in drivers + roots:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


def test_importing_sandboxes_does_not_import_playwright() -> None:
    code = (
        "import sys, agentgym.sandboxes as s; assert 'BrowserSandbox' in s.__all__; print('playwright' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_missing_chromium_is_an_infrastructure_error_that_says_how_to_fix(tmp_path: Path) -> None:
    box = ChromiumBrowser(executable_path=str(tmp_path / "no-chromium"))
    with box, pytest.raises(SandboxError, match=r"Chromium not found at .*: apt-get install chromium"):
        box.new_episode()
    with pytest.raises(ValueError, match="every browser call needs a deadline"):
        ChromiumBrowser(timeout=0)
