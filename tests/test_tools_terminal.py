"""``@tool(terminal=True)``: a successful call ends the episode after its turn; a failed one does not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentgym import AgentEnv, Rubric, Task, TaskSet, tool
from agentgym.parsing import format_tool_call
from agentgym.rewards import step_cost
from agentgym.tools import as_tool, tools_of

NOT_RUN = "Not run: an earlier call in this turn ended the episode."


class Quiz(AgentEnv):
    """One question; ``answer`` is terminal and sets no reason of its own, ``give_up`` calls ``end``."""

    default_max_turns = 5

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task("q0", "What is 6 * 7?", verifier={"answer": 42}, split="train")])

    def build_rubric(self) -> Rubric:
        rubric = Rubric()
        rubric.add("correct", lambda env: float(env.answered == env.task.verifier["answer"]))
        rubric.add("step_cost", step_cost, weight=0.1, kind="process")
        return rubric

    def setup(self, task: Task) -> None:
        self.answered: int | None = None
        self.notes: list[str] = []

    @tool
    def note(self, text: str) -> str:
        """Write a note.

        Args:
            text: the note
        """
        self.notes.append(text)
        return "noted"

    @tool(terminal=True)
    def answer(self, value: int) -> str:
        """Give the final answer; this ends the episode.

        Args:
            value: the answer
        """
        if value < 0:
            raise ValueError("the answer is not negative; try again")
        self.answered = value
        return "Answer recorded."

    @tool(terminal=True, timeout=0.2)
    def slow_answer(self, value: int) -> str:
        """Give the final answer, too slowly.

        Args:
            value: the answer
        """
        time.sleep(1.0)
        self.answered = value
        return "late"

    @tool(terminal=True)
    def give_up(self) -> str:
        """Stop without an answer."""
        self.end("gave_up")
        return "Given up."


def call(name: str, **args: Any) -> str:
    return format_tool_call(name, args)


@pytest.fixture
def env() -> Iterator[Quiz]:
    env = Quiz()
    env.reset(seed=0)
    yield env
    env.close()


def test_terminal_flag_is_kept_by_the_decorator_binding_and_as_tool() -> None:
    tools = {t.name: t for t in tools_of(Quiz())}
    assert {name: t.terminal for name, t in tools.items()} == {
        "note": False,
        "answer": True,
        "slow_answer": True,
        "give_up": True,
    }

    @tool(terminal=True)
    def done() -> str:
        """Finish."""
        return "ok"

    assert as_tool(done).terminal and not as_tool(lambda: None).terminal


def test_a_successful_terminal_call_ends_the_episode_and_is_graded(env: Quiz) -> None:
    _, reward, terminated, truncated, info = env.step(call("answer", value=42))
    assert (terminated, truncated, info["termination_reason"]) == (True, False, "terminal_tool")
    # Graded as any terminated episode: outcome added to the turn's process reward.
    assert info["outcome_reward"] == 1.0 and info["infra_failure"] is False
    assert info["reward_components"] == {"step_cost": -1.0, "correct": 1.0}
    assert reward == pytest.approx(1.0 - 0.1)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(call("note", text="too late"))


def test_a_wrong_answer_still_ends_the_episode_with_outcome_zero(env: Quiz) -> None:
    _, reward, terminated, _, info = env.step(call("answer", value=41))
    assert terminated and info["outcome_reward"] == 0.0 and reward == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (call("answer", value="forty-two"), "bad_arguments"),
        (call("answer"), "bad_arguments"),
        (call("answer", value=-1), "tool_exception"),
        (call("slow_answer", value=42), "timeout"),
    ],
)
def test_a_failed_terminal_call_ends_nothing(env: Quiz, action: str, error: str) -> None:
    _, reward, terminated, truncated, info = env.step(action)
    assert (terminated, truncated, info["tool_errors"]) == (False, False, {error: 1})
    assert "termination_reason" not in info and reward == pytest.approx(-0.1)
    assert env.messages[-1]["content"].startswith("Error")
    # The model can try again in the next turn.
    _, _, terminated, _, info = env.step(call("answer", value=42))
    assert terminated and info["outcome_reward"] == 1.0


def test_calls_after_a_terminal_call_in_the_same_turn_are_not_run(env: Quiz) -> None:
    turn = call("note", text="before") + call("answer", value=42) + call("note", text="after") + call("give_up")
    _, _, terminated, _, info = env.step(turn)
    assert terminated and info["termination_reason"] == "terminal_tool"
    assert env.notes == ["before"]
    answers = [m["content"] for m in env.messages if m["role"] == "tool"]
    assert answers == ["noted", "Answer recorded.", NOT_RUN, NOT_RUN]
    assert info["tool_calls"] == 4 and info["tool_errors"] == {}


def test_a_failed_terminal_call_does_not_stop_the_calls_after_it(env: Quiz) -> None:
    _, _, terminated, _, info = env.step(call("answer", value=-5) + call("note", text="after"))
    assert not terminated and env.notes == ["after"] and info["tool_errors"] == {"tool_exception": 1}


def test_a_terminal_tool_that_calls_end_keeps_its_reason(env: Quiz) -> None:
    _, _, terminated, _, info = env.step(call("give_up"))
    assert terminated and info["termination_reason"] == "gave_up" and info["outcome_reward"] == 0.0


def test_builtin_submit_tools_are_terminal_and_keep_their_reason() -> None:
    import agentgym

    env = agentgym.make("agentgym/ToolUse-v0")
    env.reset(options={"task_id": "arithmetic-0000"})
    assert [t.name for t in env.tools if t.terminal] == ["submit"]
    answer = env.task.verifier["answer"]
    _, reward, terminated, _, info = env.step(call("submit", answer=answer) + call("calculator", expression="1+1"))
    assert terminated and info["termination_reason"] == "submitted" and reward == 1.0
    assert env.messages[-1]["content"] == NOT_RUN
    env.close()
