"""Helpers of the function-grading red team: HumanEval problems, cheats applied to them, scores."""

from __future__ import annotations

import textwrap

from agentgym.envs.coding.function_grading import FunctionGrader
from agentgym.envs.coding.humaneval import SOLUTION, load_humaneval
from agentgym.tasks import Task

# problem -> (a base type of its result, a wrong value of that type)
PROBLEMS = {
    "HumanEval/0": (int, 7),  # bool results (bool cannot be subclassed)
    "HumanEval/2": (float, 9.0),  # floats compared with a tolerance
    "HumanEval/8": (tuple, (9, 9)),  # tuple results
    "HumanEval/29": (list, ["zzz"]),  # list results
    "HumanEval/32": (float, 1e9),  # find_zero, checked through the prompt's poly()
    "HumanEval/38": (str, "zzz"),  # decode_cyclic, checked through the prompt's encode_cyclic()
}
ALL = list(PROBLEMS)


def he(problem: str) -> Task:
    return load_humaneval()[problem]


def module_for(task: Task, cheat: str, problem: str) -> str:
    """The stub prompt, then the cheat (which redefines the entry point)."""
    base, wrong = PROBLEMS[problem]
    code = textwrap.dedent(cheat).replace("ENTRY", task.metadata["entry_point"])
    code = code.replace("BASE", base.__name__).replace("WRONG", repr(wrong))
    return task.metadata["humaneval_prompt"] + "    pass\n\n\n" + code


def score(grader: FunctionGrader, task: Task, module: str) -> float:
    result = grader.grade_files(task, {SOLUTION: module})
    score.last = result  # type: ignore[attr-defined]
    return float(result.resolved)


def naive_passes(grader: FunctionGrader, task: Task, module: str) -> bool:
    """Prompt + completion + check in one interpreter; passes when it exits 0 (the old, in-process way)."""
    import tempfile
    from pathlib import Path

    spec = task.verifier["function"]
    program = f"{module}\n\n{spec['check']}\n\ncheck({spec['entry_point']})\n"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "solution.py").write_text(module)
        Path(tmp, "tests").mkdir()
        Path(tmp, "tests", "test_check.py").write_text(task.verifier["hidden_tests"]["tests/test_check.py"])
        sandbox = grader.provider.acquire(tmp)
    try:
        return sandbox.exec(["python3", "-c", program], timeout=30).exit_code == 0
    finally:
        grader.provider.release(sandbox)


def assert_cheat_fails(
    grader: FunctionGrader, cheat: str, problems: list[str], *, flagged: bool = False, naive: list[str] = ()
) -> None:
    for problem in problems:
        task = he(problem)
        honest = task.solution["files"][SOLUTION]
        assert score(grader, task, honest) == 1.0, (problem, score.last.summary(), score.last.log)
        module = module_for(task, cheat, problem)
        assert score(grader, task, module) == 0.0, (problem, score.last.summary())
        if flagged:
            assert score.last.integrity, (problem, score.last.summary(), score.last.log)
        if problem in naive and grader.provider.kind == "local":
            assert naive_passes(grader, task, module), f"{problem}: the cheat does not even beat the naive harness"
