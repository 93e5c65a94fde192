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

    @abc.abstractmethod
    def goto(self, url_or_path: str, *, timeout: float | None = None) -> None:
        """Open a URL, or a path relative to the backend's served files; waits for ``load``."""

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
    def ref(self, element_id: int | str) -> str:
        """The selector of the element :meth:`snapshot` listed as ``[element_id]``."""

    @abc.abstractmethod
    def evaluate(self, js: str, arg: Any = None, *, timeout: float | None = None) -> Any:
        """Evaluate a JavaScript expression or function (called with ``arg``) in the page.

        For environments and graders reading the page's state, not for agents.
        """

    @abc.abstractmethod
    def screenshot(self, path: str | Path, *, full_page: bool = False, timeout: float | None = None) -> Path:
        """Save a PNG of the page (the viewport, or the whole page) to ``path``; returns it."""

    # ----- actions ----------------------------------------------------------------

    @abc.abstractmethod
    def click(self, selector: str, *, timeout: float | None = None) -> None:
        """Click the element ``selector`` matches, once it is visible and enabled."""

    @abc.abstractmethod
    def fill(self, selector: str, text: str, *, timeout: float | None = None) -> None:
        """Replace the value of the input ``selector`` matches with ``text``."""

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
