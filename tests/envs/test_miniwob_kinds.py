"""Every MiniWoB++ kind of ``agentgym/Web-v0`` (``agentgym.envs.miniwob``) in real Chromium.

The oracle of every kind scores 1 and doing nothing scores 0 on three seeds (``agentgym tasks
validate``'s machinery), and the page, not the oracle, decides: the oracle's own turns with
the typed text changed score 0.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

import agentgym
from agentgym.envs import miniwob
from agentgym.envs.web import WebEnv, miniwob_html_dir
from agentgym.messages import Action
from agentgym.parsing import format_tool_call
from agentgym.testing import require
from agentgym.validate import validate

pytestmark = pytest.mark.browser

SEEDS = (0, 1, 2)
"""Seeds validated here (``tests/envs/test_web.py`` validates two others)."""

TYPING_KINDS = (
    "enter-text-dynamic",
    "enter-text-2",
    "enter-password",
    "login-user",
    "read-table",
    "read-table-2",
    "multi-layouts",
    "use-autocomplete",
    "use-spinner",
    "simple-arithmetic",
    "simple-algebra",
    "find-word",
    "enter-date",
)
"""Kinds whose answer is typed: the page must refuse a wrong one."""


def _require_web() -> None:
    require(os.path.exists("/usr/bin/chromium"), "Chromium is not installed: apt-get install chromium")
    require(importlib.util.find_spec("playwright") is not None, "Playwright is not installed: pip install playwright")
    require(importlib.util.find_spec("miniwob") is not None, "MiniWoB++ pages are not installed: pip install miniwob")


@pytest.fixture(scope="module")
def env() -> Iterator[WebEnv]:
    """One env (one Chromium) for the module."""
    _require_web()
    e = agentgym.make("agentgym/Web-v0").unwrapped
    assert isinstance(e, WebEnv)
    yield e
    e.close()


def test_the_kinds_are_pages_of_the_miniwob_package() -> None:
    _require_web()
    assert len(miniwob.KINDS) >= 26 and len(set(miniwob.KINDS)) == len(miniwob.KINDS)
    assert set(miniwob.ORACLES) == set(miniwob.KINDS)
    pages = miniwob_html_dir() / "miniwob"
    assert [k for k in miniwob.KINDS if not (pages / f"{k}.html").is_file()] == []
    for kind in miniwob.KINDS:  # no timer-driven reward: the page's reward must not depend on wall-clock time
        script = (pages / f"{kind}.html").read_text()
        assert "setInterval" not in script and "new Date()" not in script, kind


def test_every_kind_validates_on_three_seeds() -> None:
    """The oracle scores 1 and the noop 0 on every kind and seed (what ``agentgym tasks validate`` runs)."""
    _require_web()
    ids = [f"{kind}-{seed:03d}" for kind in miniwob.KINDS for seed in SEEDS]
    report = validate("agentgym/Web-v0", task_ids=ids, num_workers=2, progress=False)
    assert report.ok, report.summary()
    assert [(c.oracle, c.noop) for c in report.checks] == [(1.0, 0.0)] * len(ids)


def _wrong_text(turn: Action) -> Action | None:
    """``turn`` with its typed text changed to "9" + text when it is a ``fill`` (None when it is not)."""
    assert isinstance(turn, str)
    found = re.fullmatch(r"<tool_call>(.*)</tool_call>", turn, re.S)
    assert found, turn
    call = json.loads(found.group(1))
    if call["name"] != "fill":
        return None
    return format_tool_call("fill", {**call["arguments"], "text": "9" + call["arguments"]["text"]})


@pytest.mark.parametrize("kind", TYPING_KINDS)
def test_a_wrong_typed_answer_scores_zero(env: WebEnv, kind: str) -> None:
    """The oracle's turns with every typed text changed: the page gives no reward."""
    env.reset(options={"task_id": f"{kind}-000"})
    total, filled = 0.0, 0
    info: dict[str, Any] = {}
    for turn in env.oracle_turns(env.task):
        wrong = _wrong_text(turn)
        filled += wrong is not None
        _, reward, terminated, truncated, info = env.step(wrong or turn)
        total += reward
        if terminated or truncated:
            break
    assert filled >= 1
    assert total == 0.0 and info["reward_components"]["success"] == 0.0
    assert info["termination_reason"] == "page_done", "the oracle's Submit should have ended the page with less than 1"
