"""Checking that a coding task's tests mean what the task says, by running them."""

from __future__ import annotations

from pathlib import Path

from agentgym.tasks import Task

from .runner import SandboxKind, run_task_tests


def check_task_tests(
    task: Task, sandbox: SandboxKind = "none", timeout: float = 300.0, deps: str | Path | None = None
) -> list[str]:
    """Run a task's tests before and after its reference fix.

    With the hidden tests added, the base state must fail every FAIL_TO_PASS test and
    pass every PASS_TO_PASS test; base plus solution must pass them all.

    Args:
        task: A coding task in the shared format.
        sandbox: Which backend runs the tests.
        timeout: Seconds per run.
        deps: A host folder of the dependencies the tests need (``SynthResult.deps.path``).

    Returns:
        One line per problem; empty when the task is sound.
    """
    v = task.verifier
    hidden = v.get("hidden_tests", {})
    before = run_task_tests({**task.setup["files"], **hidden}, sandbox, timeout, deps=deps)
    after = run_task_tests({**task.setup["files"], **task.solution["files"], **hidden}, sandbox, timeout, deps=deps)
    problems = []
    for t in v["fail_to_pass"]:
        if t in before.passed:
            problems.append(f"FAIL_TO_PASS {t} passes before the fix")
        if t not in after.passed:
            problems.append(f"FAIL_TO_PASS {t} does not pass with the fix ({after.outcome(t)})")
    for t in v.get("pass_to_pass", []):
        for name, run in (("before", before), ("with", after)):
            if t not in run.passed:
                problems.append(f"PASS_TO_PASS {t} does not pass {name} the fix ({run.outcome(t)})")
    return problems
