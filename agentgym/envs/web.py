"""Web: MiniWoB++ tasks in a real headless Chromium (``agentgym/Web-v0``).

The pages are the MiniWoB++ HTML tasks shipped in the ``miniwob`` PyPI package, served by a
:class:`~agentgym.sandboxes.browser.ChromiumBrowser` that can reach nothing but those files (the
environment uses only the :class:`~agentgym.sandboxes.browser.Browser` protocol; override
:meth:`WebEnv.make_browser` for another backend). A task is
a page and a seed: the page's ``Math.random`` is replaced by MiniWoB's own seeded PRNG
(``Math.seedrandom``, bundled in ``core.js``) before the problem is generated, so the same
task id always shows the same page, and the episode timer is switched off (no time pressure,
no time-dependent reward).

The agent sees the query and a compact list of the task area's elements, ``[3] button
"Submit"``, and acts with ``observe()``, ``click(element_id)``, ``type(element_id, text)`` and
``submit()``. The page decides the outcome: MiniWoB's ``core.endEpisode`` records a raw reward
(``WOB_RAW_REWARD_GLOBAL``); the outcome reward ``success`` is 1 when the page ended its
episode with the full raw reward 1.0 (a wrong click ends the page's episode with less), else 0.
The episode ends when the page's episode ends, or when the agent calls ``submit()``.

The oracle reads the live page (the query and the generated elements), so ``oracle_turns``
needs the task to be the current episode, as it is under ``agentgym run``/``validate``.

Failures: the model's mistakes (an element id that is not on the page, typing into a button)
raise ``BrowserActionError``/``ValueError`` inside the tools and come back as tool messages; a
browser that crashed or hung raises ``BrowserCrashed`` (a ``SandboxError``), which ends the
episode as an infrastructure failure (``termination_reason="infra_error"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentgym.env import AgentEnv
from agentgym.messages import Action, Message, user
from agentgym.parsing import format_tool_call
from agentgym.rewards import Rubric, step_cost, tool_errors, well_formed_calls
from agentgym.tasks import Task, TaskSet
from agentgym.tools import tool

if TYPE_CHECKING:  # the browser package is imported on the first reset, not with the registry
    from agentgym.sandboxes.browser import Browser

KINDS = ("click-button", "click-link", "click-option", "click-checkboxes", "enter-text", "focus-text")
"""MiniWoB++ tasks whose goal and success are decided by the page alone, given the seed."""

_CLICKABLE = ".alink"  # click-link's links are <span class="alink"> with script handlers
_START_JS = """(seed) => {
  Math.seedrandom(seed);
  core.EPISODE_MAX_TIME = 1e9;  // no timer: the reward must not depend on wall-clock time
  core.startEpisodeReal();
  return true;
}"""
_STATE_JS = "() => [WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL, document.getElementById('query').innerText.trim()]"


def miniwob_html_dir() -> Path:
    """The ``html`` folder of the installed ``miniwob`` package (found without importing it)."""
    spec = find_spec("miniwob")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the MiniWoB++ pages come from the miniwob package: pip install miniwob")
    html = Path(next(iter(spec.submodule_search_locations))) / "html"
    if not (html / "miniwob").is_dir():
        raise FileNotFoundError(f"no MiniWoB++ pages under {html}; reinstall the miniwob package")
    return html


@lru_cache(maxsize=8)
def build_tasks(kinds: tuple[str, ...] = KINDS, seeds_per_kind: int = 50) -> TaskSet:
    """``<kind>-<seed>`` for every kind and seed (deterministic ids; the page is generated at reset)."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown Web task kinds {sorted(unknown)}; choose from {KINDS}")
    tasks = [
        Task(
            f"{kind}-{seed:03d}",
            "Complete the task described on the web page.",
            setup={"page": f"miniwob/{kind}.html", "seed": f"agentgym-{kind}-{seed}"},
            metadata={"kind": kind},
        )
        for kind in kinds
        for seed in range(seeds_per_kind)
    ]
    return TaskSet(tasks, name="web")


def page_success(env: WebEnv) -> float:
    """1 when the page ended its task with MiniWoB's full raw reward (1.0), else 0."""
    return float(env._page_done and env._page_reward >= 1.0 - 1e-9)


class WebEnv(AgentEnv):
    """MiniWoB++ web tasks in headless Chromium: read the page, click, type; the page grades."""

    system_prompt = (
        'You operate a web page through tools. Elements are listed as [id] role "name"; '
        "act on them by id. The page tells you the task."
    )
    default_max_turns = 10

    def __init__(
        self, kinds: Sequence[str] = KINDS, seeds_per_kind: int = 50, browser_timeout: float = 5.0, **kwargs: Any
    ):
        """Create the environment; the browser starts on the first reset.

        Args:
            kinds: MiniWoB++ task names (a subset of ``KINDS``).
            seeds_per_kind: tasks (seeds) per kind.
            browser_timeout: seconds each browser action may take before the model is told it
                timed out.
            **kwargs: passed to :class:`~agentgym.env.AgentEnv`.
        """
        self.kinds = tuple(kinds)
        self.seeds_per_kind = seeds_per_kind
        self.browser_timeout = browser_timeout
        self._browser: Browser | None = None  # one browser per env, made on the first reset
        self._page_done = False
        self._page_reward = 0.0
        self._first_observation = ""
        super().__init__(**kwargs)

    # ----- tasks, rewards, episodes ---------------------------------------------------

    def load_tasks(self) -> TaskSet:
        """``<kind>-<seed>`` tasks for the configured kinds and seeds."""
        return build_tasks(self.kinds, self.seeds_per_kind)

    def build_rubric(self) -> Rubric:
        """``success`` (the page's verdict) as the reward; well-formedness, tool errors, steps as metrics."""
        rubric = Rubric()
        rubric.add("success", page_success)
        rubric.add("well_formed", well_formed_calls, weight=0.0, kind="process")
        rubric.add("tool_errors", tool_errors, weight=0.0, kind="process")
        rubric.add("step_cost", step_cost, weight=0.0, kind="process")
        return rubric

    def make_browser(self) -> Browser:
        """The browser serving the MiniWoB++ pages: a fenced headless Chromium.

        Override to use another :class:`~agentgym.sandboxes.browser.Browser` backend; it must
        serve :func:`miniwob_html_dir` so that ``goto("miniwob/<kind>.html")`` opens a task.
        """
        from agentgym.sandboxes.browser import ChromiumBrowser

        return ChromiumBrowser(miniwob_html_dir(), timeout=self.browser_timeout)

    @property
    def browser(self) -> Browser:
        """The env's browser, made by :meth:`make_browser` on first use."""
        if self._browser is None:
            self._browser = self.make_browser()
        return self._browser

    def setup(self, task: Task) -> None:
        """Open the task's page in a fresh browser context and start its seeded problem."""
        from agentgym.sandboxes.browser import BrowserCrashed

        self._page_done = False
        self._page_reward = 0.0
        try:
            self.browser.new_episode()
        except BrowserCrashed:
            # A browser that hung cannot restart in place (a crashed one relaunches by itself):
            # replace it once; a second failure propagates.
            self.browser.close()
            self._browser = None
            self.browser.new_episode()
        self.browser.goto(task.setup["page"])
        self.browser.evaluate(_START_JS, task.setup["seed"])
        self._first_observation = self._observation()  # numbers the elements: same ids in every run

    def opening_messages(self, task: Task) -> list[Message]:
        """The task prompt followed by the first observation of the page."""
        messages = super().opening_messages(task)
        messages[-1] = user(f"{task.prompt}\n\n{self._first_observation}")
        return messages

    def close(self) -> None:
        """Close the environment and its browser; idempotent."""
        super().close()
        if self._browser is not None:
            self._browser.close()

    # ----- page access --------------------------------------------------------------

    def _observation(self, query: str | None = None) -> str:
        if query is None:
            query = self.browser.evaluate(_STATE_JS)[2]
        elements = self.browser.snapshot("#area", include_text=True, clickable=_CLICKABLE)
        return f"Task: {query}\nPage:\n{elements or '(no elements)'}"

    def _after_action(self, done_text: str) -> str:
        done, raw, query = self.browser.evaluate(_STATE_JS)
        if done:
            self._page_done = True
            self._page_reward = float(raw)
            self.end("page_done")
            return f"{done_text} The page's task has ended."
        return f"{done_text}\n{self._observation(query)}"

    def _check_open(self, element_id: int) -> str:
        if self._page_done:
            raise RuntimeError("the page's task has already ended")
        selector = f"#area {self.browser.ref(element_id)}"
        if not self.browser.evaluate("(s) => document.querySelector(s) !== null", selector):
            raise ValueError(f"no element [{element_id}] on the page; call observe() to list the elements")
        return selector

    # ----- tools --------------------------------------------------------------------

    @tool
    def observe(self) -> str:
        """Show the task and the page's elements as lines like [3] button "Submit"."""
        return self._observation()

    @tool
    def click(self, element_id: int) -> str:
        """Click an element.

        Args:
            element_id: the number in brackets from the element list, e.g. 3
        """
        selector = self._check_open(element_id)
        self.browser.click(selector)
        return self._after_action(f"Clicked [{element_id}].")

    @tool
    def type(self, element_id: int, text: str) -> str:
        """Replace the text of a text field.

        Args:
            element_id: the number in brackets of a textbox, e.g. 2
            text: the text to enter
        """
        selector = self._check_open(element_id)
        self.browser.fill(selector, text)
        return self._after_action(f"Typed {json.dumps(text)} into [{element_id}].")

    @tool(terminal=True)
    def submit(self) -> str:
        """End the episode (the page has already recorded whether the task was done)."""
        self.end("submitted")
        return "Submitted."

    # ----- reference solution ---------------------------------------------------------

    def oracle_turns(self, task: Task) -> list[Action]:
        """The turns that solve ``task``, read from the live page (``task`` must be the current episode)."""
        if self._task is None or self._task.id != task.id:
            raise RuntimeError(f"the Web oracle reads the live page: reset(options={{'task_id': {task.id!r}}}) first")
        query = self.browser.evaluate(_STATE_JS)[2]
        kind = task.metadata["kind"]
        elements = _elements(self.browser.snapshot("#area", clickable=_CLICKABLE))

        def ids(role: str, name: str | None = None) -> list[int]:
            return [i for i, r, n in elements if r == role and name in (None, n)]

        def by_name(role: str, name: str) -> int:
            return ids(role, name)[0]

        calls: list[tuple[str, dict[str, Any]]] = []
        if kind == "click-button":
            calls = [("click", {"element_id": by_name("button", _quoted(query))})]
        elif kind == "click-link":
            calls = [("click", {"element_id": by_name("clickable", _quoted(query))})]
        elif kind == "focus-text":
            calls = [("click", {"element_id": ids("textbox")[0]})]
        elif kind == "enter-text":
            calls = [
                ("type", {"element_id": ids("textbox")[0], "text": _quoted(query)}),
                ("click", {"element_id": by_name("button", "Submit")}),
            ]
        elif kind in ("click-option", "click-checkboxes"):
            names = re.fullmatch(r"Select (.*) and click Submit\.", query, re.S)
            assert names, f"unexpected query {query!r}"
            wanted = [] if names.group(1) == "nothing" else names.group(1).split(", ")
            role = "radio" if kind == "click-option" else "checkbox"
            calls = [("click", {"element_id": i}) for w in wanted for i in ids(role, w)[:1]]
            calls.append(("click", {"element_id": by_name("button", "Submit")}))
        turns: list[Action] = [format_tool_call(name, args) for name, args in calls]
        turns.append(format_tool_call("submit", {}))
        return turns


def _quoted(query: str) -> str:
    found = re.search(r'"(.*)"', query, re.S)
    if not found:
        raise ValueError(f"no quoted target in the query {query!r}")
    return found.group(1)


_ELEMENT_LINE = re.compile(r'^\[(\d+)\] (\S+) ("(?:[^"\\]|\\.)*")')


def _elements(snapshot: str) -> list[tuple[int, str, str]]:
    """``(id, role, name)`` of every element a snapshot lists (``[3] button "Submit"``), in page order."""
    found = (_ELEMENT_LINE.match(line) for line in snapshot.splitlines())
    return [(int(m.group(1)), m.group(2), json.loads(m.group(3))) for m in found if m]
