"""Shell tasks: ``agentgym/Terminal-v0`` and the Harbor task format (see :mod:`agentgym.harbor`).

The grading itself is :func:`agentgym.envs.terminal.verify.verify`.
"""

from agentgym.envs.terminal.env import BUILTIN_TASKS, TerminalEnv, load_source
from agentgym.envs.terminal.verify import Verdict

__all__ = ["BUILTIN_TASKS", "TerminalEnv", "Verdict", "load_source"]
