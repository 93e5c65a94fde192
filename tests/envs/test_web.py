"""agentgym/Web-v0: MiniWoB++ pages in real Chromium; the page's own state decides the reward."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import agentgym
from agentgym.envs.web import WebEnv
from agentgym.parsing import format_tool_call
from agentgym.sandboxes.browser import Browser, ChromiumBrowser, chromium
from agentgym.testing import require

pytestmark = pytest.mark.browser

KINDS = ("click-button", "click-link", "click-option", "click-checkboxes", "enter-text", "focus-text")


def _require_web() -> None:
    require(os.path.exists("/usr/bin/chromium"), "Chromium is not installed: apt-get install chromium")
    require(importlib.util.find_spec("playwright") is not None, "Playwright is not installed: pip install playwright")
    require(importlib.util.find_spec("miniwob") is not None, "MiniWoB++ pages are not installed: pip install miniwob")


@pytest.fixture(scope="module")
def env() -> Iterator[agentgym.AgentEnv]:
    """One env (one Chromium) for the module."""
    _require_web()
    e = agentgym.make("agentgym/Web-v0").unwrapped
    yield e
    e.close()


def _play(env: agentgym.AgentEnv, turns: list[Any]) -> tuple[float, dict[str, Any]]:
    total, info = 0.0, {}
    for turn in turns:
        _, reward, terminated, truncated, info = env.step(turn)
        total += reward
        if terminated or truncated:
            return total, info
    while True:  # pad with empty turns until a limit ends the episode
        _, reward, terminated, truncated, info = env.step("")
        total += reward
        if terminated or truncated:
            return total, info


def test_tasks_and_construction_are_cheap() -> None:
    env = agentgym.make("agentgym/Web-v0")
    try:
        assert env.unwrapped._browser is None  # no Chromium until the first reset
        assert {t.metadata["kind"] for t in env.task_set} == set(KINDS)
        assert env.task_set.split("test") and env.task_set.split("train")
    finally:
        env.close()


@pytest.mark.parametrize("kind", KINDS)
def test_oracle_scores_one_and_noop_zero(env: agentgym.AgentEnv, kind: str) -> None:
    env.reset(options={"task_id": f"{kind}-003"})
    reward, info = _play(env, env.oracle_turns(env.task))
    assert reward == 1.0, env.messages[-3:]
    assert info["reward_components"]["success"] == 1.0
    env.reset(options={"task_id": f"{kind}-003"})
    reward, info = _play(env, env.noop_turns(env.task))
    assert reward == 0.0 and info["termination_reason"] == "max_turns"


def test_same_task_same_page(env: agentgym.AgentEnv) -> None:
    first, _ = env.reset(options={"task_id": "click-checkboxes-007"})
    env.step(format_tool_call("click", {"element_id": 1}))
    again, _ = env.reset(options={"task_id": "click-checkboxes-007"})
    other, _ = env.reset(options={"task_id": "click-checkboxes-008"})
    assert first == again and first != other
    assert "Task: Select" in first[-1]["content"] and "[1] checkbox" in first[-1]["content"]


def test_wrong_click_ends_the_page_with_zero(env: agentgym.AgentEnv) -> None:
    obs, _ = env.reset(options={"task_id": "click-option-001"})
    oracle = env.oracle_turns(env.task)
    right = oracle[0]
    wrong_id = next(
        i
        for i in range(1, 10)
        if format_tool_call("click", {"element_id": i}) != right and f"[{i}] radio" in obs[-1]["content"]
    )
    env.step(format_tool_call("click", {"element_id": wrong_id}))
    reward, info = _play(env, [oracle[-2]])  # click Submit with the wrong option selected
    assert reward == 0.0 and info["termination_reason"] == "page_done"


def test_submit_without_doing_the_task_scores_zero(env: agentgym.AgentEnv) -> None:
    env.reset(options={"task_id": "enter-text-002"})
    reward, info = _play(env, [format_tool_call("submit", {})])
    assert reward == 0.0 and info["termination_reason"] == "submitted"


def test_model_mistakes_become_messages(env: agentgym.AgentEnv) -> None:
    env.reset(options={"task_id": "enter-text-002"})
    obs, *_ = env.step(format_tool_call("click", {"element_id": 99}))
    assert "no element [99] on the page; call observe()" in obs[0]["content"]
    obs, *_, info = env.step(format_tool_call("type", {"element_id": 2, "text": "x"}))  # [2] is the Submit button
    assert obs[0]["content"].startswith('Error: tool "type" raised BrowserActionError: filling')
    assert info["tool_errors"] == {"tool_exception": 1} and not info.get("infra_failure")
    obs, *_ = env.step(format_tool_call("observe", {}))
    assert obs[0]["content"].startswith("Task: Enter") and '[2] button "Submit"' in obs[0]["content"]


def test_oracle_needs_the_live_page(env: agentgym.AgentEnv) -> None:
    env.reset(options={"task_id": "focus-text-000"})
    with pytest.raises(RuntimeError, match="reads the live page"):
        env.oracle_turns(env.task_set["focus-text-001"])


def test_the_env_uses_the_browser_protocol(env: agentgym.AgentEnv) -> None:
    env.reset(options={"task_id": "click-button-000"})
    assert isinstance(env.browser, Browser) and isinstance(env.browser, ChromiumBrowser)


def _browser_processes(before: set[int]) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The Playwright driver (node) and Chromium root processes among the children started since ``before``."""
    mine = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    drivers = [p for p in mine if p.name().startswith("node")]
    roots = [p for p in mine if "chrom" in p.name() and not p.parent().name().startswith("chrom")]
    assert drivers and roots, f"could not find the env's browser among {[p.name() for p in mine]}"
    return drivers, roots


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _fresh_env(**kwargs: Any) -> tuple[WebEnv, set[int]]:
    _require_web()
    before = _children()
    e = agentgym.make("agentgym/Web-v0", **kwargs).unwrapped
    assert isinstance(e, WebEnv)
    e.reset(options={"task_id": "click-button-001"})
    return e, before


def test_a_crashed_browser_ends_the_episode_as_infra_error_and_the_next_reset_relaunches() -> None:
    e, before = _fresh_env()
    try:
        _, roots = _browser_processes(before)
        for process in roots:
            process.kill()
        _, reward, terminated, truncated, info = e.step(format_tool_call("click", {"element_id": 1}))
        assert (reward, terminated, truncated) == (0.0, False, True)
        assert info["termination_reason"] == "infra_error" and info["infra_failure"] is True
        assert "BrowserCrashed: Chromium failed" in info["infra_error"]
        e.reset(options={"task_id": "click-button-001"})
        reward, info = _play(e, e.oracle_turns(e.task))
        assert reward == 1.0 and not info["infra_failure"]
    finally:
        e.close()


def test_a_hung_browser_ends_the_episode_as_infra_error_and_the_next_reset_replaces_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chromium, "HARD_DEADLINE_GRACE", 0.5)
    e, before = _fresh_env(browser_timeout=1.0)
    drivers, roots = _browser_processes(before)
    try:
        hung = e.browser
        for process in drivers:
            process.suspend()  # the browser stops answering
        *_, truncated, info = e.step(format_tool_call("click", {"element_id": 1}))
        assert truncated and info["termination_reason"] == "infra_error"
        assert "BrowserCrashed: Chromium did not answer" in info["infra_error"]
        e.reset(options={"task_id": "click-button-001"})
        assert e.browser is not hung
        reward, _ = _play(e, e.oracle_turns(e.task))
        assert reward == 1.0
    finally:
        e.close()
        for process in drivers + roots:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
