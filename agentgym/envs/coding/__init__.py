"""Coding environments: repositories in a sandbox, graded by hidden tests.

* ``agentgym/CodeRepair-v0``: multi-turn repository repair (:class:`CodeRepairEnv`).
* ``agentgym/HumanEval-v0``: single-turn function completion (:class:`HumanEvalEnv`).

Tasks use the shared format described in :mod:`agentgym.envs.coding.repo`.
"""

from agentgym.envs.coding.env import CodeRepairEnv, CodingEnv, load_source
from agentgym.envs.coding.function_grading import FunctionGrader, function_task, is_function_task
from agentgym.envs.coding.grading import Grader, GradeResult
from agentgym.envs.coding.humaneval import HumanEvalEnv, load_humaneval
from agentgym.envs.coding.repo import TaskFormatError, check_task, make_task

__all__ = [
    "CodeRepairEnv",
    "CodingEnv",
    "FunctionGrader",
    "GradeResult",
    "Grader",
    "HumanEvalEnv",
    "TaskFormatError",
    "check_task",
    "function_task",
    "is_function_task",
    "load_humaneval",
    "load_source",
    "make_task",
]
