"""MiniWoB++ task kinds for ``agentgym/Web-v0`` and their oracles.

A kind is a MiniWoB++ page, ``html/miniwob/<kind>.html`` of the installed ``miniwob``
package, whose problem the page generates from the seed alone (``Math.seedrandom``) and
whose reward the page decides itself (``core.endEpisode``), with no time pressure.
:class:`~agentgym.envs.web.WebEnv` serves the page, starts its seeded problem and reads
``WOB_DONE_GLOBAL``/``WOB_RAW_REWARD_GLOBAL`` after every action; the episode ends when the
page's episode ends.

How to add a kind:

1. Check the page: its problem must depend on ``Math.random`` only (no ``Date``), its
   reward must not depend on time, and it must end its own episode (a Submit button, or
   the click/focus that is the task).
2. Write an oracle ``def _my_kind(env: BrowserEnv, query: str) -> Iterator[Action]``: a
   generator that reads the live page (``env.find(role, name)``, ``env.elements()``; for
   the oracle only, ``env.browser.evaluate(js)``) and yields tool calls built with
   :func:`~agentgym.parsing.format_tool_call` using the env's tools (``click``, ``fill``,
   ``select``, ``press``, ``scroll``, ``hover``, ...). Each ``next()`` runs after the
   previous turn was stepped, so a later turn sees the page the earlier ones produced. Do
   not yield ``submit``: the env ends the episode itself when the page's task ends.
3. Add the kind to :data:`ORACLES` (:data:`KINDS` is its keys); ``Web-v0`` builds tasks
   for every kind in ``KINDS``. Validate it: ``agentgym tasks validate agentgym/Web-v0``
   (the oracle must score 1 and the noop 0 on every seed), and add it to the kinds of
   ``tests/envs/test_miniwob_kinds.py``.

What the oracles read. Most read only the query and the elements the agent sees. Where the
tree does not carry what a kind needs, the oracle reads the page with ``evaluate``, always
something the page shows the agent too (never the page's hidden answer):

- the visible text of a problem (``simple-arithmetic``, ``simple-algebra``, ``find-word``,
  ``odd-or-even``, ``read-table``/``read-table-2``'s table, ``guess-number``'s feedback),
  which the agent reads as text nodes of the tree: parsing the tree's text lines would tie
  the oracles to the exact text grammar;
- which text sits beside an unlabelled field (``read-table-2``, ``multi-layouts``,
  ``multi-orderings``: the page's inputs have no ``<label for>``, so their tree names are
  empty and the agent pairs them with the neighbouring text);
- a widget's kind (``click-widget``: a text input and a textarea are both ``textbox``);
- whether a tree item is a folder (``navigate-tree``);
- the autocomplete's item list (``use-autocomplete``: the agent would read the suggestions
  the widget pops up; the oracle takes the same list, ``ui_utils.COUNTRIES``, at once).

Pages left out, and why (checked against their scripts):

- time pressure or timing-dependent: ``button-delay``, ``chase-circle``, ``moving-items``,
  ``simon-says``, ``stock-market``, ``hot-cold``, ``*-nodelay`` twins are kept out as
  duplicates of their delayed kinds (``click-collapsible-nodelay``...);
- drawing, dragging or canvas/SVG geometry the tree cannot show: ``drag-*``, ``draw-*``,
  ``bisect-angle``, ``circle-center``, ``click-pie``, ``click-shape``, ``click-color``,
  ``click-shades``, ``count-shape``, ``count-sides``, ``find-midpoint``, ``grid-coordinate``,
  ``identify-shape``, ``right-angle``, ``use-colorwheel*``, ``use-slider*``, ``visual-addition``,
  ``ascending-numbers``, ``highlight-text*``, ``resize-textarea``;
- a multi-select list (``click-scroll-list``: ``select`` picks one option), scrolling inside
  an element (``sign-agreement``, ``scroll-text*``: ``scroll`` moves the page), clipboard
  (``copy-paste*``), natural-language paraphrases the oracle cannot decode reliably
  (``click-checkboxes-soft``, ``email-inbox-*-nl*``);
- ``navigate-tree``: its items are ``<li>`` elements with a click handler and a pointer cursor,
  which the accessibility tree lists without an id, so no agent can click them (the oracle,
  ``_navigate_tree``, is ready for when the tree gives such items ids);
- not yet written (no reason they could not be): ``email-inbox*``, ``social-media*``,
  ``book-flight``, ``choose-date*``, ``click-menu*``, ``form-sequence*``, ``phone-book``,
  ``order-food``, ``buy-ticket``, ``daily-calendar``, ``terminal``, ``text-editor``,
  ``text-transform``, ``tic-tac-toe``, ``number-checkboxes``, ``generate-number``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from agentgym.messages import Action
from agentgym.parsing import format_tool_call

if TYPE_CHECKING:
    from agentgym.envs.browser import BrowserEnv

Oracle = Callable[["BrowserEnv", str], "list[Action] | Iterator[Action]"]
"""``oracle(env, query)``: the turns that solve the page showing ``query`` (read lazily when an iterator)."""

TEXT_ROLES = ("textbox", "searchbox", "spinbutton", "combobox")
"""Roles of the fields text is typed into (a ``<select>`` is a combobox too, but has an ``options`` attr)."""


# ----- helpers ---------------------------------------------------------------------------


def quoted(query: str) -> str:
    """The text in double quotes in a MiniWoB query (``Click on the "OK" button.`` -> ``OK``)."""
    found = re.search(r'"(.*)"', query, re.S)
    if not found:
        raise ValueError(f"no quoted target in the query {query!r}")
    return found.group(1)


def parse_query(query: str, pattern: str) -> re.Match[str]:
    """``re.fullmatch(pattern, query)``, or a ValueError naming the query the page showed."""
    found = re.fullmatch(pattern, query, re.S)
    if not found:
        raise ValueError(f"unexpected query {query!r} (expected {pattern!r})")
    return found


def by_name(env: BrowserEnv, name: str, roles: tuple[str, ...] = ()) -> int:
    """The id of the first element named ``name`` (of one of ``roles`` when given)."""
    for element_id, role, element_name, _ in env.elements():
        if element_name == name and (not roles or role in roles):
            return element_id
    raise ValueError(f"no element named {name!r} on the page")


def fields(env: BrowserEnv) -> list[int]:
    """The ids of the page's text fields (textboxes, spin buttons; not ``<select>`` lists), in page order."""
    return [i for i, role, _, attrs in env.elements() if role in TEXT_ROLES and "options" not in attrs]


def click(element_id: int) -> Action:
    """A ``click`` turn."""
    return format_tool_call("click", {"element_id": element_id})


def fill(element_id: int, text: str) -> Action:
    """A ``fill`` turn."""
    return format_tool_call("fill", {"element_id": element_id, "text": text})


def submit(env: BrowserEnv, name: str = "Submit") -> Action:
    """Click the button named ``name``."""
    return click(env.find("button", name))


def page_text(env: BrowserEnv, selector: str) -> str:
    """The visible text of the page's element ``selector`` (text the agent reads in the tree)."""
    return str(env.browser.evaluate("(s) => document.querySelector(s).innerText", selector))


def _element_js(env: BrowserEnv, element_id: int, body: str) -> Any:
    """``body`` evaluated with ``e`` bound to the element the agent knows as ``[element_id]``."""
    return env.browser.evaluate(
        f"(s) => {{ const e = document.querySelector(s); return {body}; }}", env.browser.ref(element_id)
    )


# ----- oracles: clicks ------------------------------------------------------------------


def _click_button(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield click(env.find("button", quoted(query)))


def _click_link(env: BrowserEnv, query: str) -> Iterator[Action]:
    # The page's links are <span class="alink"> with script handlers: found by name, whatever role they get.
    yield click(by_name(env, quoted(query)))


_UNCOVERED_JS = """(s) => {
  const e = document.querySelector(s), r = e.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return hit !== null && e.contains(hit);
}"""


def activate(env: BrowserEnv, element_id: int) -> Iterator[Action]:
    """Click ``element_id``; when another element covers its centre, Tab to it and press Enter.

    (click-test-2 and click-button-sequence place their buttons at random, sometimes one over
    the other: a click on the covered one would land on the other.)
    """
    ref = env.browser.ref(element_id)
    if env.browser.evaluate(_UNCOVERED_JS, ref):
        yield click(element_id)
        return
    for _ in range(20):
        if env.browser.evaluate("(s) => document.activeElement === document.querySelector(s)", ref):
            yield format_tool_call("press", {"key": "Enter"})
            return
        yield format_tool_call("press", {"key": "Tab"})
    raise ValueError(f"could not reach [{element_id}] with Tab")


def _click_buttons(*names: str) -> Oracle:
    def oracle(env: BrowserEnv, query: str) -> Iterator[Action]:
        for name in names:
            yield from activate(env, env.find("button", name))

    return oracle


def _click_dialog(env: BrowserEnv, query: str) -> Iterator[Action]:
    # jQuery UI's title-bar "x" is a button named "Close".
    label = quoted(query) if '"' in query else "x"
    yield click(env.find("button", "Close" if label == "x" else label))


def _click_tab(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield click(env.find("tab", parse_query(query, r"Click on (Tab #\d)\.").group(1)))


def _open_sections_to_find_link(env: BrowserEnv, query: str) -> Iterator[Action]:
    """click-tab-2 and click-collapsible-2: open each tab/section in turn until the link shows."""
    target = quoted(query)
    for section in [i for i, role, _, _ in env.elements() if role == "tab"]:
        links = [i for i, role, name, _ in env.elements() if role != "tab" and name == target]
        if links:
            yield click(links[0])
            return
        yield click(section)
    yield click(by_name(env, target))


def _click_collapsible(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield click(env.find("tab", "Section #", contains=True))
    yield submit(env)


def _click_widget(env: BrowserEnv, query: str) -> Iterator[Action]:
    want = quoted(query)
    for element_id, role, _, _ in env.elements():
        widget = role in ("radio", "checkbox", "button", "textbox")
        if widget and _element_js(env, element_id, "e && e.getAttribute('data-type')") == want:
            yield click(element_id)
            return
    raise ValueError(f"no {want!r} widget on the page")


def _focus_text(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield click(env.find("textbox"))


def _focus_text_2(env: BrowserEnv, query: str) -> Iterator[Action]:
    nth = parse_query(query, r"Focus into the (\d)(?:st|nd|rd|th) input textbox\.").group(1)
    yield click(fields(env)[int(nth) - 1])


def _select_and_submit(role: str) -> Oracle:
    def oracle(env: BrowserEnv, query: str) -> Iterator[Action]:
        names = parse_query(query, r"Select (.*) and click Submit\.").group(1)
        for name in [] if names == "nothing" else names.split(", "):
            yield click(env.find(role, name))
        yield submit(env)

    return oracle


def _odd_or_even(env: BrowserEnv, query: str) -> Iterator[Action]:
    numbers = env.browser.evaluate("() => [...document.querySelectorAll('.display-number')].map(e => e.innerText)")
    for row, number in enumerate(numbers):
        yield click(env.find("button", "Odd" if int(number) % 2 else "Even", nth=row))
    yield submit(env)


def _navigate_tree(env: BrowserEnv, query: str) -> Iterator[Action]:
    """Open folders (collapsed at first) until an item with the target's name shows, then click it."""
    target = quoted(query)
    opened: set[int] = set()
    while True:
        elements = env.elements()
        hits = [i for i, _, name, _ in elements if name == target]
        if hits:
            yield click(hits[0])
            return
        folders = [
            i for i, _, _, _ in elements if i not in opened and _element_js(env, i, "e.classList.contains('folder')")
        ]
        if not folders:
            raise ValueError(f"no item named {target!r} in the tree")
        opened.add(folders[0])
        yield click(folders[0])


def _search_engine(env: BrowserEnv, query: str) -> Iterator[Action]:
    m = parse_query(
        query,
        r'Use the textbox to enter "(.*)" and press "Search", then find and click the (\d+)(?:st|nd|rd|th) '
        r"search result\.",
    )
    index = int(m.group(2)) - 1
    yield fill(fields(env)[0], m.group(1))
    yield submit(env, "Search")
    if index >= 3:  # three results a page; the pager's links are named by page number
        yield click(env.find("link", str(index // 3 + 1)))
    yield click(env.find("link", nth=index % 3))  # the results come before the pager


# ----- oracles: typing ------------------------------------------------------------------


def _enter_text(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield fill(fields(env)[0], quoted(query))
    yield submit(env)


def _enter_text_2(env: BrowserEnv, query: str) -> Iterator[Action]:
    m = parse_query(query, r'Type "(.*)" in all (upper|lower) case letters in the text input and press Submit\.')
    yield fill(fields(env)[0], m.group(1).upper() if m.group(2) == "upper" else m.group(1).lower())
    yield submit(env)


def _enter_password(env: BrowserEnv, query: str) -> Iterator[Action]:
    password = quoted(query)
    for field in fields(env)[:2]:
        yield fill(field, password)
    yield submit(env)


def _login_user(button: str) -> Oracle:
    def oracle(env: BrowserEnv, query: str) -> Iterator[Action]:
        # login-user-popup: focusing a field may open a popup that disables the form; its
        # Cancel closes it for good (its OK ends the episode with -1), then the field is filled again.
        user, password = re.findall(r'"([^"]*)"', query)
        for field, text in zip(fields(env)[:2], (user, password), strict=True):
            yield fill(field, text)
            if any(role == "button" and name == "Cancel" for _, role, name, _ in env.elements()):
                yield click(env.find("button", "Cancel"))
                yield fill(field, text)
        yield submit(env, button)

    return oracle


def _table(env: BrowserEnv) -> dict[str, str]:
    cells = env.browser.evaluate("() => [...document.querySelectorAll('#tab td')].map(td => td.innerText)")
    return dict(zip(cells[::2], cells[1::2], strict=True))


def _read_table(env: BrowserEnv, query: str) -> Iterator[Action]:
    key = parse_query(query, r"Enter the value of (.*) into the text field and press Submit\.").group(1)
    yield fill(fields(env)[0], _table(env)[key])
    yield submit(env)


def _read_table_2(env: BrowserEnv, query: str) -> Iterator[Action]:
    table = _table(env)
    for field in fields(env)[:2]:
        label = _element_js(env, field, "e.previousElementSibling.innerText")  # "<key>:"
        yield fill(field, table[label.strip().rstrip(":")])
    yield submit(env)


def _multi_layouts(env: BrowserEnv, query: str) -> Iterator[Action]:
    m = parse_query(query, r"Search for (.*) movies directed by (.*) from year (\d+)\.")
    values = {"genre": m.group(1), "director": m.group(2), "year": m.group(3), "date": m.group(3)}
    for field in fields(env):
        label = _element_js(env, field, "e.closest('p, .row, tr, .field, .ui-entry').innerText").lower()
        yield fill(field, next(v for k, v in values.items() if k in label))
    # The submit control is a button, or a <div> with a click handler, named Submit, Search or Go!.
    yield click(next(i for i, _, name, _ in env.elements() if name in ("Submit", "Search", "Go!")))


def _use_autocomplete(env: BrowserEnv, query: str) -> Iterator[Action]:
    m = parse_query(query, r'Enter an item that starts with "(.*?)"(?: and ends with "(.*)")?\.')
    start, end = m.group(1), m.group(2) or ""
    items = env.browser.evaluate("() => ui_utils.COUNTRIES")
    yield fill(fields(env)[0], next(i for i in items if i.startswith(start) and i.endswith(end)))
    yield submit(env)


def _choose_list(env: BrowserEnv, query: str) -> Iterator[Action]:
    item = parse_query(query, r"Select (.*) from the list and click Submit\.").group(1)
    yield format_tool_call("select", {"element_id": env.find("combobox"), "option": item})
    yield submit(env)


def _arithmetic(env: BrowserEnv, query: str) -> Iterator[Action]:
    a, op, b = page_text(env, "#math-problem").split()[:3]  # "3 x 4 ="
    x, y = int(a), int(b)
    yield fill(fields(env)[0], str(x + y if op == "+" else x - y if op == "-" else x * y))
    yield submit(env)


def _algebra(env: BrowserEnv, query: str) -> Iterator[Action]:
    left, right = page_text(env, "#math-problem").split("=")  # "x - 3 = 41" or "3 - x = 41"
    a, op, b = left.split()
    total = int(right)
    if a == "x":
        answer = total - int(b) if op == "+" else total + int(b)
    else:
        answer = total - int(a) if op == "+" else int(a) - total
    yield fill(fields(env)[0], str(answer))
    yield submit(env)


def _enter_time(env: BrowserEnv, query: str) -> Iterator[Action]:
    m = parse_query(query, r"Enter (\d+):(\d\d)\s*([AP]M)? as the time and press submit\.")
    hour = int(m.group(1))
    if m.group(3):  # 12-hour clock: 12:05 AM is 00:05
        hour = hour % 12 + (12 if m.group(3) == "PM" else 0)
    yield fill(fields(env)[0], f"{hour:02d}:{m.group(2)}")
    yield submit(env)


def _enter_date(env: BrowserEnv, query: str) -> Iterator[Action]:
    month, day, year = parse_query(query, r"Enter (\d\d)/(\d\d)/(\d{4}) as the date and hit submit\.").groups()
    yield fill(fields(env)[0], f"{year}-{month}-{day}")  # a date input's value is ISO
    yield submit(env)


def _use_spinner(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield fill(fields(env)[0], parse_query(query, r"Select (-?\d+) with the spinner and hit Submit\.").group(1))
    yield submit(env)


def _guess_number(env: BrowserEnv, query: str) -> Iterator[Action]:
    """Bisect 0-9 on the page's feedback ("higher than 4" / "lower than 4"); the right guess ends the episode."""
    low, high = 0, 9
    while low <= high:
        guess = (low + high) // 2
        yield fill(fields(env)[0], str(guess))
        yield submit(env)
        feedback = page_text(env, "#feedback")
        if "higher" in feedback:
            low = guess + 1
        elif "lower" in feedback:
            high = guess - 1
        else:
            return


def _find_word(env: BrowserEnv, query: str) -> Iterator[Action]:
    nth = int(parse_query(query, r"Find the (\d+)(?:st|nd|rd|th) word in the paragraph, .*").group(1))
    word = page_text(env, "#area p").split()[nth - 1]
    yield fill(fields(env)[0], re.sub(r"[^a-zA-Z]", "", word))
    yield submit(env)


ORACLES: dict[str, Oracle] = {
    # today's six
    "click-button": _click_button,
    "click-link": _click_link,
    "click-option": _select_and_submit("radio"),
    "click-checkboxes": _select_and_submit("checkbox"),
    "enter-text": _enter_text,
    "focus-text": _focus_text,
    # clicking
    "click-button-sequence": _click_buttons("ONE", "TWO"),
    "click-checkboxes-large": _select_and_submit("checkbox"),
    "click-checkboxes-transfer": _select_and_submit("checkbox"),
    "click-collapsible": _click_collapsible,
    "click-collapsible-2": _open_sections_to_find_link,
    "click-dialog": _click_dialog,
    "click-dialog-2": _click_dialog,
    "click-tab": _click_tab,
    "click-tab-2": _open_sections_to_find_link,
    "click-test": _click_buttons("Click Me!"),
    "click-test-2": _click_buttons("ONE"),
    "click-widget": _click_widget,
    "focus-text-2": _focus_text_2,
    "odd-or-even": _odd_or_even,
    "unicode-test": _click_button,
    # forms
    "choose-list": _choose_list,
    "enter-date": _enter_date,
    "enter-password": _enter_password,
    "enter-text-2": _enter_text_2,
    "enter-text-dynamic": _enter_text,
    "enter-time": _enter_time,
    "login-user": _login_user("Login"),
    "login-user-popup": _login_user("OK"),
    "multi-layouts": _multi_layouts,
    "multi-orderings": _multi_layouts,
    "use-autocomplete": _use_autocomplete,
    "use-spinner": _use_spinner,
    # reading the page
    "find-word": _find_word,
    "guess-number": _guess_number,
    "read-table": _read_table,
    "read-table-2": _read_table_2,
    "search-engine": _search_engine,
    "simple-algebra": _algebra,
    "simple-arithmetic": _arithmetic,
}
"""The oracle of every kind."""

KINDS: tuple[str, ...] = tuple(ORACLES)
"""MiniWoB++ kinds whose goal and success are decided by the page alone, given the seed."""
