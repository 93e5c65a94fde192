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
import os
import threading
import uuid
from collections.abc import Callable, Iterator
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
    script = "oracle_turns"

    def act(self, ctx: PolicyContext) -> Action:
        """Turn ``ctx.turn`` of the scripted turns.

        A script given as an iterator is read lazily: its next turn is taken only when the
        policy acts, that is after the previous turn was stepped, so an oracle may read the
        live state (a browser page) that the previous turn produced.
        """
        if "turns" not in ctx.state:
            ctx.state["turns"] = _scripted_turns(ctx, self.name, self.script)
        turns: list[Action] | Iterator[Action] = ctx.state["turns"]
        if not isinstance(turns, list):
            return next(turns, "")
        return turns[ctx.turn] if ctx.turn < len(turns) else ""


class NoopPolicy(OraclePolicy):
    """Does nothing (``env.noop_turns(task)``, then empty turns); must score 0. Needs a local environment."""

    name = "noop"
    script = "noop_turns"


def _scripted_turns(ctx: PolicyContext, policy: str, method: str) -> list[Action] | Iterator[Action]:
    """``env.<method>(task)``, or a clear error where the environment keeps its tasks elsewhere."""
    script = getattr(ctx.env, method, None)
    if ctx.task is None or script is None:
        raise TypeError(
            f"the {policy} policy needs the episode's task and env.{method}(task), which "
            f"{type(ctx.env).__name__} does not expose (a remote environment keeps them on its server); "
            f"run it where the environment is local: collect(..., backend='ray') builds the "
            f"environments on the Ray workers"
        )
    turns = script(ctx.task)
    if isinstance(turns, list):
        return turns
    if isinstance(turns, Iterator):
        return turns
    return list(turns)


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
    """Any OpenAI-compatible chat server, through the official ``openai`` client.

    Spec: ``openai:<base_url>[#model]`` (``openai:http://127.0.0.1:8000/v1#tiny``); an empty
    base URL means ``$OPENAI_BASE_URL`` or OpenAI's own. The API key is ``api_key=``, else
    ``$AGENTGYM_OPENAI_API_KEY``, else ``$OPENAI_API_KEY``; a local server needs none.

    With ``tools=True`` (the default) the environment's tool schemas go in the request's
    ``tools`` and its tools block is cut from the system message (the server renders the tools
    with the model's own chat template and parses the calls; vLLM needs
    ``--enable-auto-tool-choice --tool-call-parser <family>``); the reply's ``tool_calls`` become
    the assistant message the environment steps with. ``tools=False`` sends the transcript as it
    is (the block in the system message, calls written as text) for servers without tool calling.

    Rate limits (429), server errors (5xx), timeouts and dropped connections are retried with
    exponential backoff (the client's own retries, ``Retry-After`` honoured), ``max_retries``
    times; what still fails raises :class:`OpenAIPolicyError` with one line saying what to fix.

    Against ``agentgym serve-model`` each episode sends its id (header ``X-Agentgym-Episode``)
    and ``ctx.segments`` receives the token segments the server recorded, so trajectories carry
    the exact sampled ids and logprobs. If the server had to start a new token context
    mid-episode (its history stopped extending), the segments are those of the last context and
    ``ctx.state["token_contexts"]`` counts the contexts.
    """

    def __init__(
        self,
        base_url: str = "",
        model: str = "default",
        temperature: float = 0.0,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        api_key: str | None = None,
        tools: bool = True,
        max_retries: int = 5,
    ):
        self.base_url = base_url.rstrip("/") or os.environ.get("OPENAI_BASE_URL", "") or "https://api.openai.com/v1"
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.api_key = api_key or os.environ.get(API_KEY_VAR) or os.environ.get("OPENAI_API_KEY") or ""
        self.tools = tools
        self.max_retries = max_retries
        self.name = f"openai:{self.base_url}#{model}"
        self._client: Any = None
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        """The ``openai.OpenAI`` client (made on first use; shared by every episode's thread)."""
        with self._client_lock:
            if self._client is None:
                try:
                    import openai
                except ImportError as e:
                    raise ImportError("the openai: policy needs the openai client: pip install openai") from e
                self._client = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key or "EMPTY",  # local servers take any key; OpenAI's answers 401
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                )
            return self._client

    def close(self) -> None:
        """Close the client's connections (idempotent; a later ``act`` opens new ones)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def request(self, ctx: PolicyContext) -> dict[str, Any]:
        """The chat-completions request body for the next turn."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": ctx.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": int(ctx.rng.integers(2**31)),  # the episode's seed reaches servers that sample with one
        }
        if self.tools and ctx.tools:
            body["messages"] = without_tools_prompt(ctx.messages, ctx.tools) or ctx.messages
            body["tools"] = ctx.tools
        return body

    def act(self, ctx: PolicyContext) -> Action:
        """The server's reply to :meth:`request`, as an assistant message dict (calls in ``tool_calls``)."""
        episode = ctx.state.setdefault("episode_id", f"agentgym-{uuid.uuid4().hex}")
        body = self.request(ctx)
        try:
            reply = self.client().chat.completions.create(**body, extra_headers={EPISODE_HEADER: episode})
        except Exception as e:
            raise _explain(self, e) from e
        if not reply.choices:
            raise OpenAIPolicyError(f"{self.name}: the server answered without a choice")
        msg = reply.choices[0].message
        out: dict[str, Any] = {"role": "assistant", "content": msg.content}
        if msg.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in msg.tool_calls
                if getattr(c, "function", None) is not None
            ]
        _record_segments(ctx, (reply.model_extra or {}).get("agentgym"))
        return out


API_KEY_VAR = "AGENTGYM_OPENAI_API_KEY"
"""The environment variable read first for the ``openai:`` policy's key (then ``OPENAI_API_KEY``)."""
EPISODE_HEADER = "X-Agentgym-Episode"
"""The request header naming the episode, for servers that record tokens (``agentgym serve-model``)."""


class OpenAIPolicyError(RuntimeError):
    """An OpenAI-compatible server refused or failed a request, after the retries."""


def _explain(policy: OpenAIPolicy, e: Exception) -> Exception:
    """One line saying what failed and what to do, for an error of the ``openai`` client."""
    import openai

    where = f"{policy.name}"
    if isinstance(e, openai.AuthenticationError):
        return OpenAIPolicyError(
            f"{where}: authentication failed (401); set {API_KEY_VAR} or OPENAI_API_KEY to a key this server accepts"
        )
    if isinstance(e, openai.PermissionDeniedError):
        return OpenAIPolicyError(f"{where}: permission denied (403) for model {policy.model!r}: {_server_says(e)}")
    if isinstance(e, openai.NotFoundError):
        return OpenAIPolicyError(
            f"{where}: not found (404): check the model name and that the base URL ends in /v1 ({_server_says(e)})"
        )
    if isinstance(e, openai.RateLimitError):
        return OpenAIPolicyError(f"{where}: still rate limited (429) after {policy.max_retries} retries")
    if isinstance(e, openai.APIStatusError):
        return OpenAIPolicyError(f"{where}: the server answered {e.status_code}: {_server_says(e)}")
    if isinstance(e, openai.APITimeoutError):
        return OpenAIPolicyError(f"{where}: no answer within {policy.timeout:g} s after {policy.max_retries} retries")
    if isinstance(e, openai.APIConnectionError):
        return OpenAIPolicyError(f"{where}: cannot connect after {policy.max_retries} retries (is the server up?)")
    return e


def _server_says(e: Any) -> str:
    """The error message in an OpenAI-style error body (or the body itself)."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        return " ".join(str(inner).split())[:500]
    return " ".join(str(getattr(e, "message", e)).split())[:500]


def _record_segments(ctx: PolicyContext, extras: Any) -> None:
    """Add the token segments a recording server returned (``agentgym`` extras) to ``ctx.segments``."""
    if not isinstance(extras, dict) or not isinstance(extras.get("segments"), list):
        return
    segments = [TokenSegment(**s) for s in extras["segments"]]
    if extras.get("new_context"):
        ctx.state["token_contexts"] = ctx.state.get("token_contexts", 0) + 1
        ctx.segments[:] = segments
    else:
        ctx.segments.extend(segments)


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
