"""ChromiumBrowser's accessibility tree, element actions and tabs, against the real Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sandbox_browser import _require_browser

from agentgym.sandboxes.browser import BrowserActionError, ChromiumBrowser

pytestmark = pytest.mark.browser

TREE = """<!doctype html><html><head><title>Tree page</title></head><body>
<h1>Shop</h1>
<nav><a href="/tree.html#top">Home</a> <a href="second.html" target="_blank">Open second</a></nav>
<p>Welcome to the <b>shop</b>.</p>
<form onsubmit="return false">
  <label for="q">Search</label> <input id="q" value="socks">
  <label>Email <input type="email" placeholder="you@example.com"></label>
  <input aria-label="Zip code" placeholder="zip">
  <label><input type="checkbox" checked> Remember me</label>
  <input type="radio" name="r" id="r1"><label for="r1">Red</label>
  <label>Color <select id="color"><option value="r">Red</option>
    <option value="g" selected>Green</option></select></label>
  <button type="submit" disabled>Buy</button>
  <input type="submit" value="Send">
</form>
<ul><li>First item</li><li><a href="/x">Item link</a> extra</li></ul>
<table><tr><th>Name</th><th>Price</th></tr><tr><td>Socks</td><td>$3</td></tr></table>
<h3>Details <a href="http://example.com/far">far away</a></h3>
<div style="display:none"><button>Hidden1</button></div>
<div style="visibility:hidden"><button>Hidden2</button></div>
<div aria-hidden="true"><button>Hidden3</button></div>
<button style="width:0;height:0;padding:0;border:0;overflow:hidden"></button>
<span onclick="this.textContent='clicked'" id="span">Click span</span>
<div role="tab" aria-selected="true" aria-expanded="true">Tab A</div>
<p id="hovered"></p>
<button id="later" onmouseover="document.getElementById('hovered').textContent = 'hovered'">Hover me</button>
<div id="box" style="height:50px;overflow:auto"><div style="height:500px">tall</div></div>
<div style="height:3000px"></div>
<a href="second.html" id="bottom">Bottom link</a>
</body></html>"""

EXPECTED = """heading "Shop" level=1
navigation ""
  [1] link "Home" url="/tree.html#top"
  [2] link "Open second" url="/second.html"
text "Welcome to the shop."
[3] textbox "Search" value="socks"
[4] textbox "Email" value=""
[5] textbox "Zip code" value=""
[6] checkbox "Remember me" checked
[7] radio "Red"
[8] combobox "Color" options=["Red","Green"] value="Green"
[9] button "Buy" disabled
[10] button "Send"
list ""
  listitem "First item"
  listitem ""
    [11] link "Item link" url="/x"
    text "extra"
table ""
  row ""
    columnheader "Name"
    columnheader "Price"
  row ""
    cell "Socks"
    cell "$3"
heading "Details far away" level=3
  [12] link "far away" url="http://example.com/far"
[13] clickable "Click span"
[14] tab "Tab A" selected expanded
[15] button "Hover me"
text "tall"
[16] link "Bottom link" url="/second.html\""""

LINE = re.compile(
    r'^( *)(?:\[(\d+)\] )?([a-z]+) ("(?:[^"\\]|\\.)*")'  # indent, [id], role, "name"
    r'((?: [a-z]+=(?:"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\d+))*)((?: [a-z]+)*)$'  # attr=json..., flags
)


GONE = "no element [1] on the page: it was removed or the page changed; act on the ids of the latest observation"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("a11y")
    (root / "tree.html").write_text(TREE)
    (root / "second.html").write_text(
        "<html><head><title>Second</title></head><body><p>second page</p>"
        "<button onclick=\"window.open('tree.html')\">Open again</button>"
        "<button onclick='window.close()'>Close me</button></body></html>"
    )
    return root


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[ChromiumBrowser]:
    _require_browser()
    with ChromiumBrowser(site, timeout=5) as box:
        yield box


@pytest.fixture
def page(browser: ChromiumBrowser) -> ChromiumBrowser:
    browser.new_episode()
    browser.goto("tree.html")
    return browser


def test_tree_lists_roles_names_values_and_leaves_out_hidden_nodes(page: ChromiumBrowser) -> None:
    tree = page.a11y_tree()
    assert tree == EXPECTED
    assert "Hidden" not in tree and page.title == "Tree page"
    for line in tree.splitlines():  # the grammar of the contract, names and attributes as JSON
        m = LINE.match(line)
        assert m, line
        assert isinstance(json.loads(m.group(4)), str)
        assert len(m.group(1)) % 2 == 0


def test_ids_are_stable_across_calls_and_dom_changes(page: ChromiumBrowser) -> None:
    first = page.a11y_tree()
    page.evaluate(
        """() => {
        const b = document.createElement('button'); b.textContent = 'New one';
        document.body.prepend(b);
        document.querySelector('nav a').remove();
        const clone = document.getElementById('later').cloneNode(true); clone.textContent = 'Clone';
        document.body.append(clone);
    }"""
    )
    second = page.a11y_tree()
    assert '[1] link "Home"' in first and '[1] link "Home"' not in second
    assert second.splitlines()[0] == '[17] button "New one"'  # new elements get new ids
    assert '[18] button "Clone"' in second and '[15] button "Hover me"' in second  # a clone is renumbered
    for line in first.splitlines()[3:]:
        assert line in second
    assert page.a11y_tree() == second
    assert not page.exists(1) and page.exists(2) and page.exists("17")
    with pytest.raises(
        BrowserActionError,
        match=re.escape(
            "no element [1] on the page: it was removed or the page changed; act on the ids of the latest observation"
        ),
    ):
        page.click(page.ref(1))
    for act in (
        lambda: page.fill(page.ref(1), "x"),
        lambda: page.hover(page.ref(1)),
        lambda: page.select_option(page.ref(1), "Red"),
        lambda: page.press("Enter", page.ref(1)),
        lambda: page.scroll(10, page.ref(1)),
    ):
        with pytest.raises(BrowserActionError, match=r"no element \[1\] on the page"):
            act()


def test_actions(page: ChromiumBrowser) -> None:
    page.a11y_tree()
    page.fill(page.ref(3), "wool socks")
    page.click(page.ref(6))
    page.click(page.ref(7))
    page.select_option(page.ref(8), "Red")
    page.click(page.ref(13))
    tree = page.a11y_tree()
    assert '[3] textbox "Search" value="wool socks"' in tree
    assert '[6] checkbox "Remember me"\n' in tree and '[7] radio "Red" checked' in tree
    assert '[8] combobox "Color" options=["Red","Green"] value="Red"' in tree
    assert '[13] clickable "clicked"' in tree
    page.select_option(page.ref(8), "g")  # by value when no label matches
    assert page.evaluate("() => document.getElementById('color').value") == "g"
    with pytest.raises(
        BrowserActionError,
        match=r"no option 'Blue' in the drop-down list; its options are \['Red', 'Green'\]",
    ):
        page.select_option(page.ref(8), "Blue")
    with pytest.raises(BrowserActionError, match="not a drop-down list"):
        page.select_option(page.ref(3), "Red")
    page.hover(page.ref(15))
    assert page.text("#hovered") == "hovered"
    page.scroll(400)
    page.scroll(30, "#box")
    assert page.evaluate("() => [scrollY, document.getElementById('box').scrollTop]") == [400, 30]
    page.scroll(-100)
    assert page.evaluate("() => scrollY") == 300
    png = page.screenshot_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(page.screenshot_png(full_page=True)) > len(png) // 2


def test_go_back_and_same_origin_fence(page: ChromiumBrowser) -> None:
    page.a11y_tree()
    page.click(page.ref(1))  # a #fragment: same document
    page.goto("second.html")
    page.go_back()
    assert page.url.endswith("/tree.html#top")
    page.go_back()
    assert page.url.endswith("/tree.html")
    page.go_back()  # to about:blank, the episode's first page
    with pytest.raises(BrowserActionError, match="no previous page"):
        page.go_back()
    for url in ("javascript:alert(1)", "file:///etc/passwd", "http://example.com/", "http://127.0.0.1:1/"):
        with pytest.raises(BrowserActionError, match=r"only http|blocked"):
            page.goto(url)


def test_new_tabs_are_tracked_and_fenced(page: ChromiumBrowser) -> None:
    page.a11y_tree()
    page.click(page.ref(2))  # target=_blank
    tabs = page.tabs()
    assert [(t["index"], t["title"], t["active"]) for t in tabs] == [(0, "Tree page", False), (1, "Second", True)]
    assert tabs[1]["url"].endswith("/second.html") and page.title == "Second"
    tree = page.a11y_tree()
    assert '[1] button "Open again"' in tree  # ids are per document
    page.click(page.ref(1))  # window.open
    assert [t["active"] for t in page.tabs()] == [False, False, True] and page.title == "Tree page"
    page.switch_tab(0)
    assert page.url.endswith("/tree.html") and page.tabs()[0]["active"]
    with pytest.raises(BrowserActionError, match=r"no tab 3: the open tabs are numbered 0 to 2"):
        page.switch_tab(3)
    page.switch_tab(1)
    page.a11y_tree()
    page.click(page.ref(2))  # window.close(): the last tab becomes the active one
    assert [t["title"] for t in page.tabs()] == ["Tree page", "Tree page"] and page.tabs()[1]["active"]
    # A tab the page opens is fenced like the first one.
    page.evaluate("() => { window.open('http://example.com/popup'); }")
    page.evaluate("() => new Promise(r => setTimeout(r, 300))")
    assert any("example.com/popup" in u for u in page.blocked)
    assert all("example.com" not in t["url"] for t in page.tabs())
    page.new_episode()
    assert len(page.tabs()) == 1


def test_truncation(page: ChromiumBrowser) -> None:
    page.evaluate(
        "() => { for (let i = 0; i < 300; i++) { const b = document.createElement('button');"
        " b.textContent = 'Button number ' + i; document.body.append(b); } }"
    )
    full = page.a11y_tree(max_chars=100_000)
    short = page.a11y_tree(max_chars=500)
    assert len(short) <= 500
    *kept, last = short.splitlines()
    m = re.fullmatch(r"\.\.\. \((\d+) more nodes; scroll, or act on what is listed\)", last)
    assert m and int(m.group(1)) == len(full.splitlines()) - len(kept)
    assert full.startswith("\n".join(kept))
    assert page.a11y_tree(root="#box") == 'text "tall"'
    with pytest.raises(BrowserActionError, match="no element matches '#nothing'"):
        page.a11y_tree(root="#nothing")
