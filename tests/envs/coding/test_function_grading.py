"""Function grading beyond HumanEval: io-case tasks, strict comparison, and the checker's verdict.

Io-case tasks are graded case by case; wrong types and infinities score 0 in the sandbox and
in the generated hidden pytest file alike; an exception text that does not encode cannot break
the report; a verdict that cannot be trusted fails closed.
"""

from __future__ import annotations

import json
import secrets

import pytest
from humaneval_helpers import he, module_for

from agentgym.envs.coding.function_grading import FunctionGrader, function_task, is_function_task
from agentgym.envs.coding.humaneval import SOLUTION
from agentgym.tasks import Task

# --- io-case tasks ---------------------------------------------------------------------------


def io_task() -> Task:
    cases = [
        {"args": [[3, 1, 2]], "expected": ([1, 2, 3], 3)},
        {"args": [[]], "expected": ([], 0)},
        {"args": [[2.5, -0.0]], "kwargs": {"reverse": True}, "expected": ([2.5, -0.0], 2)},
    ]
    stub = "def sort_count(xs, reverse=False):\n    raise NotImplementedError\n"
    solution = "def sort_count(xs, reverse=False):\n    return sorted(xs, reverse=reverse), len(xs)\n"
    return function_task(
        "sort-count",
        "Return the sorted list and its length as a tuple.",
        entry_point="sort_count",
        stub=stub,
        solution=solution,
        cases=cases,
    )


def test_io_case_tasks(grader: FunctionGrader) -> None:
    task = io_task()
    assert is_function_task(task) and len(task.verifier["fail_to_pass"]) == 3
    good = grader.grade_files(task, task.solution["files"])
    assert good.resolved and set(good.fail_to_pass.values()) == {"passed"}, good.log
    # a list instead of a tuple fails every case; a partial solution gets a fraction
    as_list = "def sort_count(xs, reverse=False):\n    return [sorted(xs, reverse=reverse), len(xs)]\n"
    assert grader.grade_files(task, {"solution.py": as_list}).f2p_fraction == 0.0
    partial = "def sort_count(xs, reverse=False):\n    return sorted(xs), len(xs)\n"
    assert grader.grade_files(task, {"solution.py": partial}).f2p_fraction == pytest.approx(2 / 3)
    cheat = "class _A(tuple):\n    __eq__ = lambda s, o: True\n\ndef sort_count(xs, reverse=False):\n    return _A()\n"
    result = grader.grade_files(task, {"solution.py": cheat})
    assert result.f2p_fraction == 0.0 and result.integrity


@pytest.mark.parametrize("problem", ["HumanEval/0"])
def test_unencodable_exception_messages_cannot_break_the_report(grader: FunctionGrader, problem: str) -> None:
    """A lone surrogate in the candidate's exception text (or class name) never reaches ``GradeResult``.

    Writing the log as UTF-8 anywhere later would raise on the host.
    """
    task = he(problem)
    cheat = (
        "Bad = type('Bad', (ValueError,), {'__module__': 'x\\udfff'})\n\n"
        "def ENTRY(*args):\n    raise Bad('\\ud800 \\udfff')\n"
    )
    result = grader.grade_files(task, {SOLUTION: module_for(task, cheat, problem)})
    assert not result.resolved and not result.integrity, result.log
    assert "\\ud800" in result.log, result.log
    for text in (result.log, *result.integrity, *result.anomalies):
        text.encode("utf-8")


INF = float("inf")


def test_wrongly_typed_set_members_and_infinite_answers_score_zero(grader: FunctionGrader) -> None:
    cases = [{"args": [[1, 2, 2]], "expected": [{1, 2}, {1: 1, 2: 2}, INF]}]
    solution = "def f(xs):\n    c = {x: xs.count(x) for x in xs}\n    return [set(xs), c, float('inf')]\n"
    task = function_task(
        "sets",
        "Distinct items, their counts, and infinity.",
        entry_point="f",
        stub="def f(xs):\n    raise NotImplementedError\n",
        solution=solution,
        cases=cases,
        float_tol=1e-6,
    )
    good = grader.grade_files(task, task.solution["files"])
    assert good.resolved, good.log
    for wrong in (
        "[{True, 2}, {1: 1, 2: 2}, float('inf')]",
        "[{1, 2}, {True: 1, 2: 2}, float('inf')]",
        "[{1, 2}, {1: 1, 2: 2}, 1e300]",
        "[{1, 2}, {1: 1, 2: 2}, -float('inf')]",
    ):
        result = grader.grade_files(task, {"solution.py": f"def f(xs):\n    return {wrong}\n"})
        assert result.f2p_fraction == 0.0 and not result.integrity, (wrong, result.log)
        # the hidden pytest file embeds plain_equal's source and agrees
        hidden = task.verifier["hidden_tests"]["tests/test_function_cases.py"]
        ns: dict = {}
        exec(compile(hidden.replace("from solution import f", f"def f(xs):\n    return {wrong}\n"), "<h>", "exec"), ns)
        with pytest.raises(AssertionError):
            ns["test_case_0"]()


@pytest.mark.parametrize(
    ("stdout", "exit_code", "timed_out", "why"),
    [
        ("", 0, False, "found 0"),
        ("{n}{v}\n{n}{v}\n", 0, False, "found 2"),
        ("{n}not json\n", 0, False, "does not parse"),
        ("{n}{v}\n", -9, False, "exited with status -9"),
        ("{n}{v}\n", 0, True, "did not finish in time"),
        (
            '{n}{{"outcomes": {{"x": "passed"}}, "failures": [], "integrity": [], "timed_out": false}}\n',
            0,
            False,
            "malformed",
        ),
        (
            '{n}{{"outcomes": {{"t": "passed!"}}, "failures": [], "integrity": [], "timed_out": false}}\n',
            0,
            False,
            "malformed",
        ),
        ("@@agentgym-function-forged@@{v}\n", 0, False, "found 0"),
    ],
)
def test_verdicts_that_cannot_be_trusted_fail_closed(stdout: str, exit_code: int, timed_out: bool, why: str) -> None:
    from agentgym.envs.coding.grading import GradeResult
    from agentgym.sandboxes import ExecResult

    nonce = "@@agentgym-function-" + secrets.token_hex(16) + "@@"
    good = json.dumps({"outcomes": {"t": "passed"}, "failures": [], "integrity": [], "timed_out": False})
    res = ExecResult(exit_code, stdout.format(n=nonce, v=good), "", timed_out=timed_out)
    result = GradeResult({"t": "failed"}, {})
    FunctionGrader._verify(result, res, nonce, ["t"])
    assert not result.resolved and any(why in reason for reason in result.integrity), result.integrity
    trusted = GradeResult({"t": "failed"}, {})
    FunctionGrader._verify(trusted, ExecResult(0, f"{nonce}{good}\n", ""), nonce, ["t"])
    assert trusted.resolved  # the same verdict, on its own and with a clean exit, is accepted
