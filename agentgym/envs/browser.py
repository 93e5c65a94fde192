"""``BrowserEnv``: the base of every browser environment (an agent operating web pages by tools).

The model reads an observation of the page and acts with ten tools. The observation is::

    URL: http://127.0.0.1:8123/shop
    Title: Shop
    Tabs: [0] Shop (active) | [1] Help
    Last action error: none

    heading "Products" level=1
    [3] link "Cart" url="/cart"
    [4] textbox "Search" value=""

the page's accessibility tree (:meth:`~agentgym.sandboxes.browser.Browser.a11y_tree`: one
node a line, interactive nodes with an id in brackets that stays with the element for the
life of the document), within ``obs_max_chars``. Tools: ``click(element_id)``,
``fill(element_id, text)``, ``select(element_id, option)``, ``press(key)``,
``scroll(direction)``, ``hover(element_id)``, ``go_back()``, ``goto(url)`` (the task's
origin only), ``switch_tab(index)`` and ``answer(text)`` (terminal). Each action returns its
result line and the new observation.

Actions are dispatched to :class:`~agentgym.sandboxes.browser.Browser` methods by element id
or key name, never evaluated as code: typed text is data. The model's mistakes (an id that is
not on the page or no longer attached, a bad option, a blocked URL, a click the page did not
accept in time) are tool errors: the model sees a message saying what to do, the next
observation shows it as ``Last action error``, and ``info["tool_errors"]`` counts it. A
browser that crashed or hung raises :class:`~agentgym.sandboxes.browser.BrowserCrashed` (a
:class:`~agentgym.errors.SandboxError`): the episode ends as an infrastructure failure
(``termination_reason="infra_error"``), and the next reset relaunches or replaces the browser.

One browser per environment (:meth:`BrowserEnv.make_browser`, made on the first reset); each
reset starts a new episode on it (a fresh context; the previous one is closed). With
``screenshot=True`` (or ``reset(options={"screenshot": True})`` for one episode),
``info["screenshot"]`` holds PNG bytes of the viewport after reset and after every step.

A subclass provides the tasks (``load_tasks``), the browser (``make_browser``: what it serves
and which origins it may reach), the first page (``start_page``), the verdict (``success``:
decided by the page or by the application's state on the host) and, when the page can end
the task by itself, ``after_action``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

from agentgym.env import AgentEnv
from agentgym.errors import SandboxError
from agentgym.messages import Message, user
from agentgym.rewards import Rubric, step_cost, tool_errors, well_formed_calls
from agentgym.tasks import Task
from agentgym.tools import tool

if TYPE_CHECKING:  # the browser package is imported on the first reset, not with the registry
    from agentgym.sandboxes.browser import Browser

__all__ = ["BrowserEnv", "parse_elements"]

_ELEMENT_LINE = re.compile(r'^\s*\[(\d+)\] (\S+) ("(?:[^"\\]|\\.)*")(.*)$')
_ATTR = re.compile(r"\s*([A-Za-z_][\w-]*)(=?)")
_SCROLL_PIXELS = 400


def parse_elements(tree: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    """``(id, role, name, attrs)`` of every node with an id in an accessibility tree, in page order.

    ``attrs`` maps each ``key=<json>`` to its value and each bare flag (``checked``,
    ``disabled``, ...) to True.
    """
    out = []
    decoder = json.JSONDecoder()
    for line in tree.splitlines():
        m = _ELEMENT_LINE.match(line)
        if not m:
            continue
        attrs: dict[str, Any] = {}
        rest, pos = m.group(4), 0
        while pos < len(rest):
            a = _ATTR.match(rest, pos)
            if not a or a.end() == pos:
                break
            pos = a.end()
            if a.group(2):
                try:
                    attrs[a.group(1)], pos = decoder.raw_decode(rest, pos)
                except json.JSONDecodeError:
                    break
            else:
                attrs[a.group(1)] = True
        out.append((int(m.group(1)), m.group(2), json.loads(m.group(3)), attrs))
    return out


def browser_success(env: BrowserEnv) -> float:
    """The env's verdict on the episode (:meth:`BrowserEnv.success`)."""
    return env.success()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class BrowserEnv(AgentEnv):
    """An agent operating web pages in a real browser through ten tools; subclasses supply tasks and verdicts."""

    system_prompt = (
        "You operate a web browser through tools. Each observation shows the page's URL, title, "
        'open tabs, the last action\'s error and the page as a tree whose elements read [id] role "name": '
        "act on them by id. Finish with answer(text) when the task asks a question or is done."
    )
    default_max_turns = 15
    a11y_root: str = "body"
    """CSS selector of the part of the page the observation shows."""

    def __init__(
        self, obs_max_chars: int = 8000, screenshot: bool = False, browser_timeout: float = 5.0, **kwargs: Any
    ):
        """Create the environment; the browser starts on the first reset.

        Args:
            obs_max_chars: the size budget of an observation in characters (header and tree;
                a longer tree ends with a line saying how many nodes were left out).
            screenshot: put PNG bytes of the page in ``info["screenshot"]`` on reset and every
                step (``reset(options={"screenshot": ...})`` overrides it for one episode).
            browser_timeout: seconds each browser action may take before the model is told it
                timed out.
            **kwargs: passed to :class:`~agentgym.env.AgentEnv`.
        """
        if obs_max_chars < 200:
            raise ValueError("obs_max_chars must be at least 200: an observation needs room for its header")
        self.obs_max_chars = obs_max_chars
        self.screenshot = screenshot
        self.browser_timeout = browser_timeout
        kwargs.setdefault("max_tool_output", obs_max_chars + 500)  # a result line and a whole observation
        self._browser: Browser | None = None
        self._shoot = screenshot
        self._last_error: str | None = None
        self._answer: str | None = None
        self._origin = ""
        self._first_observation = ""
        super().__init__(**kwargs)

    # ----- hooks for subclasses -------------------------------------------------------

    def make_browser(self) -> Browser:
        """The browser of this environment (default: a fenced headless Chromium serving no files).

        Override to serve the task's files (``ChromiumBrowser(root)``) or to allow an app's
        origin (``allowed_origins=``).
        """
        from agentgym.sandboxes.browser import ChromiumBrowser

        return ChromiumBrowser(timeout=self.browser_timeout)

    def start_page(self, task: Task) -> None:
        """Open the task's first page (called after the new episode started); default: ``task.setup["url"]``."""
        self.browser.goto(task.setup["url"])

    def after_action(self) -> str | None:
        """Called after every action that succeeded: check whether the page ended the task.

        May call :meth:`end`; a returned text is added to the action's result line.
        """
        return None

    def success(self) -> float:
        """The outcome of the episode in [0, 1] (decided by the page or the app's state); default 0."""
        return 0.0

    def navigation_error(self, url: str | None) -> str | None:
        """Why the agent may not navigate to ``url`` (None for ``go_back``), or None when it may.

        Default: ``goto`` stays on the task's origin (the origin of the first page).
        """
        if url is None:
            return None
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            return f"cannot open {url!r}: only pages of this site can be opened (a path like /page)"
        if _origin(url) != self._origin:
            return f"cannot open {url!r}: it is outside this site; use a path like /page"
        return None

    # ----- episodes -------------------------------------------------------------------

    @property
    def browser(self) -> Browser:
        """The env's browser, made by :meth:`make_browser` on first use."""
        if self._browser is None:
            self._browser = self.make_browser()
        return self._browser

    def build_rubric(self) -> Rubric:
        """``success`` (:meth:`success`) as the reward; well-formedness, tool errors and steps as metrics."""
        rubric = Rubric()
        rubric.add("success", browser_success)
        rubric.add("well_formed", well_formed_calls, weight=0.0, kind="process")
        rubric.add("tool_errors", tool_errors, weight=0.0, kind="process")
        rubric.add("step_cost", step_cost, weight=0.0, kind="process")
        return rubric

    def setup(self, task: Task) -> None:
        """Start a new browser episode (a fresh context) and open the task's first page."""
        from agentgym.sandboxes.browser import BrowserCrashed

        self._last_error = None
        self._answer = None
        try:
            self.browser.new_episode()
        except BrowserCrashed:
            # A browser that hung cannot restart in place (a crashed one relaunches by itself):
            # replace it once; a second failure propagates.
            self.browser.close()
            self._browser = None
            self.browser.new_episode()
        self.start_page(task)
        self._origin = _origin(self.browser.url)
        self._first_observation = self.observation()

    def opening_messages(self, task: Task) -> list[Message]:
        """The task prompt followed by the first observation of the page."""
        messages = super().opening_messages(task)
        messages[-1] = user(f"{task.prompt}\n\n{self._first_observation}")
        return messages

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start an episode; ``options={"screenshot": True}`` adds PNG bytes to ``info`` for this episode."""
        shoot = (options or {}).get("screenshot")
        self._shoot = self.screenshot if shoot is None else bool(shoot)
        observation, info = super().reset(seed=seed, options=options)
        if self._shoot:
            info["screenshot"] = self.browser.screenshot_png()
        return observation, info

    def step(self, action: Any) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Play one turn; adds ``info["answer"]`` when answered, ``info["screenshot"]`` when on."""
        observation, reward, terminated, truncated, info = super().step(action)
        if self._answer is not None and (terminated or truncated):
            info["answer"] = self._answer
        if self._shoot:
            try:
                info["screenshot"] = None if info.get("infra_failure") else self.browser.screenshot_png()
            except SandboxError:
                info["screenshot"] = None  # the browser died after the turn: the next reset sees it
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        """Close the environment and its browser; idempotent."""
        super().close()
        if self._browser is not None:
            self._browser.close()

    # ----- reading the page -------------------------------------------------------------

    @property
    def answer_text(self) -> str | None:
        """The text given to ``answer`` in this episode (None when not answered)."""
        return self._answer

    def observation(self) -> str:
        """URL, title, tabs, the last action's error and the accessibility tree, within ``obs_max_chars``."""
        b = self.browser
        tabs = " | ".join(
            f"[{t['index']}] {t.get('title') or t.get('url', '')}{' (active)' if t.get('active') else ''}"
            for t in b.tabs()
        )
        header = (
            f"URL: {self.display_url(b.url)}\nTitle: {b.title}\nTabs: {tabs or '(none)'}\n"
            f"Last action error: {self._last_error or 'none'}\n\n"
        )
        budget = max(self.obs_max_chars - len(header), 100)
        tree = b.a11y_tree(root=self.a11y_root, max_chars=budget) or "(empty page)"
        return (header + tree)[: self.obs_max_chars]

    def display_url(self, url: str) -> str:
        """``url`` as the observation shows it (default: unchanged).

        The task's origin holds a port that differs between environments: override to show a
        stable URL (:meth:`site_path` gives the path, which ``goto`` accepts).
        """
        return url

    def site_path(self, url: str) -> str:
        """The path (with query and fragment) of ``url`` when it is on the task's origin, else ``url``."""
        if not self._origin or _origin(url) != self._origin:
            return url
        parts = urlsplit(url)
        return (
            parts.path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        )

    def elements(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        """``(id, role, name, attrs)`` of every interactive element of the page (the whole tree, no budget)."""
        return parse_elements(self.browser.a11y_tree(root=self.a11y_root, max_chars=10_000_000))

    def find(self, role: str, name: str | None = None, *, nth: int = 0, contains: bool = False) -> int:
        """The id of the ``nth`` element of ``role`` named ``name`` (any name when None; a substring when ``contains``).

        Raises:
            ValueError: no such element (the message lists the elements of that role).
        """
        found = [
            i
            for i, r, n, _ in self.elements()
            if r == role and (name is None or (name in n if contains else n == name))
        ]
        if nth < len(found):
            return found[nth]
        listed = [f"[{i}] {r} {json.dumps(n)}" for i, r, n, _ in self.elements() if r == role]
        raise ValueError(
            f"no {role} {json.dumps(name) if name is not None else ''} (#{nth}) on the page; "
            f"{role} elements: {', '.join(listed) or 'none'}"
        )

    # ----- acting -----------------------------------------------------------------------

    def _selector(self, element_id: int) -> str:
        if not self.browser.exists(element_id):
            raise ValueError(
                f"no element [{element_id}] on the page (it was never listed, or the page removed it); "
                "use an id from the latest observation"
            )
        return self.browser.ref(element_id)

    def _act(self, done: str, action: Any) -> str:
        """Run ``action`` (a function of no arguments); on success the result line and the new observation.

        A model mistake is recorded as the last action error and raised again (the model sees
        it as the tool's error message); a SandboxError passes through (infrastructure).
        """
        from agentgym.sandboxes.browser import BrowserActionError

        try:
            action()
        except (BrowserActionError, ValueError) as e:
            self._last_error = str(e)
            raise
        self._last_error = None
        note = self.after_action()
        line = f"{done} {note}" if note else done
        if self._end_reason is not None:
            return line
        return f"{line}\n\n{self.observation()}"

    @tool(inline=True)
    def click(self, element_id: int) -> str:
        """Click an element.

        Args:
            element_id: the number in brackets of the element, e.g. 3
        """
        return self._act(f"Clicked [{element_id}].", lambda: self.browser.click(self._selector(element_id)))

    @tool(inline=True)
    def fill(self, element_id: int, text: str) -> str:
        """Replace the text of a text field with ``text``.

        Args:
            element_id: the number in brackets of a textbox, e.g. 2
            text: the text to enter
        """
        return self._act(
            f"Filled [{element_id}] with {json.dumps(text)}.",
            lambda: self.browser.fill(self._selector(element_id), text),
        )

    @tool(inline=True)
    def select(self, element_id: int, option: str) -> str:
        """Choose an option of a drop-down list.

        Args:
            element_id: the number in brackets of the list (a combobox or listbox)
            option: the option's visible text
        """
        return self._act(f"Selected {json.dumps(option)} in [{element_id}].", lambda: self._select(element_id, option))

    def _select(self, element_id: int, option: str) -> None:
        from agentgym.sandboxes.browser import BrowserActionError

        selector = self._selector(element_id)
        try:
            self.browser.select_option(selector, option)
        except BrowserActionError as e:
            options = next((a.get("options") for i, _, _, a in self.elements() if i == element_id), None)
            if isinstance(options, list):
                raise ValueError(
                    f"[{element_id}] has no option {json.dumps(option)}; its options: {json.dumps(options)}"
                ) from e
            raise

    @tool(inline=True)
    def press(self, key: str) -> str:
        """Press a key on the focused element, e.g. Enter, Tab, ArrowDown, Escape, Control+A.

        Args:
            key: the key's name, optionally with modifiers (Shift+Tab)
        """
        return self._act(f"Pressed {key}.", lambda: self.browser.press(key))

    @tool(inline=True)
    def scroll(self, direction: Literal["up", "down"]) -> str:
        """Scroll the page up or down by most of a screen.

        Args:
            direction: up or down
        """
        dy = _SCROLL_PIXELS if direction == "down" else -_SCROLL_PIXELS
        return self._act(f"Scrolled {direction}.", lambda: self.browser.scroll(dy))

    @tool(inline=True)
    def hover(self, element_id: int) -> str:
        """Move the mouse over an element (opens menus and tooltips).

        Args:
            element_id: the number in brackets of the element
        """
        return self._act(f"Hovered over [{element_id}].", lambda: self.browser.hover(self._selector(element_id)))

    @tool(inline=True)
    def go_back(self) -> str:
        """Go back to the previous page of this tab."""

        def go() -> None:
            refused = self.navigation_error(None)
            if refused:
                raise ValueError(refused)
            self.browser.go_back()

        return self._act("Went back.", go)

    @tool(inline=True)
    def goto(self, url: str) -> str:
        """Open a page of this site.

        Args:
            url: a path like /cart, or a full URL of this site
        """

        def go() -> None:
            target = urljoin(self.browser.url, url.strip())
            refused = self.navigation_error(target)
            if refused:
                raise ValueError(refused)
            self.browser.goto(target)

        return self._act(f"Opened {url}.", go)

    @tool(inline=True)
    def switch_tab(self, index: int) -> str:
        """Make another open tab the active one.

        Args:
            index: the tab's number in the Tabs line, e.g. 1
        """
        return self._act(f"Switched to tab [{index}].", lambda: self.browser.switch_tab(index))

    @tool(terminal=True, inline=True)
    def answer(self, text: str) -> str:
        """Give the final answer (or say the task is done) and end the episode.

        Args:
            text: the answer the task asks for, or a short note that it is done
        """
        self._answer = text
        self.end("answered")
        return "Answer recorded."
