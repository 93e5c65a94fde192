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
3. Add the kind to :data:`KINDS` and its oracle to :data:`ORACLES`; ``Web-v0`` builds tasks
   for every kind in ``KINDS``. Validate it: ``agentgym tasks validate agentgym/Web-v0``
   (the oracle must score 1 and the noop 0 on every seed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from agentgym.messages import Action
from agentgym.parsing import format_tool_call

if TYPE_CHECKING:
    from agentgym.envs.browser import BrowserEnv

Oracle = Callable[["BrowserEnv", str], "list[Action] | Iterator[Action]"]
"""``oracle(env, query)``: the turns that solve the page showing ``query`` (read lazily when an iterator)."""


def quoted(query: str) -> str:
    """The text in double quotes in a MiniWoB query (``Click on the "OK" button.`` -> ``OK``)."""
    found = re.search(r'"(.*)"', query, re.S)
    if not found:
        raise ValueError(f"no quoted target in the query {query!r}")
    return found.group(1)


def by_name(env: BrowserEnv, name: str, roles: tuple[str, ...] = ()) -> int:
    """The id of the first element named ``name`` (of one of ``roles`` when given)."""
    for element_id, role, element_name, _ in env.elements():
        if element_name == name and (not roles or role in roles):
            return element_id
    raise ValueError(f"no element named {name!r} on the page")


def click(element_id: int) -> Action:
    """A ``click`` turn."""
    return format_tool_call("click", {"element_id": element_id})


def _click_button(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield click(env.find("button", quoted(query)))


def _click_link(env: BrowserEnv, query: str) -> Iterator[Action]:
    # The page's links are <span class="alink"> with script handlers: found by name, whatever role they get.
    yield click(by_name(env, quoted(query)))


def _focus_text(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield click(env.find("textbox"))


def _enter_text(env: BrowserEnv, query: str) -> Iterator[Action]:
    yield format_tool_call("fill", {"element_id": env.find("textbox"), "text": quoted(query)})
    yield click(env.find("button", "Submit"))


def _select_and_submit(role: str) -> Oracle:
    def oracle(env: BrowserEnv, query: str) -> Iterator[Action]:
        names = re.fullmatch(r"Select (.*) and click Submit\.", query, re.S)
        if not names:
            raise ValueError(f"unexpected query {query!r}")
        wanted = [] if names.group(1) == "nothing" else names.group(1).split(", ")
        for name in wanted:
            yield click(env.find(role, name))
        yield click(env.find("button", "Submit"))

    return oracle


ORACLES: dict[str, Oracle] = {
    "click-button": _click_button,
    "click-link": _click_link,
    "click-option": _select_and_submit("radio"),
    "click-checkboxes": _select_and_submit("checkbox"),
    "enter-text": _enter_text,
    "focus-text": _focus_text,
}
"""The oracle of every kind."""

KINDS: tuple[str, ...] = tuple(ORACLES)
"""MiniWoB++ kinds whose goal and success are decided by the page alone, given the seed."""
