"""Built-in environments, registered under the ``agentgym/`` namespace on import."""

from agentgym.registry import register

register("agentgym/ToolUse-v0", "agentgym.envs.tooluse:ToolUseEnv")
register("agentgym/Calculator-v0", "agentgym.envs.tooluse:ToolUseEnv", kwargs={"kinds": ("arithmetic",), "max_turns": 4})
