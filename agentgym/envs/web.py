"""Web: MiniWoB++ tasks in a real headless Chromium (``agentgym/Web-v0``).

The pages are the MiniWoB++ HTML tasks shipped in the ``miniwob`` PyPI package, served by a
:class:`~agentgym.sandboxes.browser.ChromiumBrowser` that can reach nothing but those files (the
environment uses only the :class:`~agentgym.sandboxes.browser.Browser` protocol; override
:meth:`WebEnv.make_browser` for another backend). A task is a page and a seed: the page's
``Math.random`` is replaced by MiniWoB's own seeded PRNG (``Math.seedrandom``, bundled in
``core.js``) before the problem is generated, so the same task id always shows the same
page, and the episode timer is switched off (no time pressure, no time-dependent reward).
The kinds and their oracles are in :mod:`agentgym.envs.miniwob`.

``WebEnv`` is a :class:`~agentgym.envs.browser.BrowserEnv`: the agent sees ``Task: <query>``
and the page's accessibility tree (the whole body, since some pages open dialogs outside the
task area, less the query and MiniWoB's scoreboard), and acts with the browser tools
(``click``, ``fill``, ``select``, ``press``, ...; ``submit()`` ends the episode). The page
decides the outcome: MiniWoB's ``core.endEpisode`` records a raw reward
(``WOB_RAW_REWARD_GLOBAL``), read after every action; the outcome reward ``success`` is 1
when the page ended its episode with the full raw reward 1.0 (a wrong click ends the page's
episode with less), else 0. The episode ends when the page's episode ends, or when the agent
calls ``submit()`` or ``answer(text)``. A task is one page: ``goto`` and ``go_back`` are
refused (another MiniWoB page would be another task).

The oracle reads the live page turn by turn, so ``oracle_turns`` needs the task to be the
current episode, as it is under ``agentgym run``/``validate``.

Failures: the model's mistakes (an element id that is not on the page, typing into a button)
are tool errors the model sees; a browser that crashed or hung raises ``BrowserCrashed`` (a
``SandboxError``), which ends the episode as an infrastructure failure
(``termination_reason="infra_error"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentgym.envs import miniwob
from agentgym.envs.browser import BrowserEnv
from agentgym.messages import Action
from agentgym.tasks import Task, TaskSet
from agentgym.tools import tool

if TYPE_CHECKING:  # the browser package is imported on the first reset, not with the registry
    from agentgym.sandboxes.browser import Browser

KINDS = miniwob.KINDS
"""MiniWoB++ tasks whose goal and success are decided by the page alone, given the seed."""

_START_JS = """(seed) => {
  Math.seedrandom(seed);
  core.EPISODE_MAX_TIME = 1e9;  // no timer: the reward must not depend on wall-clock time
  core.startEpisodeReal();
  // The query is the observation's Task line and the reward display is MiniWoB's own
  // scoreboard: both are left out of the accessibility tree.
  for (const id of ['query', 'reward-display', 'click-canvas']) {
    const el = document.getElementById(id);
    if (el) el.setAttribute('aria-hidden', 'true');
  }
  return document.getElementById('query').innerText.trim();
}"""
_STATE_JS = "() => [WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL]"


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
def build_tasks(kinds: tuple[str, ...] | None = None, seeds_per_kind: int = 50) -> TaskSet:
    """``<kind>-<seed>`` for every kind and seed (deterministic ids; the page is generated at reset).

    ``kinds`` defaults to every kind of :data:`agentgym.envs.miniwob.KINDS`.
    """
    kinds = miniwob.KINDS if kinds is None else kinds
    unknown = set(kinds) - set(miniwob.KINDS)
    if unknown:
        raise ValueError(f"unknown Web task kinds {sorted(unknown)}; choose from {miniwob.KINDS}")
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


class WebEnv(BrowserEnv):
    """MiniWoB++ web tasks in headless Chromium: read the page, click, fill; the page grades."""

    system_prompt = (
        'You operate a web page through tools. Elements are listed as [id] role "name"; '
        "act on them by id. The page tells you the task."
    )
    default_max_turns = 20  # the larger MiniWoB kinds need a dozen single-call turns

    def __init__(self, kinds: Sequence[str] | None = None, seeds_per_kind: int = 50, **kwargs: Any):
        """Create the environment; the browser starts on the first reset.

        Args:
            kinds: MiniWoB++ task names (a subset of :data:`agentgym.envs.miniwob.KINDS`; all when None).
            seeds_per_kind: tasks (seeds) per kind.
            **kwargs: passed to :class:`~agentgym.envs.browser.BrowserEnv` (``obs_max_chars``,
                ``screenshot``, ``browser_timeout``) and :class:`~agentgym.env.AgentEnv`.
        """
        self.kinds = tuple(kinds) if kinds is not None else None
        self.seeds_per_kind = seeds_per_kind
        self._page_done = False
        self._page_reward = 0.0
        self._query = ""
        super().__init__(**kwargs)

    # ----- tasks, rewards, episodes ---------------------------------------------------

    def load_tasks(self) -> TaskSet:
        """``<kind>-<seed>`` tasks for the configured kinds and seeds."""
        return build_tasks(self.kinds, self.seeds_per_kind)

    def make_browser(self) -> Browser:
        """The browser serving the MiniWoB++ pages: a fenced headless Chromium.

        Override to use another :class:`~agentgym.sandboxes.browser.Browser` backend; it must
        serve :func:`miniwob_html_dir` so that ``goto("miniwob/<kind>.html")`` opens a task.
        """
        from agentgym.sandboxes.browser import ChromiumBrowser

        return ChromiumBrowser(miniwob_html_dir(), timeout=self.browser_timeout)

    def start_page(self, task: Task) -> None:
        """Open the task's page and start its seeded problem."""
        self._page_done = False
        self._page_reward = 0.0
        self.browser.goto(task.setup["page"])
        self._query = str(self.browser.evaluate(_START_JS, task.setup["seed"]))

    def after_action(self) -> str | None:
        """End the episode when the page ended its task (its reward is then final)."""
        done, raw = self.browser.evaluate(_STATE_JS)
        if not done:
            return None
        self._page_done = True
        self._page_reward = float(raw)
        self.end("page_done")
        return "The page's task has ended."

    def success(self) -> float:
        """1 when the page ended its task with the full raw reward, else 0."""
        return page_success(self)

    def navigation_error(self, url: str | None) -> str | None:
        """Always refused: a task is one page (another MiniWoB page would be another task)."""
        return "this task is on one page: there is no other page to open or go back to"

    def display_url(self, url: str) -> str:
        """The page's path (``/miniwob/<kind>.html``): the same in every env, whatever the server's port."""
        return self.site_path(url)

    def observation(self) -> str:
        """``Task: <query>`` followed by the page's observation."""
        return f"Task: {self._query}\n{super().observation()}"

    def _act(self, done: str, action: Any) -> str:
        if self._page_done:
            raise RuntimeError("the page's task has already ended")
        return super()._act(done, action)

    @tool(terminal=True, inline=True)
    def submit(self) -> str:
        """End the episode (the page has already recorded whether the task was done)."""
        self.end("submitted")
        return "Submitted."

    # ----- reference solution ---------------------------------------------------------

    def oracle_turns(self, task: Task) -> Iterator[Action] | list[Action]:
        """The turns that solve ``task``, read from the live page turn by turn (``task`` is the current episode)."""
        if self._task is None or self._task.id != task.id:
            raise RuntimeError(f"the Web oracle reads the live page: reset(options={{'task_id': {task.id!r}}}) first")
        return miniwob.ORACLES[task.metadata["kind"]](self, self._query)
