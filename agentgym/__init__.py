"""agentgym: Gymnasium environments for tool-using LLM agents, and a GRPO trainer.

Quick start::

    import agentgym
    env = agentgym.make("agentgym/ToolUse-v0")
    obs, info = env.reset(seed=0)
    trajs = agentgym.collect("agentgym/ToolUse-v0", "oracle", num_tasks=8)
"""

from agentgym.env import AgentEnv, TurnRecord
from agentgym.errors import AgentGymError, GraderError, InfrastructureError, RewardError, SandboxError
from agentgym.messages import Action, Message
from agentgym.parsing import PARSERS, ParsedAction, format_tool_call, parse_action
from agentgym.policies import Generation, Policy, PolicyContext, make_policy, register_policy
from agentgym.registry import list_envs, load_plugins, make, register
from agentgym.rewards import RewardFunc, Rubric
from agentgym.rollout import collect, run_episode
from agentgym.tasks import Task, TaskSet, stable_split
from agentgym.tools import Tool, ToolCall, tool
from agentgym.trajectory import Step, TokenSegment, Trajectory, load_jsonl, save_jsonl

__version__ = "0.1.0"

__all__ = [
    "PARSERS",
    "Action",
    "AgentEnv",
    "AgentGymError",
    "Generation",
    "GraderError",
    "InfrastructureError",
    "Message",
    "ParsedAction",
    "Policy",
    "PolicyContext",
    "RewardError",
    "RewardFunc",
    "Rubric",
    "SandboxError",
    "Step",
    "Task",
    "TaskSet",
    "TokenSegment",
    "Tool",
    "ToolCall",
    "Trajectory",
    "TurnRecord",
    "collect",
    "format_tool_call",
    "list_envs",
    "load_jsonl",
    "load_plugins",
    "make",
    "make_policy",
    "parse_action",
    "register",
    "register_policy",
    "run_episode",
    "save_jsonl",
    "stable_split",
    "tool",
]

import agentgym.envs  # noqa: F401  (registers the built-in environments)
