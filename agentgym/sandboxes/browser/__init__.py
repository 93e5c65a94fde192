"""Browsers for web environments: one protocol (:class:`Browser`), one backend (Chromium).

A browser is not a :class:`~agentgym.sandboxes.Sandbox` (it runs no commands and keeps no
files), so it has a protocol of its own, in :mod:`agentgym.sandboxes.browser.base`:

* :class:`Browser`: episodes, pages and tabs, the accessibility tree (``a11y_tree``, ids that
  stay with their elements), actions (click, fill, select_option, press, hover, scroll,
  go_back, switch_tab), screenshots, context manager;
* :class:`BrowserActionError` / :class:`BrowserTimeout`: the caller's (the model's) mistakes;
* :class:`BrowserCrashed`: the browser failed, an :class:`~agentgym.errors.SandboxError`.

:class:`ChromiumBrowser` (module :mod:`agentgym.sandboxes.browser.chromium`) is the backend:
a headless system Chromium, driven by Playwright, whose pages can reach only the task's own
files; the instances of a process share one Chromium (a context per episode) unless created
with ``shared=False``. ``BrowserSandbox`` is its former name, kept as an alias.

Importing this package does not import Playwright; the backend loads it on first use.
"""

from __future__ import annotations

from .base import Browser, BrowserActionError, BrowserCrashed, BrowserTimeout, ElementState
from .chromium import CHROMIUM_ARGS, CHROMIUM_PATH, HARD_DEADLINE_GRACE, ChromiumBrowser

BrowserSandbox = ChromiumBrowser
"""Former name of :class:`ChromiumBrowser` (it never was a :class:`~agentgym.sandboxes.Sandbox`)."""

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_PATH",
    "HARD_DEADLINE_GRACE",
    "Browser",
    "BrowserActionError",
    "BrowserCrashed",
    "BrowserSandbox",
    "BrowserTimeout",
    "ChromiumBrowser",
    "ElementState",
]
