"""Built-in environments, registered under the ``agentgym/`` namespace on import."""

from agentgym.registry import register

register("agentgym/ToolUse-v0", "agentgym.envs.tooluse:ToolUseEnv")
register(
    "agentgym/Calculator-v0", "agentgym.envs.tooluse:ToolUseEnv", kwargs={"kinds": ("arithmetic",), "max_turns": 4}
)
register("agentgym/CodeRepair-v0", "agentgym.envs.coding.env:CodeRepairEnv")
register("agentgym/HumanEval-v0", "agentgym.envs.coding.humaneval:HumanEvalEnv")
# The demo's single-skill variant: small additions, answered in text (SmolLM2-135M cannot call tools yet).
register(
    "agentgym/Addition-v0",
    "agentgym.envs.tooluse:ToolUseEnv",
    kwargs={
        "kinds": ("addition",),
        "per_kind": 600,
        "tools": ("submit",),
        "answer_in_text": True,
        "tools_in_prompt": False,
        "max_turns": 1,
    },
)
register("agentgym/Web-v0", "agentgym.envs.web:WebEnv")
# Three local web apps (a shop, an admin console, a clinic booking flow) on loopback, state in SQLite, graded
# from the database: multi-step tasks across pages.
register("agentgym/WebApp-v0", "agentgym.envs.webapps.env:WebAppEnv")
# A persistent bash session in a sandbox; the built-in Harbor tasks (or any Harbor folder via source=).
register("agentgym/Terminal-v0", "agentgym.envs.terminal.env:TerminalEnv")
# The demo's multi-call variant: look up two prices, compute the total, submit (>= 2 tool calls; ~170 test
# tasks); a short prompt (tool signatures, not schemas) and a turn without a call ends the episode: CPU-sized.
register(
    "agentgym/ToolChain-v0",
    "agentgym.envs.tooluse:ToolUseEnv",
    kwargs={
        "kinds": ("chain",),
        "per_kind": 800,
        "tools": ("lookup", "calculator", "submit"),
        "compact_tools": True,
        "tools_in_prompt": False,
        "end_on_text": True,
        "max_turns": 5,
    },
)
