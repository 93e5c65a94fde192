"""agentgym/Web-v0: MiniWoB++ pages in real Chromium; the page's own state decides the reward."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Iterator
from typing import Any

import psutil
import pytest

import agentgym
from agentgym.envs import miniwob
from agentgym.envs.browser import BrowserEnv
from agentgym.envs.web import WebEnv, miniwob_html_dir
from agentgym.parsing import format_tool_call
from agentgym.sandboxes.browser import Browser, ChromiumBrowser, chromium
from agentgym.testing import require
from agentgym.validate import validate

pytestmark = pytest.mark.browser


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


def _play(env: agentgym.AgentEnv, turns: Iterable[Any]) -> tuple[float, dict[str, Any]]:
    """Step ``turns`` (read lazily, as the oracle policy does), then empty turns until the episode ends."""
    total, info = 0.0, {}
    for turn in turns:
        _, reward, terminated, truncated, info = env.step(turn)
        total += reward
        if terminated or truncated:
            return total, info
    while True:
        _, reward, terminated, truncated, info = env.step("")
        total += reward
        if terminated or truncated:
            return total, info


def _call(env: agentgym.AgentEnv, name: str, **args: Any) -> tuple[str, float, bool, dict[str, Any]]:
    obs, reward, terminated, _, info = env.step(format_tool_call(name, args))
    return obs[0]["content"], reward, terminated, info


def test_tasks_and_construction_are_cheap() -> None:
    env = agentgym.make("agentgym/Web-v0")
    try:
        assert env.unwrapped._browser is None  # no Chromium until the first reset
        assert {t.metadata["kind"] for t in env.task_set} == set(miniwob.KINDS)  # every kind miniwob.py lists
        assert env.task_set.split("test") and env.task_set.split("train")
        assert set(miniwob.ORACLES) == set(miniwob.KINDS)
        assert agentgym.make("agentgym/Web-v0", kinds=["click-button"]).unwrapped.task_set.ids[0] == "click-button-000"
        with pytest.raises(ValueError, match="unknown Web task kinds"):
            agentgym.make("agentgym/Web-v0", kinds=["no-such-kind"])
    finally:
        env.close()


def test_every_kind_validates_on_two_seeds() -> None:
    """``agentgym tasks validate`` on every kind: the oracle scores 1 and doing nothing 0."""
    _require_web()
    ids = [f"{kind}-{seed:03d}" for kind in miniwob.KINDS for seed in (3, 41)]
    report = validate("agentgym/Web-v0", task_ids=ids, num_workers=1, progress=False)
    assert report.ok, report.summary()
    assert len(report.checks) == len(ids)


@pytest.mark.parametrize("kind", ["click-checkboxes", "enter-text"])
def test_oracle_scores_one_and_noop_zero_in_process(env: WebEnv, kind: str) -> None:
    env.reset(options={"task_id": f"{kind}-003"})
    reward, info = _play(env, env.oracle_turns(env.task))
    assert reward == 1.0, env.messages[-3:]
    assert info["reward_components"]["success"] == 1.0 and info["termination_reason"] == "page_done"
    env.reset(options={"task_id": f"{kind}-003"})
    reward, info = _play(env, env.noop_turns(env.task))
    assert reward == 0.0 and info["termination_reason"] == "max_turns"


def test_same_task_same_page(env: WebEnv) -> None:
    first, _ = env.reset(options={"task_id": "click-checkboxes-007"})
    env.step(format_tool_call("click", {"element_id": env.find("checkbox")}))
    again, _ = env.reset(options={"task_id": "click-checkboxes-007"})
    other, _ = env.reset(options={"task_id": "click-checkboxes-008"})
    assert first == again and first != other
    text = first[-1]["content"]
    assert text.startswith("Complete the task described on the web page.\n\nTask: Select")
    assert (
        "\nURL: /miniwob/click-checkboxes.html\n" in text
        and "Last action error: none" in text
        and "] checkbox " in text
    )
    assert "Select" not in text.split("Last action error: none")[1]  # the query is not repeated from the page


def test_wrong_click_ends_the_page_with_zero(env: WebEnv) -> None:
    env.reset(options={"task_id": "click-option-001"})
    wanted = env._query.split("Select ")[1].split(" and click")[0]
    wrong = next(i for i, role, name, _ in env.elements() if role == "radio" and name != wanted)
    _call(env, "click", element_id=wrong)
    reward, info = _play(env, [format_tool_call("click", {"element_id": env.find("button", "Submit")})])
    assert reward == 0.0 and info["termination_reason"] == "page_done"


def test_submit_without_doing_the_task_scores_zero(env: WebEnv) -> None:
    env.reset(options={"task_id": "enter-text-002"})
    reward, info = _play(env, [format_tool_call("submit", {})])
    assert reward == 0.0 and info["termination_reason"] == "submitted"


def test_model_mistakes_become_messages(env: WebEnv) -> None:
    env.reset(options={"task_id": "enter-text-002"})
    text, *_ = _call(env, "click", element_id=99)
    assert "no element [99] on the page" in text and "use an id from the latest observation" in text
    text, _, _, info = _call(env, "fill", element_id=env.find("button", "Submit"), text="x")
    assert text.startswith('Error: tool "fill" raised BrowserActionError')
    assert info["tool_errors"] == {"tool_exception": 1} and not info.get("infra_failure")
    text, *_ = _call(env, "fill", element_id=env.find("textbox"), text="x")
    assert text.startswith("Filled [") and "Task: Enter" in text and '] button "Submit"' in text


@pytest.mark.parametrize(
    "url", ["http://example.com/", "javascript:alert(1)", "file:///etc/passwd", "/miniwob/click-test.html"]
)
def test_navigation_is_refused_and_earns_nothing(env: WebEnv, url: str) -> None:
    env.reset(options={"task_id": "click-button-004"})
    before = env.browser.url
    text, reward, terminated, info = _call(env, "goto", url=url)
    assert text.startswith('Error: tool "goto" raised ValueError: this task is on one page')
    assert (reward, terminated) == (0.0, False) and info["tool_errors"] == {"tool_exception": 1}
    text, *_ = _call(env, "go_back")
    assert "this task is on one page" in text
    assert env.browser.url == before and "Last action error: this task is on one page" in env.observation()
    reward, info = _play(env, [format_tool_call("submit", {})])
    assert reward == 0.0


def test_a_screenshot_on_request(env: WebEnv) -> None:
    _, info = env.reset(options={"task_id": "click-button-000", "screenshot": True})
    assert info["screenshot"].startswith(b"\x89PNG\r\n\x1a\n")
    _, info = env.reset(options={"task_id": "click-button-000"})
    assert "screenshot" not in info


def test_oracle_needs_the_live_page(env: WebEnv) -> None:
    env.reset(options={"task_id": "focus-text-000"})
    with pytest.raises(RuntimeError, match="reads the live page"):
        env.oracle_turns(env.task_set["focus-text-001"])


def test_the_env_uses_the_browser_protocol(env: WebEnv) -> None:
    env.reset(options={"task_id": "click-button-000"})
    assert isinstance(env.browser, Browser) and isinstance(env.browser, ChromiumBrowser)
    assert isinstance(env, BrowserEnv)


class _PrivateBrowserWeb(WebEnv):
    """Web-v0 on a Chromium of its own (not shared with the other envs of this process), to kill or suspend."""

    def make_browser(self) -> Browser:
        return ChromiumBrowser(miniwob_html_dir(), timeout=self.browser_timeout, shared=False)


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _fresh_env(**kwargs: Any) -> tuple[WebEnv, list[psutil.Process], list[psutil.Process]]:
    """A new env on its own browser, with its Playwright driver (node) and Chromium root processes."""
    _require_web()
    before = _children()
    e = _PrivateBrowserWeb(**kwargs)
    e.reset(options={"task_id": "click-button-001"})
    mine = [psutil.Process(pid) for pid in _children() - before]
    drivers = [p for p in mine if p.name().startswith("node")]
    roots = [p for p in mine if "chrom" in p.name() and p.ppid() not in {q.pid for q in mine if "chrom" in q.name()}]
    assert drivers and roots, f"could not find the env's browser among {[p.name() for p in mine]}"
    return e, drivers, roots


def test_a_crashed_browser_ends_the_episode_as_infra_error_and_the_next_reset_relaunches() -> None:
    e, _, roots = _fresh_env()
    try:
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
    e, drivers, roots = _fresh_env(browser_timeout=1.0)
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
