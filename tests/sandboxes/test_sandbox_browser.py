"""BrowserSandbox against the real Chromium: rendering, clicks, network fence, episodes, timeouts."""

from __future__ import annotations

import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import require  # tests/conftest.py's rule: skip outside CI, fail in CI

from agentgym.sandboxes import SandboxError

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><html><head><title>t</title></head><body>
<h1>Counter</h1>
<p id="count">0</p>
<button id="inc" onclick="document.getElementById('count').textContent = String(Number(document.getElementById('count').textContent) + 1)">Add one</button>
<input id="name" placeholder="your name" onkeydown="if (event.key === 'Enter') document.getElementById('greet').textContent = 'hi ' + this.value">
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
def browser(site: Path) -> Iterator:
    """One Chromium for the whole module (launching costs ~1.5 s on two shared cores)."""
    _require_browser()
    from agentgym.sandboxes import BrowserSandbox

    with BrowserSandbox(site, timeout=5) as sb:
        yield sb


@pytest.fixture
def sb(browser):  # type: ignore[no-untyped-def]
    browser.new_episode()
    return browser


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

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


def test_page_renders_and_click_changes_state(sb) -> None:  # type: ignore[no-untyped-def]
    sb.goto("index.html")
    assert "Counter" in sb.text()
    sb.click("#inc")
    sb.click("#inc")
    assert sb.text("#count") == "2"
    assert sb.evaluate("() => document.getElementById('count').textContent") == "2"


def test_snapshot_lists_visible_elements_with_stable_ids(sb) -> None:  # type: ignore[no-untyped-def]
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


def test_other_origins_are_blocked(sb, other_server) -> None:  # type: ignore[no-untyped-def]
    from agentgym.sandboxes.browser import BrowserActionError

    other, hits = other_server
    sb.goto("index.html")
    for url in (f"{other}/page", "http://example.com/", "https://example.com/"):
        with pytest.raises(BrowserActionError, match="blocked: .* outside the allowed origins"):
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


def test_allowed_origins_opt_in(site: Path, other_server) -> None:  # type: ignore[no-untyped-def]
    from agentgym.sandboxes import BrowserSandbox

    other, hits = other_server
    with BrowserSandbox(site, allowed_origins=[other]) as box:
        assert box.allowed_origins == {box.base_url.rstrip("/"), other}
        with pytest.raises(RuntimeError, match="call new_episode"):
            box.text()


def test_each_episode_gets_a_fresh_context(sb) -> None:  # type: ignore[no-untyped-def]
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


def test_init_script_runs_before_page_scripts(sb) -> None:  # type: ignore[no-untyped-def]
    sb.new_episode(init_script="window.__seeded = 42;")
    sb.goto("index.html")
    assert sb.evaluate("() => window.__seeded") == 42


def test_timeouts_give_clear_errors(sb) -> None:  # type: ignore[no-untyped-def]
    from agentgym.sandboxes.browser import BrowserActionError, BrowserTimeout

    sb.goto("index.html")
    with pytest.raises(
        BrowserTimeout, match=r"waiting for '#never' timed out after 0.5 s \(the element never appeared"
    ):
        sb.wait_for("#never", timeout=0.5)
    with pytest.raises(BrowserTimeout, match=r"clicking 'text=Hidden' timed out after 0.5 s"):
        sb.click("text=Hidden", timeout=0.5)
    with pytest.raises(BrowserActionError, match="evaluate timed out after 500 ms"):
        sb.evaluate("() => new Promise(() => {})", timeout=0.5)
    assert sb.text("#count") == "0"  # the sandbox is still usable


def test_screenshot(sb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sb.goto("index.html")
    out = sb.screenshot(tmp_path / "page.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_not_a_filesystem_sandbox(browser) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotImplementedError, match="BrowserSandbox has no exec"):
        browser.exec("ls")
    with pytest.raises(NotImplementedError, match="not a filesystem"):
        browser.read_file("x")


def test_crash_is_an_infrastructure_error_and_close_is_idempotent(site: Path) -> None:
    """Killing Chromium turns the next call into SandboxError; a new episode relaunches it."""
    _require_browser()
    import psutil

    from agentgym.sandboxes import BrowserSandbox

    def chromes() -> set[int]:
        return {p.pid for p in psutil.Process().children(recursive=True) if "chrom" in p.name()}

    before = chromes()
    box = BrowserSandbox(site, timeout=5)
    box.new_episode()
    box.goto("index.html")
    mine = chromes() - before
    root = [pid for pid in mine if psutil.Process(pid).ppid() not in mine]
    assert root, "could not find this sandbox's Chromium process"
    for pid in root:
        psutil.Process(pid).kill()
    with pytest.raises(SandboxError, match="Chromium failed"):
        box.click("#inc")
    box.new_episode()  # relaunches
    box.goto("index.html")
    box.click("#inc")
    assert box.text("#count") == "1"
    box.close()
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.goto("index.html")
    with BrowserSandbox(site) as unused:  # never launched: closing costs nothing
        pass
    unused.close()


def test_importing_sandboxes_does_not_import_playwright() -> None:
    code = (
        "import sys, agentgym.sandboxes as s; assert 'BrowserSandbox' in s.__all__; print('playwright' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_missing_chromium_is_an_infrastructure_error_that_says_how_to_fix(tmp_path: Path) -> None:
    from agentgym.sandboxes import BrowserSandbox

    with BrowserSandbox(executable_path=str(tmp_path / "no-chromium")) as box:
        with pytest.raises(SandboxError, match="Chromium not found at .*: apt-get install chromium"):
            box.new_episode()
    with pytest.raises(ValueError, match="every browser call needs a deadline"):
        BrowserSandbox(timeout=0)
