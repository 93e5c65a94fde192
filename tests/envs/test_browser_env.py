"""BrowserEnv: the ten tools on a live page, their error messages, the fences, the budget, screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentgym.envs.browser import BrowserEnv, parse_elements
from agentgym.parsing import format_tool_call
from agentgym.sandboxes.browser import Browser, ChromiumBrowser
from agentgym.tasks import Task, TaskSet
from agentgym.testing import require

pytestmark = pytest.mark.browser

INDEX = """<!doctype html><html><head><title>Home</title></head><body>
<h1>Shop</h1>
<a href="/second.html">Next page</a>
<a href="/second.html" target="_blank">Open in a new tab</a>
<input id="name" aria-label="Name">
<select id="size" aria-label="Size"><option>Small</option><option>Large</option></select>
<button id="go" onclick="hello()">Go</button>
<script>
function hello() { document.getElementById("out").textContent = "Hello " + document.getElementById("name").value; }
</script>
<button onclick="this.remove()">Remove me</button>
<button id="menu" onmouseover="document.getElementById('tip').style.display = 'block'">Menu</button>
<p id="tip" style="display: none">Tooltip shown</p>
<input id="key" aria-label="Key" onkeydown="document.getElementById('out').textContent = 'Key ' + event.key">
<p id="out">Nothing yet</p>
<div style="height: 3000px"></div>
<p>Bottom of the page</p>
</body></html>
"""
SECOND = """<!doctype html><html><head><title>Second</title></head><body><h1>Second page</h1></body></html>"""
LONG = (
    "<!doctype html><html><head><title>Long</title></head><body>"
    + "".join(f"<button>Button number {i}</button>" for i in range(300))
    + "</body></html>"
)


class PageEnv(BrowserEnv):
    """A BrowserEnv on a few local pages; success: the answer is 42."""

    def __init__(self, root: Path, **kwargs: Any):
        self.root = root
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        return TaskSet(
            [
                Task("home", "Use the page.", setup={"url": "index.html"}),
                Task("long", "Read the page.", setup={"url": "long.html"}),
            ]
        )

    def make_browser(self) -> Browser:
        return ChromiumBrowser(self.root, timeout=self.browser_timeout)

    def success(self) -> float:
        return float(self.answer_text == "42")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(os.path.exists("/usr/bin/chromium"), "Chromium is not installed: apt-get install chromium")
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(INDEX)
    (root / "second.html").write_text(SECOND)
    (root / "long.html").write_text(LONG)
    return root


@pytest.fixture(scope="module")
def env(site: Path) -> Iterator[PageEnv]:
    e = PageEnv(site, browser_timeout=2.0)
    yield e
    e.close()


def call(env: BrowserEnv, name: str, **args: Any) -> tuple[str, float, bool, dict[str, Any]]:
    """One turn with one call: (the tool message, reward, terminated, info)."""
    obs, reward, terminated, _, info = env.step(format_tool_call(name, args))
    return obs[0]["content"], reward, terminated, info


def element(env: BrowserEnv, role: str, name: str) -> int:
    return env.find(role, name)


def test_the_observation_has_url_title_tabs_error_and_tree(env: PageEnv) -> None:
    obs, info = env.reset(options={"task_id": "home"})
    text = obs[-1]["content"]
    assert text.startswith("Use the page.\n\nURL: http://127.0.0.1:")
    assert "/index.html\nTitle: Home\nTabs: [0] Home (active)\nLast action error: none\n\n" in text
    assert 'heading "Shop"' in text and '] button "Go"' in text and '] textbox "Name"' in text
    assert "screenshot" not in info
    ids = [i for i, *_ in env.elements()]
    assert ids and len(ids) == len(set(ids))
    assert env.find("link", "Next page") in ids
    assert env.find("button", "Remove", contains=True) == env.find("button", "Remove me")
    with pytest.raises(ValueError, match='no button "Nope"'):
        env.find("button", "Nope")


def test_click_fill_select_press_hover_scroll(env: PageEnv) -> None:
    env.reset(options={"task_id": "home"})
    text, *_ = call(env, "fill", element_id=element(env, "textbox", "Name"), text="<b>Ann</b>")
    assert text.startswith("Filled [") and 'value="<b>Ann</b>"' in text
    text, *_ = call(env, "click", element_id=element(env, "button", "Go"))
    assert text.startswith("Clicked [") and env.browser.text("#out") == "Hello <b>Ann</b>"  # typed text is data
    size = element(env, "combobox", "Size")
    text, *_ = call(env, "select", element_id=size, option="Large")
    assert text.startswith('Selected "Large"')
    assert next(a for i, _, _, a in env.elements() if i == size).get("value") == "Large"
    call(env, "click", element_id=element(env, "textbox", "Key"))
    text, *_ = call(env, "press", key="Enter")
    assert text.startswith("Pressed Enter.") and env.browser.text("#out") == "Key Enter"
    assert "Tooltip shown" not in env.observation()
    text, *_ = call(env, "hover", element_id=element(env, "button", "Menu"))
    assert "Tooltip shown" in text
    call(env, "scroll", direction="down")
    assert env.browser.evaluate("() => window.scrollY") > 0
    call(env, "scroll", direction="up")
    assert env.browser.evaluate("() => window.scrollY") == 0


def test_goto_go_back_and_tabs(env: PageEnv) -> None:
    env.reset(options={"task_id": "home"})
    text, *_ = call(env, "goto", url="/second.html")
    assert "/second.html\nTitle: Second" in text and 'heading "Second page"' in text
    text, *_ = call(env, "go_back")
    assert "/index.html\nTitle: Home" in text
    text, *_ = call(env, "click", element_id=element(env, "link", "Open in a new tab"))
    assert "Tabs: [0] Home | [1] Second (active)" in text
    text, *_ = call(env, "switch_tab", index=0)
    assert "Tabs: [0] Home (active) | [1] Second" in text
    text, _, _, info = call(env, "switch_tab", index=5)
    assert text.startswith('Error: tool "switch_tab"') and info["tool_errors"] == {"tool_exception": 1}


def test_a_missing_or_detached_element_is_a_clear_error(env: PageEnv) -> None:
    env.reset(options={"task_id": "home"})
    gone = element(env, "button", "Remove me")
    call(env, "click", element_id=gone)
    text, _, _, info = call(env, "click", element_id=gone)
    assert f"no element [{gone}] on the page (it was never listed, or the page removed it)" in text
    assert info["tool_errors"] == {"tool_exception": 1} and not info.get("infra_failure")
    text, *_ = call(env, "hover", element_id=999)
    assert "no element [999] on the page" in text
    assert "Last action error: no element [999] on the page" in env.observation()
    text, *_ = call(env, "click", element_id=element(env, "button", "Go"))
    assert "Last action error: none" in text  # a successful action clears it


def test_a_bad_option_is_a_clear_error(env: PageEnv) -> None:
    env.reset(options={"task_id": "home"})
    size = element(env, "combobox", "Size")
    text, *_ = call(env, "select", element_id=size, option="Huge")
    assert text.startswith('Error: tool "select"') and "Huge" in text and "Small" in text and "Large" in text
    text, *_ = call(env, "fill", element_id=element(env, "button", "Go"), text="x")
    assert text.startswith('Error: tool "fill" raised BrowserActionError')


@pytest.mark.parametrize(
    "url",
    ["http://example.com/", "https://127.0.0.2/", "//example.com/x", "javascript:alert(1)", "file:///etc/passwd"],
)
def test_goto_outside_the_site_is_refused_without_navigating(env: PageEnv, url: str) -> None:
    env.reset(options={"task_id": "home"})
    before = env.browser.url
    text, reward, terminated, info = call(env, "goto", url=url)
    assert text.startswith('Error: tool "goto" raised ValueError: cannot open')
    assert "outside this site" in text or "only pages of this site" in text
    assert env.browser.url == before and env.browser.evaluate("() => 1 + 1") == 2
    assert (reward, terminated) == (0.0, False) and info["tool_errors"] == {"tool_exception": 1}
    _, reward, terminated, info = call(env, "answer", text="no")
    assert terminated and reward == 0.0


def test_answer_ends_the_episode_and_is_graded(env: PageEnv) -> None:
    env.reset(options={"task_id": "home"})
    text, reward, terminated, info = call(env, "answer", text="42")
    assert text == "Answer recorded." and terminated and reward == 1.0
    assert info["termination_reason"] == "answered" and info["answer"] == "42"


def test_each_reset_is_a_fresh_context(env: PageEnv) -> None:
    env.reset(options={"task_id": "home"})
    env.browser.evaluate("() => localStorage.setItem('k', 'v')")
    first = env.browser
    env.reset(options={"task_id": "home"})
    assert env.browser is first and env.browser.evaluate("() => localStorage.getItem('k')") is None


def test_the_observation_stays_within_its_budget(site: Path) -> None:
    with PageEnv(site, obs_max_chars=600) as small:
        obs, _ = small.reset(options={"task_id": "long"})
        text = small.observation()
        assert len(text) <= 600 and "Button number 0" in text and "Button number 299" not in text
        assert text.rstrip().endswith("more nodes; scroll, or act on what is listed)")
        assert obs[-1]["content"].endswith(text)
        assert len(small.elements()) == 300  # elements() reads the whole tree
    with pytest.raises(ValueError, match="obs_max_chars"):
        PageEnv(site, obs_max_chars=10)


def test_screenshots_are_pngs(site: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n"
    with PageEnv(site, screenshot=True) as shooting:
        _, info = shooting.reset(options={"task_id": "home"})
        assert info["screenshot"].startswith(png)
        _, _, _, info = call(shooting, "scroll", direction="down")
        assert info["screenshot"].startswith(png) and len(info["screenshot"]) > 1000
        _, info = shooting.reset(options={"task_id": "home", "screenshot": False})
        assert "screenshot" not in info
    with PageEnv(site) as plain:
        _, info = plain.reset(options={"task_id": "home", "screenshot": True})
        assert info["screenshot"].startswith(png)


def test_parse_elements_reads_the_line_grammar() -> None:
    tree = "\n".join(
        [
            'heading "Shop" level=1',
            '  [3] combobox "Size" value="M L" options=["S","M L"] disabled',
            '  [12] checkbox "a \\"b\\"" checked',
            '  text "plain"',
            "... (4 more nodes; scroll, or act on what is listed)",
        ]
    )
    assert parse_elements(tree) == [
        (3, "combobox", "Size", {"value": "M L", "options": ["S", "M L"], "disabled": True}),
        (12, "checkbox", 'a "b"', {"checked": True}),
    ]
