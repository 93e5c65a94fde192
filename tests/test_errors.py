"""One InfrastructureError hierarchy: every layer raises it, the environment catches it by type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import agentgym
import agentgym.errors
import agentgym.sandboxes
import agentgym.sandboxes.base
import agentgym.tools
from agentgym import AgentEnv, Rubric, Task, TaskSet, tool
from agentgym.errors import AgentGymError, GraderError, InfrastructureError, SandboxError
from agentgym.parsing import format_tool_call
from agentgym.sandboxes import LocalSandbox


def test_one_class_per_error_wherever_it_is_imported_from() -> None:
    assert agentgym.sandboxes.SandboxError is agentgym.sandboxes.base.SandboxError is SandboxError
    assert agentgym.SandboxError is SandboxError and agentgym.GraderError is GraderError
    assert agentgym.tools.InfrastructureError is agentgym.InfrastructureError is InfrastructureError
    assert agentgym.AgentGymError is AgentGymError
    for cls in (SandboxError, GraderError):
        assert issubclass(cls, InfrastructureError)
    # Still a RuntimeError, so code written before the hierarchy keeps catching it.
    assert issubclass(InfrastructureError, AgentGymError) and issubclass(InfrastructureError, RuntimeError)


class SandboxErrorLookalike(RuntimeError):
    """Named like an infrastructure error but outside the hierarchy: a tool's own bug."""


SandboxErrorLookalike.__name__ = SandboxErrorLookalike.__qualname__ = "SandboxError"


class QuotaExhausted(InfrastructureError):
    """An infrastructure error whose name says nothing about sandboxes."""


class Workbench(AgentEnv):
    """A shell tool over a real sandbox, and tools that fail in the ways a layer can."""

    def __init__(self, grader_error: Exception | None = None, **kwargs: Any) -> None:
        self.grader_error = grader_error
        self.sandbox: LocalSandbox | None = None
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task("t0", "Run a command.", split="train")])

    def build_rubric(self) -> Rubric:
        return Rubric().add("graded", self._grade)

    def _grade(self, env: AgentEnv) -> float:
        if self.grader_error is not None:
            raise self.grader_error
        return 1.0

    def setup(self, task: Task) -> None:
        self.sandbox = LocalSandbox()

    def teardown(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()

    @tool
    def shell(self, command: str) -> str:
        """Run a shell command in the sandbox.

        Args:
            command: the command
        """
        assert self.sandbox is not None
        return self.sandbox.exec(command, timeout=10).output

    @tool
    def lookalike(self) -> str:
        """Raise an error that is only named like an infrastructure error."""
        raise SandboxErrorLookalike("not really")

    @tool
    def quota(self) -> str:
        """Raise an infrastructure error of a subclass defined outside agentgym."""
        raise QuotaExhausted("the API quota is spent")

    @tool(terminal=True)
    def submit(self) -> str:
        """Finish."""
        return "Submitted."


def call(name: str, **args: Any) -> str:
    return format_tool_call(name, args)


@pytest.fixture
def bench() -> Iterator[Workbench]:
    env = Workbench()
    env.reset(seed=0)
    yield env
    env.close()


def test_a_dead_sandbox_ends_the_episode_as_an_infrastructure_failure(bench: Workbench) -> None:
    _, _, _, truncated, info = bench.step(call("shell", command="echo alive"))
    assert not truncated and bench.messages[-1]["content"] == "alive\n"
    assert bench.sandbox is not None
    bench.sandbox.close()  # the backend raises SandboxError from now on
    _, reward, terminated, truncated, info = bench.step(call("shell", command="echo again") + call("submit"))
    assert (terminated, truncated, info["termination_reason"], info["infra_failure"]) == (
        False,
        True,
        "infra_error",
        True,
    )
    assert info["infra_error"].startswith("SandboxError: ") and info["outcome_reward"] is None and reward == 0.0
    answers = [m["content"] for m in bench.messages if m["role"] == "tool"]
    assert "not your fault" in answers[-2] and answers[-1].startswith("Not run")


def test_recognised_by_type_not_by_name(bench: Workbench) -> None:
    _, _, _, truncated, info = bench.step(call("lookalike"))
    assert not truncated and info["tool_errors"] == {"tool_exception": 1}
    assert bench.messages[-1]["content"] == 'Error: tool "lookalike" raised SandboxError: not really'
    _, _, _, truncated, info = bench.step(call("quota"))
    assert truncated and info["termination_reason"] == "infra_error"
    assert info["infra_error"] == "QuotaExhausted: the API quota is spent"


def test_a_grader_error_is_an_infrastructure_failure_not_a_zero() -> None:
    env = Workbench(grader_error=GraderError("the test harness reported nothing"))
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(call("submit"))
    assert (terminated, truncated, info["termination_reason"], info["infra_failure"]) == (
        False,
        True,
        "infra_error",
        True,
    )
    assert info["infra_error"] == "GraderError: the test harness reported nothing" and reward == 0.0
    env.close()


def test_any_other_grader_exception_is_a_bug_and_propagates() -> None:
    env = Workbench(grader_error=KeyError("verifier"))
    env.reset(seed=0)
    with pytest.raises(KeyError, match="verifier"):
        env.step(call("submit"))
    env.close()
