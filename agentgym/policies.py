"""Policies: turn the transcript into the next assistant turn.

A policy implements ``act(ctx) -> Action | Generation``. ``ctx`` is a
:class:`PolicyContext`, one per episode, kept across turns; token-level policies
append the exact token segments they saw and sampled to ``ctx.segments`` and return a
:class:`Generation`. ``act`` may be called from several threads at once (one episode
per thread).

Built-in specs for :func:`make_policy`: ``oracle``, ``noop``, ``random``,
``openai:<base_url>[#model]``, and (with the ``train`` extra) ``hf:<path>`` and
``vllm:<path>``.
"""

from __future__ import annotations

import importlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from agentgym.messages import Action, Message
from agentgym.parsing import without_tools_prompt
from agentgym.spaces import AssistantTurn
from agentgym.trajectory import TokenSegment

if TYPE_CHECKING:
    from agentgym.tasks import Task


@dataclass
class PolicyContext:
    """What a policy sees of one episode; the same object on every turn of it.

    Rollouts fill it from the Gymnasium API alone (``reset``/``step`` and their ``info``), so
    a policy that needs only the transcript and the tools runs against any environment,
    remote ones included. ``env`` and ``task`` are for policies that need the environment
    itself (the oracle calls ``env.oracle_turns(task)``): ``task`` is None where the
    environment does not expose one (``agentgym.rollout.episode_task``).
    """

    env: Any
    """The environment object (a ``gymnasium.Env``; an ``AgentEnv`` when local)."""
    task: Task | None
    """The episode's task when the environment exposes it (a local ``AgentEnv``), else None."""
    messages: list[Message]
    """The whole transcript so far."""
    new_messages: list[Message]
    """Messages added since the policy last acted (the opening messages on turn 0)."""
    tools: list[dict[str, Any]]
    """The environment's tool schemas (OpenAI format)."""
    turn: int = 0
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    segments: list[TokenSegment] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Generation:
    """A sampled turn from a token-level policy (its tokens are already in ``ctx.segments``)."""

    text: str
    finish_reason: str = "stop"


@runtime_checkable
class Policy(Protocol):
    """Anything with a ``name`` that writes the next assistant turn of an episode."""

    name: str

    def act(self, ctx: PolicyContext) -> Action | Generation:
        """The next assistant turn: text, a message dict, or a :class:`Generation` (token-level)."""
        ...


class ScriptedPolicy:
    """Plays a fixed list of turns, then empty turns."""

    def __init__(self, turns: list[Action], name: str = "scripted"):
        self.turns = list(turns)
        self.name = name

    def act(self, ctx: PolicyContext) -> Action:
        """Turn ``ctx.turn`` of the script."""
        return self.turns[ctx.turn] if ctx.turn < len(self.turns) else ""


class OraclePolicy:
    """Plays the task's reference solution (``env.oracle_turns(task)``; needs a local environment)."""

    name = "oracle"

    def act(self, ctx: PolicyContext) -> Action:
        """Turn ``ctx.turn`` of the reference solution."""
        if "turns" not in ctx.state:
            oracle_turns = getattr(ctx.env, "oracle_turns", None)
            if ctx.task is None or oracle_turns is None:
                raise TypeError(
                    f"the oracle policy needs the episode's task and env.oracle_turns(task), which "
                    f"{type(ctx.env).__name__} does not expose (a remote environment keeps them on its server); "
                    f"run it where the environment is local: collect(..., backend='ray') builds the "
                    f"environments on the Ray workers"
                )
            ctx.state["turns"] = oracle_turns(ctx.task)
        turns: list[Action] = ctx.state["turns"]
        return turns[ctx.turn] if ctx.turn < len(turns) else ""


class NoopPolicy:
    """Does nothing (``env.noop_turns(task)``, then empty turns); must score 0."""

    name = "noop"

    def act(self, ctx: PolicyContext) -> Action:
        """Turn ``ctx.turn`` of the environment's do-nothing script."""
        turns: list[Action] = ctx.state.setdefault("turns", ctx.env.noop_turns(ctx.task))
        return turns[ctx.turn] if ctx.turn < len(turns) else ""


class RandomPolicy:
    """Adversarial random turns (garbage, broken calls, unknown tools, huge text)."""

    name = "random"

    def act(self, ctx: PolicyContext) -> Action:
        """A sample of the environment's action space, aimed at its real tools some of the time."""
        space: AssistantTurn | None = ctx.state.get("space")
        if space is None:
            env_space = ctx.env.action_space
            names = env_space if isinstance(env_space, AssistantTurn) else AssistantTurn()
            space = AssistantTurn(names.tool_names, names.arg_names, seed=int(ctx.rng.integers(2**31)))
            ctx.state["space"] = space
        return space.sample()


class OpenAIPolicy:
    """Any OpenAI-compatible chat server (``vllm serve``, llama.cpp, ...); text level only.

    With ``tools=True`` the tool schemas go in the request's ``tools`` (the server renders them
    with the model's own chat template and parses the calls) and the environment's tools block
    is cut from the system message (when the environment describes its tools at all); the server
    must have tool calling enabled (vLLM:
    ``--enable-auto-tool-choice --tool-call-parser <family>``). Default: the block, no ``tools``.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        temperature: float = 0.0,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        api_key: str = "EMPTY",
        tools: bool = False,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.api_key = api_key
        self.tools = tools
        self.name = f"openai:{base_url}#{model}"

    def request(self, ctx: PolicyContext) -> dict[str, Any]:
        """The chat-completions request body for the next turn."""
        messages = without_tools_prompt(ctx.messages, ctx.tools) if self.tools else None
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages or ctx.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if messages is not None:
            body["tools"] = ctx.tools
        return body

    def act(self, ctx: PolicyContext) -> Action:
        """The server's reply to :meth:`request`, as an assistant message dict."""
        body = self.request(ctx)
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            reply = json.loads(resp.read())
        msg = reply["choices"][0]["message"]
        out: dict[str, Any] = {"role": "assistant", "content": msg.get("content")}
        if msg.get("tool_calls"):
            out["tool_calls"] = msg["tool_calls"]
        return out


POLICIES: dict[str, str | Callable[..., Policy]] = {
    "oracle": OraclePolicy,
    "noop": NoopPolicy,
    "random": RandomPolicy,
    "openai": OpenAIPolicy,
    "hf": "agentgym.trainer.policy:HFPolicy",
    "vllm": "agentgym.trainer.policy:VLLMPolicy",
}


def register_policy(prefix: str, factory: str | Callable[..., Policy]) -> None:
    """Make ``make_policy("<prefix>:<arg>")`` build a policy with ``factory(arg, **kwargs)``."""
    POLICIES[prefix] = factory


def make_policy(spec: str | Policy, **kwargs: Any) -> Policy:
    """Build a policy from a spec such as ``oracle``, ``hf:/path/to/model`` or ``openai:http://host:8000/v1#model``."""
    if not isinstance(spec, str):
        return spec
    prefix, sep, arg = spec.partition(":")
    factory = POLICIES.get(prefix)
    if factory is None:
        known = ", ".join(f"{k}:<arg>" if k in ("hf", "vllm", "openai") else k for k in POLICIES)
        raise ValueError(f"unknown policy {spec!r}; use one of: {known}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except ImportError as e:
            raise ImportError(f"policy {prefix!r} needs the training extra: pip install 'agentgym[train]' ({e})") from e
    if prefix == "openai":
        url, _, model = arg.partition("#")
        return factory(url, model or "default", **kwargs)
    if sep:
        return factory(arg, **kwargs)
    return factory(**kwargs)
