"""The browser protocol: what a web environment needs from a browser backend.

A :class:`Browser` is not a :class:`~agentgym.sandboxes.Sandbox`: it runs no commands and
keeps no files. It loads pages, lists their elements, acts on them and reads their state.
Environments depend on this protocol only; :class:`~agentgym.sandboxes.browser.ChromiumBrowser`
is the backend.

Two kinds of failure, told apart by type:

* :class:`BrowserActionError` (:class:`BrowserTimeout` for timeouts): the page refused an
  action (no such element, a selector that never appears, a blocked URL). It is the
  caller's mistake; tools let it become a message for the model.
* :class:`~agentgym.errors.SandboxError` (:class:`BrowserCrashed` when the browser died or
  hung): the machinery failed. Environments end the episode as an infrastructure failure.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Literal, TypeVar

from agentgym.errors import AgentGymError, SandboxError

__all__ = ["Browser", "BrowserActionError", "BrowserCrashed", "BrowserTimeout", "ElementState"]

_B = TypeVar("_B", bound="Browser")

ElementState = Literal["attached", "detached", "visible", "hidden"]
"""States :meth:`Browser.wait_for` can wait for."""


class BrowserActionError(AgentGymError, RuntimeError):
    """The page refused an action (no such element, blocked URL, script error); the model's mistake.

    Not an :class:`~agentgym.errors.InfrastructureError`: a tool that lets it escape shows the
    model its message instead of ending the episode.
    """


class BrowserTimeout(BrowserActionError):
    """An action did not complete within its timeout (e.g. a selector never appeared)."""


class BrowserCrashed(SandboxError):
    """The browser itself failed: it crashed, disconnected, or a call hung past its hard deadline.

    After a crash, :meth:`Browser.new_episode` starts a new browser when the backend can;
    when it cannot (Chromium hung), it raises this again and the caller needs a new one.
    """


class Browser(abc.ABC):
    """A browser for one agent at a time: episodes, pages, elements, actions.

    Every call takes an optional ``timeout`` in seconds (the backend's default when None)
    and raises :class:`BrowserActionError` for the caller's mistakes and
    :class:`~agentgym.errors.SandboxError` for failures of the browser. Use it as a context
    manager, or call :meth:`close` (idempotent).
    """

    # ----- episodes ---------------------------------------------------------------

    @abc.abstractmethod
    def new_episode(self, init_script: str | None = None) -> None:
        """Start an episode: fresh state (no cookies, storage, cache) and one blank page.

        Args:
            init_script: JavaScript run in every document before the page's own scripts
                (e.g. to seed ``Math.random``).
        """

    # ----- pages ------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The current page's URL."""

    @property
    @abc.abstractmethod
    def title(self) -> str:
        """The current page's title."""

    @abc.abstractmethod
    def goto(self, url_or_path: str, *, timeout: float | None = None) -> None:
        """Open a URL, or a path relative to the backend's served files; waits for ``load``.

        Raises:
            BrowserActionError: ``javascript:``, ``file:`` and URLs of other origins are refused.
        """

    @abc.abstractmethod
    def go_back(self, *, timeout: float | None = None) -> None:
        """Go back one page in the current tab's history.

        Raises:
            BrowserActionError: there is no previous page.
        """

    @abc.abstractmethod
    def tabs(self) -> list[dict[str, Any]]:
        """The episode's open tabs in open order: ``[{"index": 0, "url": ..., "title": ..., "active": True}]``.

        Pages the page itself opens (``target=_blank``, ``window.open``) become tabs, fenced
        like the first, and the newest becomes the active one.
        """

    @abc.abstractmethod
    def switch_tab(self, index: int) -> None:
        """Make tab ``index`` (as listed by :meth:`tabs`) the active one.

        Raises:
            BrowserActionError: there is no tab ``index``.
        """

    @abc.abstractmethod
    def text(self, selector: str = "body", *, timeout: float | None = None) -> str:
        """The visible text of the element ``selector`` matches (default: the whole page)."""

    @abc.abstractmethod
    def snapshot(
        self,
        selector: str = "body",
        *,
        include_text: bool = False,
        max_items: int = 200,
        clickable: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """The visible interactive elements under ``selector``, one a line: ``[3] button "Submit"``.

        Args:
            selector: CSS selector of the part of the page to list.
            include_text: also list visible text, as ``text "..."`` lines.
            max_items: most lines listed; a final line says when more were left out.
            clickable: CSS selector of further elements to list as ``clickable`` (for
                pages whose click targets are plain elements with script handlers).
            timeout: seconds; the backend's default when None.

        Returns:
            The lines; the number in brackets is an id that stays with the element for
            the life of the page, turned into a selector by :meth:`ref`.
        """

    @abc.abstractmethod
    def a11y_tree(self, *, root: str = "body", max_chars: int = 8000, timeout: float | None = None) -> str:
        """The page's accessibility tree as text, one node a line, two spaces of indent per depth.

        Line grammar (tests and oracles parse it)::

            [<id>] <role> "<name>"[ <attr>=<json>...][ <flag>...]    interactive nodes
            <role> "<name>"[ <attr>=<json>...][ <flag>...]           other nodes

        Roles are ARIA roles (``button``, ``link``, ``textbox``, ``checkbox``, ``radio``,
        ``combobox``, ``listbox``, ``option``, ``tab``, ``menuitem``, ``heading``, ``text``,
        ``img``, ``cell``, ``row``, ``table``, ``list``, ``listitem``, ``dialog``, ...; ``clickable``
        for plain elements with a click handler or a pointer cursor); names are JSON strings.
        Attributes: ``url`` (links: the path for the page's own origin), ``level`` (headings),
        ``options`` (drop-down lists: the option labels), ``value`` (text fields, drop-down lists,
        sliders); flags: ``checked``, ``selected``, ``expanded``, ``disabled``. Plain text is
        listed as ``text "..."`` lines.

        Ids are kept in the element (a data attribute) and stable for the life of the
        document: later calls list the same element with the same id, new elements get new
        ids; :meth:`ref` turns an id into a selector. Hidden elements (``display: none``,
        ``visibility: hidden``, ``aria-hidden``, zero size) are left out. Past ``max_chars``
        the output ends with ``... (<n> more nodes; scroll, or act on what is listed)``.

        Raises:
            BrowserActionError: no element matches ``root``.
        """

    @abc.abstractmethod
    def ref(self, element_id: int | str) -> str:
        """The selector of the element :meth:`a11y_tree` (or :meth:`snapshot`) listed as ``[element_id]``.

        Actions on a selector of an element no longer in the page raise
        :class:`BrowserActionError` (``no element [7] on the page: ...``).
        """

    @abc.abstractmethod
    def exists(self, element_id: int | str) -> bool:
        """Whether the element listed as ``[element_id]`` is attached to the current document."""

    @abc.abstractmethod
    def evaluate(self, js: str, arg: Any = None, *, timeout: float | None = None) -> Any:
        """Evaluate a JavaScript expression or function (called with ``arg``) in the page.

        For environments and graders reading the page's state, not for agents.
        """

    @abc.abstractmethod
    def screenshot(self, path: str | Path, *, full_page: bool = False, timeout: float | None = None) -> Path:
        """Save a PNG of the page (the viewport, or the whole page) to ``path``; returns it."""

    @abc.abstractmethod
    def screenshot_png(self, *, full_page: bool = False, timeout: float | None = None) -> bytes:
        """A PNG of the page (the viewport, or the whole page), as bytes."""

    # ----- actions ----------------------------------------------------------------

    @abc.abstractmethod
    def click(self, selector: str, *, timeout: float | None = None) -> None:
        """Click the element ``selector`` matches, once it is visible and enabled."""

    @abc.abstractmethod
    def fill(self, selector: str, text: str, *, timeout: float | None = None) -> None:
        """Replace the value of the input ``selector`` matches with ``text``."""

    @abc.abstractmethod
    def select_option(self, selector: str, option: str, *, timeout: float | None = None) -> None:
        """Choose ``option`` in the drop-down list ``selector`` matches: by visible label, else by value.

        Raises:
            BrowserActionError: the element is not a drop-down list, or has no such option
                (the message lists the options).
        """

    @abc.abstractmethod
    def hover(self, selector: str, *, timeout: float | None = None) -> None:
        """Move the mouse over the element ``selector`` matches."""

    @abc.abstractmethod
    def scroll(self, dy: int, selector: str | None = None, *, timeout: float | None = None) -> None:
        """Scroll by ``dy`` CSS pixels (down when positive): the page, or the element ``selector`` matches."""

    @abc.abstractmethod
    def press(self, key: str, selector: str | None = None, *, timeout: float | None = None) -> None:
        """Press a key (``"Enter"``, ``"Control+A"``) on ``selector``, or on the focused element."""

    @abc.abstractmethod
    def wait_for(self, selector: str, *, state: ElementState = "visible", timeout: float | None = None) -> None:
        """Wait until the element ``selector`` matches is in ``state``."""

    # ----- lifecycle --------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the browser and everything it holds; idempotent."""

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
