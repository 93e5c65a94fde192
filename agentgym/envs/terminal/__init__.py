"""Shell tasks: ``agentgym/Terminal-v0`` and the Harbor task format (see :mod:`agentgym.harbor`)."""

from agentgym.envs.terminal.env import BUILTIN_TASKS, TerminalEnv, load_source
from agentgym.envs.terminal.verify import Verdict, verify

__all__ = ["BUILTIN_TASKS", "TerminalEnv", "Verdict", "load_source", "verify"]
