"""``agentgym/WebApp-v0``: multi-step tasks on three local web apps in a real Chromium.

The environment starts one loopback HTTP server (:class:`~agentgym.envs.webapps.server.AppServer`)
serving a shop, an admin console and a clinic booking flow; each reset gives the apps a fresh
SQLite database made from the task's seed and opens the task's first page in a fenced Chromium
that may reach that server's origin only. The agent uses :class:`~agentgym.envs.browser.BrowserEnv`'s
tools; the reward (``success``) is computed on the host from the database (or the text given to
``answer``) by the task's grader (:mod:`agentgym.envs.webapps.tasks`), never from the page.

The observation shows the site as ``http://webapps.test`` (the server's port differs between
environment instances; the transcript of the same actions is the same in each); ``goto``
accepts paths (``/shop/cart``) and full URLs of that origin.

Fences: navigation outside the app's origin, ``javascript:`` and ``file:`` URLs are refused
(an error message to the model); the database lives in a private temporary directory that
no URL maps to; pages are rendered with autoescaping and a Content-Security-Policy without
script, so text typed into a field is stored and shown as text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agentgym.envs.browser import BrowserEnv
from agentgym.envs.webapps.oracles import ORACLES
from agentgym.envs.webapps.server import AppServer
from agentgym.envs.webapps.tasks import SEEDS, build_tasks, grade
from agentgym.errors import GraderError
from agentgym.messages import Action
from agentgym.tasks import Task, TaskSet
from agentgym.tools import Tool, tool

if TYPE_CHECKING:
    from agentgym.sandboxes.browser import Browser

DISPLAY_ORIGIN = "http://webapps.test"
"""The origin the model sees in place of ``http://127.0.0.1:<port>``."""


class WebAppEnv(BrowserEnv):
    """Multi-step tasks on a local shop, admin console and clinic; graded from the apps' database."""

    system_prompt = BrowserEnv.system_prompt + (
        " The site is a web application with a shop (/shop), an admin console (/admin) and a clinic "
        "booking service (/clinic). Open pages by clicking links or with goto and a path like /shop."
    )
    default_max_turns = 30

    def __init__(self, templates: Sequence[str] | None = None, seeds: Sequence[int] = SEEDS, **kwargs: Any):
        """Create the environment; the app server and the browser start on the first reset.

        Args:
            templates: task templates to offer (default: all of :data:`~agentgym.envs.webapps.tasks.TEMPLATES`).
            seeds: fixture seeds per template (seeds 6 and 7 are the ``test`` split).
            **kwargs: passed to :class:`~agentgym.envs.browser.BrowserEnv`.
        """
        self.templates = tuple(templates) if templates is not None else None
        self.seeds = tuple(seeds)
        self._server: AppServer | None = None
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        """``<template>-<seed>`` for the configured templates and seeds."""
        return build_tasks(self.templates, self.seeds)

    @property
    def server(self) -> AppServer:
        """The apps' HTTP server (started on first use)."""
        if self._server is None:
            self._server = AppServer()
        return self._server

    def make_browser(self) -> Browser:
        """A fenced headless Chromium that may reach the app server's origin only."""
        from agentgym.sandboxes.browser import ChromiumBrowser

        return ChromiumBrowser(timeout=self.browser_timeout, allowed_origins=[self.server.origin])

    def setup(self, task: Task) -> None:
        """A fresh database from the task's seed, then a new browser episode on the task's first page."""
        self.server.reset(int(task.setup["seed"]))
        super().setup(task)

    def start_page(self, task: Task) -> None:
        """Open the task's app (``/shop``, ``/admin`` or ``/clinic``)."""
        self.browser.goto(self.server.origin + task.setup["path"])

    def success(self) -> float:
        """The task's grader on the episode's database and answer: 1.0 or 0.0."""
        try:
            conn = self.server.connect()
            try:
                return grade(self.task, conn, self.answer_text)
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise GraderError(f"could not read the web apps' database: {e}") from e

    def close(self) -> None:
        """Close the browser and stop the app server; idempotent."""
        super().close()
        if self._server is not None:
            self._server.close()

    # ----- one origin shown, whatever the port --------------------------------------------

    def observation(self) -> str:
        """The page's observation with the server's origin shown as :data:`DISPLAY_ORIGIN`."""
        return super().observation().replace(self.server.origin, DISPLAY_ORIGIN)

    def navigation_error(self, url: str | None) -> str | None:
        """The browser env's check (the app's origin only), its message naming the shown origin."""
        refused = super().navigation_error(url)
        return refused.replace(self.server.origin, DISPLAY_ORIGIN) if refused else None

    def get_tools(self) -> list[Tool]:
        """The browser env's tools in its order (``goto`` is this class's: it also takes the shown origin)."""
        order = list(vars(BrowserEnv))
        return sorted(super().get_tools(), key=lambda t: order.index(t.name) if t.name in order else len(order))

    @tool(inline=True)
    def goto(self, url: str) -> str:
        """Open a page of this site.

        Args:
            url: a path like /shop/cart, or a full URL of this site
        """
        text = url.strip()
        if text.lower().startswith(DISPLAY_ORIGIN):
            parts = urlsplit(text)
            text = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return BrowserEnv.goto(self, text)

    # ----- reference solution -------------------------------------------------------------

    def oracle_turns(self, task: Task) -> Iterator[Action]:
        """The turns that solve ``task``, read from the live page turn by turn (``task`` is the current episode)."""
        if self._task is None or self._task.id != task.id:
            raise RuntimeError(
                f"the WebApp oracle reads the live page: reset(options={{'task_id': {task.id!r}}}) first"
            )
        return ORACLES[task.metadata["template"]](self, task.verifier["params"])
