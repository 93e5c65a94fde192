"""Checking that a coding task's tests mean what the task says, by running them."""

from __future__ import annotations

from pathlib import Path

from agentgym.tasks import Task

from ..grading import Grader
from ..repo import solution_files
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


def grade_task(task: Task, grader: Grader) -> list[str]:
    """Grade a task's reference fix and its unchanged base with the coding environments' grader.

    The fix must score 1 and the base 0, as ``agentgym tasks validate`` requires. The
    grader adds what synth's own runs do not: the harness's integrity checks and its
    sandbox (no dependencies beyond the sandbox's own Python).

    Args:
        task: A coding task in the shared format.
        grader: The grader (its provider decides the backend).

    Returns:
        One line per problem; empty when the grader agrees with the task.
    """
    problems = []
    fixed = grader.grade_files(task, solution_files(task))
    if not fixed.resolved:
        failing = [f"{t} {o}" for t, o in {**fixed.fail_to_pass, **fixed.pass_to_pass}.items() if o != "passed"]
        why = fixed.integrity[:2] or failing[:3] or fixed.anomalies[:2]
        problems.append(f"the grader does not score the fix 1 ({'; '.join(why)})")
    if grader.grade_files(task, {}).resolved:
        problems.append("the grader scores the unchanged base 1")
    return problems
