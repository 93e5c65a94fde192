"""Registering environments from user code and from an installed plugin."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import agentgym
from agentgym import AgentEnv, Rubric, Task, TaskSet, tool


class EchoEnv(AgentEnv):
    """Repeat the word back with the ``say`` tool."""

    def load_tasks(self) -> TaskSet:
        return TaskSet(
            [Task(f"echo-{w}", f"Say '{w}'.", verifier={"word": w}) for w in ("red", "green", "blue", "cyan", "pink")]
        )

    def build_rubric(self) -> Rubric:
        return Rubric().add("said_it", lambda env: float(env.said == env.task.verifier["word"]))

    def setup(self, task: Task) -> None:
        self.said = None

    @tool
    def say(self, word: str) -> str:
        """Say a word and finish."""
        self.said = word
        self.end()
        return "ok"

    def oracle_turns(self, task: Task) -> list:
        return [agentgym.format_tool_call("say", {"word": task.verifier["word"]})]


def test_register_from_user_module() -> None:
    env_id = agentgym.register("Echo-v0", EchoEnv, override=True)
    assert env_id == "agentgym/Echo-v0"
    assert env_id in agentgym.list_envs()
    env = gym.make("agentgym/Echo-v0").unwrapped
    _obs, info = env.reset(options={"task_id": "echo-red"})
    _, reward, terminated, _, info = env.step(env.oracle_turns(env.task)[0])
    assert (reward, terminated, info["termination_reason"]) == (1.0, True, "submitted")
    env.close()
    [traj] = agentgym.collect("agentgym/Echo-v0", "oracle", tasks=["echo-blue"], progress=False)
    assert traj.outcome_reward == 1.0


def test_registering_twice_asks_for_a_version_bump() -> None:
    agentgym.register("Echo-v9", EchoEnv, override=True)
    with pytest.raises(ValueError, match=r"already registered .* bump the version"):
        agentgym.register("Echo-v9", "somewhere:Else")


def test_unknown_id_lists_registered() -> None:
    with pytest.raises(gym.error.NameNotFound, match=r"registered: .*agentgym/ToolUse-v0"):
        agentgym.make("agentgym/Nope-v0")


def test_plugin_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real installed distribution (dist-info on sys.path) declaring an agentgym.envs entry point."""
    pkg = tmp_path / "agentgym_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent('''
        import agentgym
        from agentgym import AgentEnv, Task, TaskSet, Rubric, tool

        class CountEnv(AgentEnv):
            env_id = "agentgym/PluginCount-v0"

            def load_tasks(self):
                return TaskSet([Task(f"n{i}", f"Count to {i}.", verifier={"n": i}) for i in range(1, 6)])

            def build_rubric(self):
                return Rubric().add("right", lambda env: float(env.got == env.task.verifier["n"]))

            def setup(self, task):
                self.got = None

            @tool
            def answer(self, n: int) -> str:
                """Answer."""
                self.got = n
                self.end()
                return "ok"

        def register_all():
            agentgym.register("agentgym/PluginHello-v0", CountEnv)
    ''')
    )
    dist = tmp_path / "agentgym_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agentgym-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[agentgym.envs]\ncount = agentgym_plugin_demo:CountEnv\nhello = agentgym_plugin_demo:register_all\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = agentgym.load_plugins(force=True)
    assert {"count", "hello"} <= set(loaded)
    ids = agentgym.list_envs()
    assert "agentgym/PluginCount-v0" in ids and "agentgym/PluginHello-v0" in ids
    env = agentgym.make("PluginCount-v0")
    env.reset(options={"task_id": "n3"})
    _, reward, *_ = env.step('<tool_call>{"name": "answer", "arguments": {"n": 3}}</tool_call>')
    assert reward == 1.0
    env.close()
    sys.modules.pop("agentgym_plugin_demo", None)
    for env_id in ("agentgym/PluginCount-v0", "agentgym/PluginHello-v0"):
        del gym.registry[env_id]


def test_broken_plugin_warns_and_does_not_break(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[agentgym.envs]\nbroken = no_such_module_xyz:Env\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="plugin 'broken' .* failed to load"):
        agentgym.load_plugins(force=True)
    assert "agentgym/ToolUse-v0" in agentgym.list_envs()
