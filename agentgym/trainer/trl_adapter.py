"""TRL's ``GRPOTrainer`` on an agentgym environment, through its ``environment_factory`` hook.

    from trl import GRPOConfig, GRPOTrainer
    from agentgym.trainer.trl_adapter import environment_class, prompt_dataset

    Env = environment_class("agentgym/ToolUse-v0")
    trainer = GRPOTrainer(
        model=..., args=GRPOConfig(...), processing_class=tokenizer,
        train_dataset=prompt_dataset("agentgym/ToolUse-v0"), environment_factory=Env,
    )

The hook (trl 1.16, experimental): ``environment_factory()`` makes an object whose public methods
are the model's tools (their signatures and Google docstrings become the schemas the chat template
renders), ``reset(**row)`` starts a rollout on a dataset row (a returned string is appended to the
last user message), and ``get_reward()`` scores the finished rollout. TRL generates, parses the
tool calls with the tokenizer's response parser, calls the methods, feeds back their results and
repeats until the model answers without a call.

The mapping onto agentgym:

* tools: one method per tool of the environment, generated from its JSON schema (JSON types to
  Python types, descriptions into the docstring, ``enum`` as ``(choices: [...])``); a call runs
  as one agentgym turn, ``env.step`` of an assistant message holding that call, and returns the
  text of the tool message (and of any feedback) the environment answered. agentgym validates the
  arguments and reports mistakes to the model as usual; a call after the episode ended (e.g.
  after ``submit``) runs nothing and says so;
* ``reset(task_id=..., prompt=...)``: the row's task (rows of :func:`prompt_dataset`), or a
  seeded draw from the environment's split without one (TRL's placeholder rows when no dataset
  is given: then the opening messages come back as text to append to the empty prompt);
* ``get_reward()``: the agentgym episode reward (process rewards plus the outcome reward). A
  rollout that stopped before the episode ended (the model answered without a call) is graded
  as the environment grades a truncation (``grade_on_truncation``), as agentgym's own trainer
  grades a token-budget truncation; an infrastructure failure gives ``None``, which TRL
  ignores for that rollout.

Deviations from ``agentgym train``, because TRL owns the rollout: each call is its own agentgym
turn (so ``max_turns`` and ``step_cost`` count calls, and parallel calls of one message run in
order as separate turns); TRL renders the conversation with the tokenizer's template and its
own tools block, not agentgym's token-exact segments; text replies without a call are not shown
to the environment (envs that grade a final text answer need a TRL reward function instead).
Requirements of TRL's hook: transformers >= 5.2 and a tokenizer whose chat template renders tool
calls and that TRL can parse (``trl.chat_template_utils.add_response_schema``: Qwen2.5/3,
Llama 3.1/3.2, ...). Generation runs in transformers (CPU or GPU) or vLLM.
"""

from __future__ import annotations

import inspect
import json
import keyword
import threading
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from datasets import Dataset  # type: ignore[import-untyped]  # ships no type information

import agentgym
from agentgym.env import AgentEnv
from agentgym.errors import InfrastructureError
from agentgym.messages import Message, assistant
from agentgym.parsing import without_tools_prompt

_JSON_TYPES: dict[str, type] = {
    "string": str,
    "number": float,
    "integer": int,
    "boolean": bool,
    "array": list,
    "object": dict,
}
_RESERVED = ("reset", "get_reward")


class AgentGymEnvironment:
    """One agentgym environment as a TRL environment; :func:`environment_class` adds the tool methods.

    Every public method of a subclass is a tool for TRL, so this class has none besides
    ``reset`` and ``get_reward``.
    """

    env_id: ClassVar[str] = ""
    env_kwargs: ClassVar[dict[str, Any]] = {}
    seed: ClassVar[int] = 0
    _instances: ClassVar[int] = 0
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        if not self.env_id:
            raise TypeError("use environment_class(env_id) to build a TRL environment for an agentgym env")
        cls = type(self)
        with cls._lock:
            self._index = cls._instances
            cls._instances += 1
        self._env: AgentEnv = agentgym.make(self.env_id, **self.env_kwargs)
        # TRL pools instances and never closes them: the env closes when the instance is collected, or at exit.
        weakref.finalize(self, self._env.close)
        self._seeded = False
        self._reward = 0.0
        self._over = False
        self._graded = False
        self._failed = False
        self._reason: str | None = None
        self._calls = 0

    @property
    def agentgym_env(self) -> AgentEnv:
        """The wrapped agentgym environment (its transcript, task and tools)."""
        return self._env

    def reset(self, **row: Any) -> str | None:
        """Start an episode on a dataset row's ``task_id`` (else a seeded draw); see the module docstring."""
        task_id = row.get("task_id")
        seed = None if self._seeded else self.seed + self._index  # seed once; the env's RNG carries on
        self._seeded = True
        opening, _ = self._env.reset(seed=seed, options={"task_id": task_id} if task_id is not None else None)
        self._reward, self._over, self._graded, self._failed, self._reason, self._calls = (
            0.0,
            False,
            False,
            False,
            None,
            0,
        )
        shown = shown_opening(opening, self._env.tool_schemas())
        prompt = row.get("prompt")
        if _is_placeholder(prompt):
            return "\n\n".join(m.get("content") or "" for m in shown)
        if task_id is not None and prompt is not None and [_plain(m) for m in prompt] != [_plain(m) for m in shown]:
            raise ValueError(
                f"row of task {task_id!r}: its prompt is not the environment's opening for that task; "
                "build the dataset with agentgym.trainer.trl_adapter.prompt_dataset"
            )
        return None

    def get_reward(self) -> float | None:
        """The episode reward; an unfinished episode is graded as a truncation (None: infrastructure failure)."""
        if not self._over and not self._graded:
            self._graded = True
            if self._env.grade_on_truncation:
                try:
                    outcome, _ = self._env.rubric.score_outcome(self._env)
                except InfrastructureError:
                    self._failed = True
                else:
                    self._reward += float(outcome)
        return None if self._failed else self._reward

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool call as one agentgym turn; the text the environment answered."""
        if self._over:
            return f"Error: the episode is over ({self._reason}); no more calls run."
        self._calls += 1
        call_id = f"call_{self._calls}"
        message = assistant(
            None,
            [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}],
        )
        observation, reward, terminated, truncated, info = self._env.step(dict(message))
        self._reward += float(reward)
        if terminated or truncated:
            self._over = True
            self._reason = info.get("termination_reason")
            self._failed = bool(info.get("infra_failure"))
        return "\n\n".join(m.get("content") or "" for m in observation)


def _is_placeholder(prompt: Any) -> bool:
    """TRL's prompt when no dataset is given: one empty user message."""
    return isinstance(prompt, list) and len(prompt) == 1 and not (prompt[0].get("content") or "")


def _plain(m: Any) -> tuple[str, str]:
    return (str(m.get("role")), str(m.get("content") or ""))


def shown_opening(opening: list[Message], tools: list[dict[str, Any]]) -> list[Message]:
    """The opening messages as TRL shows them: the environment's tools block cut (the template renders ``tools=``)."""
    return without_tools_prompt(opening, tools) or [dict(m) for m in opening]  # type: ignore[misc]


def _python_type(spec: dict[str, Any]) -> Any:
    """The Python type whose schema (per transformers' ``get_json_schema``) is the JSON schema ``spec``."""
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "array" and isinstance(spec.get("items"), dict) and spec["items"].get("type"):
        return list[_python_type(spec["items"])]  # type: ignore[misc]
    if kind is None:
        return Any
    if kind not in _JSON_TYPES:
        raise ValueError(f"JSON schema type {kind!r} has no Python type; use one of {sorted(_JSON_TYPES)}")
    return _JSON_TYPES[kind]


def tool_method(schema: dict[str, Any]) -> Callable[..., str]:
    """A method calling the agentgym tool ``schema`` describes, typed and documented so TRL can render it."""
    fn = schema.get("function", schema)
    name = str(fn["name"])
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in _RESERVED:
        raise ValueError(
            f"tool {name!r} cannot be a TRL environment method (it must be a public Python identifier, "
            f"not {', '.join(_RESERVED)}); rename the tool"
        )
    params = fn.get("parameters") or {}
    required = set(params.get("required") or [])
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    doc_args = []
    for arg, spec in (params.get("properties") or {}).items():
        if not str(arg).isidentifier() or keyword.iskeyword(arg):
            raise ValueError(f"tool {name!r}: argument {arg!r} is not a Python identifier, so TRL cannot pass it")
        hint = _python_type(spec)
        if arg not in required:
            hint = hint | None
        annotations[arg] = hint
        default = inspect.Parameter.empty if arg in required else None
        signature.append(inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        text = " ".join(str(spec.get("description") or arg).split())
        if spec.get("enum"):
            text += f" (choices: {json.dumps(spec['enum'])})"
        doc_args.append(f"    {arg}: {text}")
    annotations["return"] = str

    def method(self: AgentGymEnvironment, **arguments: Any) -> str:
        return self._call(name, {k: v for k, v in arguments.items() if v is not None or k in required})

    description = " ".join(str(fn.get("description") or name).split())
    method.__name__ = method.__qualname__ = name
    method.__doc__ = description + ("\n\nArgs:\n" + "\n".join(doc_args) if doc_args else "")
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(signature, return_annotation=str)  # type: ignore[attr-defined]
    return method


def environment_class(env_id: str, seed: int = 0, **env_kwargs: Any) -> type[AgentGymEnvironment]:
    """The class to pass as ``GRPOTrainer(environment_factory=...)`` for ``env_id``.

    Args:
        env_id: a registered agentgym environment.
        seed: the seed of the draws of rows without a ``task_id`` (instance k uses ``seed + k``).
        **env_kwargs: passed to ``agentgym.make`` (``split``, ``max_turns``, ``process_rewards``, ...).

    Returns:
        A subclass of :class:`AgentGymEnvironment` with one method per tool.
    """
    probe = agentgym.make(env_id, **env_kwargs)
    try:
        schemas = probe.tool_schemas()
        cls_name = type(probe).__name__
    finally:
        probe.close()
    namespace: dict[str, Any] = {"env_id": env_id, "env_kwargs": dict(env_kwargs), "seed": seed, "_instances": 0}
    for schema in schemas:
        method = tool_method(schema)
        namespace[method.__name__] = method
    return type(f"{cls_name}TRL", (AgentGymEnvironment,), namespace)


def prompt_rows(
    env_id: str, split: str = "train", num_tasks: int | None = None, **env_kwargs: Any
) -> list[dict[str, Any]]:
    """Rows ``{"prompt": opening messages, "task_id": ...}`` of the tasks of a split (first ``num_tasks``)."""
    env = agentgym.make(env_id, split=split, **env_kwargs)
    rows = []
    try:
        for task in list(env.tasks)[:num_tasks]:
            opening, info = env.reset(options={"task_id": task.id})
            shown = shown_opening(opening, list(info.get("tools") or []))
            rows.append(
                {
                    "prompt": [{"role": m.get("role"), "content": m.get("content") or ""} for m in shown],
                    "task_id": task.id,
                }
            )
    finally:
        env.close()
    return rows


def prompt_dataset(env_id: str, split: str = "train", num_tasks: int | None = None, **env_kwargs: Any) -> Dataset:
    """:func:`prompt_rows` as a :class:`datasets.Dataset`, the ``train_dataset`` of ``GRPOTrainer``."""
    return Dataset.from_list(prompt_rows(env_id, split, num_tasks, **env_kwargs))
