"""``AgentEnv``: the Gymnasium environment base class for tool-using text agents.

The contract:

* ``reset(seed, options)`` -> (opening messages, info). ``options={"task_id": ...}``
  picks a task; otherwise the seeded ``np_random`` picks one from the env's split.
  ``options={"tool_format": name}`` switches the tool-call format the env reads and
  prompts (a registered parser: the format the model's chat template shows).
  ``info["tools"]`` holds the OpenAI tool schemas.
* ``step(action)`` -> (new messages, reward, terminated, truncated, info). ``action`` is
  raw assistant text or an assistant message dict. The turn's calls run in order. Model
  mistakes (malformed calls, unknown tools, bad arguments, tool exceptions and timeouts)
  become tool messages and are counted in ``info``; they never raise. An infrastructure
  failure (a tool or grader raising :class:`~agentgym.errors.InfrastructureError`, e.g. a
  :class:`~agentgym.errors.SandboxError` or :class:`~agentgym.errors.GraderError`)
  truncates the episode with ``termination_reason="infra_error"`` and
  ``info["infra_failure"] = True``; a reward function that cannot score (a judge or reward
  model raising :class:`~agentgym.errors.RewardError`) does the same with
  ``termination_reason="reward_error"``; any other exception is a bug and propagates.
* An episode ends after the turn in which a tool calls :meth:`AgentEnv.end` (reason of its
  choice) or a ``terminal`` tool (``@tool(terminal=True)``) succeeds (reason
  ``"terminal_tool"`` unless the tool called ``end`` itself). A terminal call that fails
  (bad arguments, an exception, a timeout) ends nothing. The turn's later calls are not run.
* ``env.messages`` is valid OpenAI chat data: assistant calls only in ``tool_calls`` (the
  prose outside the call markup in ``content``), every call answered by one tool message
  (calls not run after an infrastructure failure or an episode-ending call too), and the
  turn's other feedback (unreadable calls, quoted; nudges) in one user message after them.
  ``env.raw_messages`` has each assistant turn as the raw text the policy returned.
* ``terminated``: the task ended (submitted, answered, gave up); ``truncated``: a limit
  (``max_turns``, ``time_limit``) or an infrastructure failure. Both set
  ``info["termination_reason"]``; the outcome reward is added on the final step.
* ``info["assistant_message"]`` (every step) is the assistant message the env recorded for
  the action (calls parsed into ``tool_calls`` with their ids), so a caller that holds
  only what ``reset``/``step`` return (a remote or Ray env) rebuilds ``env.messages``:
  reset's observation, then per step ``info["assistant_message"]`` and the observation.
* ``finish(reason)`` ends a running episode from outside (a trainer's token budget ran
  out): truncated, graded when ``grade_on_truncation``; it returns the final step's
  ``info`` keys (``termination_reason``, ``infra_failure``, ``outcome_reward``,
  ``reward_components``).
* The final ``info`` holds ``outcome_reward`` (every outcome component, weighted) and
  ``verifier_reward`` (the ``verifier`` components only: what ``success`` reads, so a judge
  or reward model weighted into the reward never counts as solving the task).

A subclass provides ``load_tasks`` and usually ``build_rubric``, ``setup`` and
``@tool`` methods; see ``agentgym/envs/tooluse.py`` for a complete example.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import gymnasium as gym

from agentgym.errors import InfrastructureError, RewardError
from agentgym.messages import (
    Action,
    Message,
    assistant,
    copy_json,
    copy_messages,
    render_transcript,
    tool_message,
    user,
    with_raw_text,
)
from agentgym.parsing import (
    FORMAT_HINT,
    PARSERS,
    ParsedAction,
    ParseError,
    ToolCallParser,
    get_parser,
    parse_action,
    tools_prompt,
)
from agentgym.rewards import RewardFunc, Rubric, make_reward
from agentgym.spaces import AssistantTurn, Chat
from agentgym.tasks import Task, TaskSet
from agentgym.tools import Tool, ToolCall, ToolResult, ToolRunner, execute, tools_of


def _truncate_text(text: str, limit: int) -> str:
    if limit <= 0 or len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - head - tail} characters truncated ...]\n{text[-tail:]}"


def _distinct_ids(calls: list[ToolCall], turn: int) -> list[ToolCall]:
    """The calls with ids unique within the turn (a policy may repeat or reuse ids)."""
    ids = {c.id for c in calls}
    if len(ids) == len(calls) and "" not in ids:
        return calls
    seen: set[str] = set()
    out = []
    for i, original in enumerate(calls):
        call = original
        if not call.id or call.id in seen:
            new_id, n = f"call_{turn}_{i}", 0
            while new_id in seen or any(c.id == new_id for c in calls[i + 1 :]):
                n += 1
                new_id = f"call_{turn}_{i}_{n}"
            call = replace(call, id=new_id)
        seen.add(call.id)
        out.append(call)
    return out


def _strict_json_calls(parsed: ParsedAction) -> list[ToolCall]:
    """The calls whose arguments are strict JSON; NaN/Infinity (which Python's json reads) become parse errors."""
    ok = []
    for call in parsed.calls:
        if call.arguments_json is None:
            parsed.errors.append(
                ParseError(
                    f'Error: arguments of tool "{call.name}" are not valid JSON: NaN and Infinity '
                    f"are not JSON numbers. Use a number or a string.",
                    call.raw,
                )
            )
        else:
            ok.append(call)
    return ok


def _parse_error_feedback(err: ParseError, quote_limit: int = 400) -> str:
    raw = err.raw.strip()
    if not raw:
        return err.message
    quoted = raw if len(raw) <= quote_limit else raw[:quote_limit] + f" [... {len(raw) - quote_limit} more characters]"
    return f"{err.message}\nThe call that could not be read: {quoted}"


def _merge_user_messages(messages: list[Message]) -> list[Message]:
    """Consecutive user messages joined into one (templates that need alternating roles)."""
    out: list[Message] = []
    for m in messages:
        if out and m.get("role") == "user" and out[-1].get("role") == "user" and len(m) == 2 and len(out[-1]) == 2:
            out[-1] = user(f"{out[-1]['content']}\n\n{m['content']}")
        else:
            out.append(m)
    return out


def _failure_reason(e: InfrastructureError) -> str:
    """``reward_error`` for a reward that could not score, else ``infra_error``."""
    return "reward_error" if isinstance(e, RewardError) else "infra_error"


@dataclass
class TurnRecord:
    """What happened in one turn; process reward functions receive it."""

    index: int
    parsed: ParsedAction
    results: list[ToolResult] = field(default_factory=list)
    """Results of the calls that ran (not of those skipped after an episode-ending call)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed calls by kind (``malformed``, ``bad_arguments``, ``tool_exception``, ...)."""
    observation: list[Message] = field(default_factory=list)

    @property
    def n_calls(self) -> int:
        """Readable tool calls in the turn."""
        return len(self.parsed.calls)


class AgentEnv(gym.Env[list[Message], Action]):
    """Base class of every agentgym environment."""

    # gymnasium declares ``metadata`` as an attribute, so it cannot be a ClassVar here.
    metadata: dict[str, Any] = {"render_modes": ["ansi"]}  # noqa: RUF012
    system_prompt: ClassVar[str] = "You are a helpful agent that solves tasks by calling tools."
    default_max_turns: ClassVar[int] = 10
    text_turn: ClassVar[Literal["nudge", "end"]] = "nudge"
    """What a turn with no tool call does: ask again ("nudge") or end the episode ("end")."""

    def __init__(
        self,
        tasks: TaskSet | str | None = None,
        split: str = "train",
        max_turns: int | None = None,
        process_rewards: dict[str, float] | None = None,
        rewards: Sequence[RewardFunc | Mapping[str, Any]] | None = None,
        parser: str | ToolCallParser = "hermes",
        tool_timeout: float | None = 30.0,
        max_tool_output: int = 8000,
        time_limit: float | None = None,
        tools_in_prompt: bool = True,
        grade_on_truncation: bool = True,
        render_mode: str | None = None,
    ):
        """Load the tasks and build the rubric and tools.

        Args:
            tasks: a TaskSet, a ``module:function`` / ``.jsonl`` source, or None for the env's own.
            split: ``train``, ``test`` or ``all``: where seeded resets draw tasks from.
            max_turns: assistant turns before truncation (default: the env's ``default_max_turns``).
            process_rewards: weights of reward components by name, e.g. ``{"step_cost": 0.01}`` (the
                components of ``rewards`` too).
            rewards: more reward components, added to the env's rubric: :class:`~agentgym.rewards.RewardFunc`
                objects or JSON specs such as ``{"type": "judge", "policy": "hf:ckpt", "criteria": "...",
                "weight": 0.5}`` (:func:`~agentgym.rewards.make_reward`: judges, reward models, PRMs). Each is
                reported as its own component with its source; only ``verifier`` components decide success.
            parser: tool-call parser for raw text (``hermes``/``qwen``/``json``) or a parser object.
            tool_timeout: seconds a Python tool may run before the model is told it timed out (the
                call runs on the env's tool thread); None: tools without their own ``timeout`` run
                inline, on the caller's thread. ``@tool(inline=True)`` tools never get one.
            max_tool_output: characters of a tool result kept (head + tail) for the model.
            time_limit: wall-clock seconds per episode before truncation (None: no limit).
            tools_in_prompt: describe the tools and the call format in the system message.
            grade_on_truncation: compute the outcome reward also when a limit cut the episode.
            render_mode: ``"ansi"`` to make :meth:`render` return the transcript as text.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} not supported; use one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        if isinstance(tasks, str):
            tasks = TaskSet.from_source(tasks)
        self.task_set: TaskSet = tasks if tasks is not None else self.load_tasks()
        self.split = split
        self.tasks: TaskSet = self.task_set.split(split)
        if len(self.tasks) == 0:
            raise ValueError(f"{type(self).__name__}: split {split!r} has no tasks (task set has {len(self.task_set)})")
        self.max_turns = max_turns if max_turns is not None else self.default_max_turns
        if self.max_turns < 1:
            raise ValueError("max_turns must be at least 1")
        self.parser = get_parser(parser)
        self.tool_timeout = tool_timeout
        self.max_tool_output = max_tool_output
        self.time_limit = time_limit
        self.tools_in_prompt = tools_in_prompt
        self.grade_on_truncation = grade_on_truncation
        self.rubric = self.build_rubric()
        for spec in rewards or ():
            self.rubric.add_func(make_reward(spec))
        if process_rewards:
            self.rubric.set_weights(process_rewards)
        self._tools: dict[str, Tool] = {t.name: t for t in self.get_tools()}
        arg_names = sorted({p for t in self._tools.values() for p in t.parameters.get("properties", {})})
        self.action_space = AssistantTurn(tuple(self._tools), arg_names)
        self.observation_space = Chat()
        self._task: Task | None = None
        self._messages: list[Message] = []
        self._raw_turns: list[Action | None] = []
        self._turn = 0
        self._end_reason: str | None = None
        self._over = False
        self._error_counts: Counter[str] = Counter()
        self._started = 0.0
        self._closed = False
        self._runner = ToolRunner()
        # Per-reset work done once: the tools block of the system prompt (for one parser and one
        # set of tools) and the split's tasks as a list.
        self._tools_block: tuple[ToolCallParser, tuple[Tool, ...], str] | None = None
        self._task_list: tuple[TaskSet, list[Task]] | None = None

    # ----- hooks for subclasses -------------------------------------------------

    def load_tasks(self) -> TaskSet:
        """The environment's own task set (used when ``tasks`` is not given)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_tasks() or be given tasks=")

    def build_rubric(self) -> Rubric:
        """The rubric; override to add outcome and process reward functions."""
        return Rubric()

    def get_tools(self) -> list[Tool]:
        """Tools offered to the model; default: the ``@tool`` methods of this class."""
        return tools_of(self)

    def setup(self, task: Task) -> None:
        """Prepare per-episode state for ``task`` (files, sandboxes, answers)."""

    def teardown(self) -> None:
        """Release per-episode state; called before the next reset and on close."""

    def opening_messages(self, task: Task) -> list[Message]:
        """The system message (tools described when ``tools_in_prompt``) and the task's prompt."""
        system = self.system_prompt
        if self.tools_in_prompt and self._tools:
            system += "\n\n" + self._tools_prompt()
        return [{"role": "system", "content": system}, user(task.prompt)]

    def _tools_prompt(self) -> str:
        """The tools block of the system prompt, written again only when the tools or the parser change."""
        tools = tuple(self._tools.values())
        cached = self._tools_block
        if (
            cached is None
            or cached[0] is not self.parser
            or len(cached[1]) != len(tools)
            or any(a is not b for a, b in zip(cached[1], tools, strict=True))
        ):
            cached = (self.parser, tools, tools_prompt([t.schema() for t in tools], self.parser))
            self._tools_block = cached
        return cached[2]

    def on_text_turn(self, parsed: ParsedAction) -> list[Message]:
        """A turn without tool calls: ``nudge`` asks for a call, ``end`` ends the episode."""
        if self.text_turn == "end":
            self.end("final_answer")
            return []
        names = ", ".join(self._tools)
        hint = getattr(self.parser, "format_hint", FORMAT_HINT)
        return [user(f"Your reply contained no tool call. Call one of the tools ({names}). {hint}")]

    def oracle_turns(self, task: Task) -> list[Action] | Iterator[Action]:
        """The reference solution as assistant turns (played by the ``oracle`` policy).

        A list, or an iterator read lazily: the ``oracle`` policy takes each next turn only
        after the previous one was stepped, so it may read the live state (a browser page).
        """
        raise NotImplementedError(f"{type(self).__name__} has no oracle")

    def noop_turns(self, task: Task) -> list[Action]:
        """A do-nothing episode (must score 0). Default: empty turns until a limit."""
        return []

    # ----- helpers for subclasses --------------------------------------------------

    def end(self, reason: str = "submitted") -> None:
        """Mark the episode as terminated after this turn (call from a tool).

        The turn's later calls are not run; ``reason`` becomes ``info["termination_reason"]``.
        """
        self._end_reason = reason

    @property
    def task(self) -> Task:
        """The current episode's task."""
        if self._task is None:
            raise RuntimeError("no active episode: call reset() first")
        return self._task

    @property
    def messages(self) -> list[Message]:
        """The whole transcript of the current episode."""
        return list(self._messages)

    @property
    def raw_messages(self) -> list[Message]:
        """The transcript with each assistant turn as the raw text the policy returned.

        Text actions appear verbatim (tool-call markup included, no ``tool_calls``): the
        view to render for token-exact training. Message-dict actions appear as parsed.
        """
        return with_raw_text(self._messages, self._raw_turns)

    def _assistant_message(self, action: Action, parsed: ParsedAction) -> Message:
        """The OpenAI assistant message of a turn: prose in ``content``, calls in ``tool_calls``."""
        if isinstance(action, str) and not parsed.calls and not parsed.errors:
            return assistant(action)  # no markup at all: keep the text verbatim
        content = parsed.content if isinstance(parsed.content, str) else ""
        if isinstance(action, dict) and isinstance(action.get("content"), list):  # OpenAI content parts
            content = "".join(
                p.get("text", "") for p in action["content"] if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        calls = [c.to_openai() for c in parsed.calls]
        return assistant(content or (None if calls else ""), calls)

    @property
    def turn(self) -> int:
        """Assistant turns taken in the current episode (the turn being stepped, inside a tool)."""
        return self._turn

    @property
    def tools(self) -> list[Tool]:
        """The tools offered to the model."""
        return list(self._tools.values())

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The OpenAI ``tools`` entries of the offered tools."""
        return [t.schema() for t in self._tools.values()]

    # ----- Gymnasium API -----------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Start an episode; see the module docstring for the contract."""
        super().reset(seed=seed)
        if self._task is not None:
            self.teardown()
        options = options or {}
        tool_format = options.get("tool_format")
        if tool_format is not None and type(self.parser) is not PARSERS.get(str(tool_format)):
            self.parser = get_parser(str(tool_format))  # parsers keep no state: the same kind is kept
        if options.get("task_id") is not None:
            task = self.task_set[str(options["task_id"])]
        else:
            if self._task_list is None or self._task_list[0] is not self.tasks:
                self._task_list = (self.tasks, list(self.tasks))
            task = self._task_list[1][int(self.np_random.integers(len(self.tasks)))]
        self._task = task
        self._turn = 0
        self._end_reason = None
        self._over = False
        self._error_counts = Counter[str]()
        self._started = time.monotonic()
        self.setup(task)
        self._messages = self.opening_messages(task)
        self._raw_turns = []
        info = {"task_id": task.id, "split": self.task_set.split_of(task), "tools": self.tool_schemas(), "turn": 0}
        return copy_messages(self._messages), info

    def step(self, action: Action) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Play one assistant turn; see the module docstring for the contract."""
        task = self._task
        if task is None:
            raise RuntimeError("step() called before reset(); call env.reset() to start an episode")
        if self._over:
            raise RuntimeError("step() called after the episode ended; call env.reset() to start a new one")
        self._turn += 1
        record = TurnRecord(self._turn, parse_action(action, self.parser, self._turn))
        record.parsed.calls = _distinct_ids(_strict_json_calls(record.parsed), self._turn)
        self._messages.append(self._assistant_message(action, record.parsed))
        self._raw_turns.append(action if isinstance(action, str) else None)
        infra: InfrastructureError | None = None
        for call in record.parsed.calls:
            # Every call gets exactly one tool message, in call order, even when it is not run.
            if infra is not None:
                content = "Not run: the environment failed on an earlier call in this turn (not your fault)."
            elif self._end_reason is not None:
                content = "Not run: an earlier call in this turn ended the episode."
            else:
                try:
                    result = execute(call, self._tools, self.tool_timeout, self._runner)
                except InfrastructureError as e:
                    infra = e
                    content = (
                        "Error: the environment failed while running this call (not your fault): "
                        f"{type(e).__name__}: {e}"
                    )
                else:
                    record.results.append(result)
                    if result.error:
                        record.errors[result.error] += 1
                    elif self._tools[call.name].terminal and self._end_reason is None:
                        self.end("terminal_tool")
                    content = _truncate_text(result.content, self.max_tool_output)
            record.observation.append(tool_message(content, tool_call_id=call.id, name=call.name))
        # Unreadable calls have no id to answer (the OpenAI schema cannot hold them): the
        # model is told in the turn's feedback message, which quotes what it wrote.
        feedback: list[Message] = [user(_parse_error_feedback(e)) for e in record.parsed.errors]
        if record.parsed.errors:
            record.errors["malformed"] += len(record.parsed.errors)
        if infra is None and not record.parsed.calls and not record.parsed.errors:
            feedback.extend(self.on_text_turn(record.parsed))
        if feedback:
            record.observation.extend(_merge_user_messages(feedback))
        if record.errors:
            self._error_counts.update(record.errors)

        terminated = truncated = False
        reason: str | None = None
        if infra is not None:
            truncated, reason = True, "infra_error"
        elif self._end_reason is not None:
            terminated, reason = True, self._end_reason
        elif self._turn >= self.max_turns:
            truncated, reason = True, "max_turns"
        elif self.time_limit is not None and time.monotonic() - self._started > self.time_limit:
            truncated, reason = True, "time_limit"
        self._messages.extend(record.observation)

        reward_error: RewardError | None = None
        try:
            reward, components = self.rubric.score_turn(self, record)
        except RewardError as e:  # a judge or reward model could not score: the episode is masked, not scored
            reward, components, reward_error = 0.0, {}, e
            if infra is None:
                terminated, truncated, reason = False, True, "reward_error"
        # Every value of ``info`` is built for this step (fresh dicts of numbers and strings); the
        # assistant message is built again rather than copied from the transcript (it is cheaper).
        info: dict[str, Any] = {
            "task_id": task.id,
            "turn": self._turn,
            "tool_calls": record.n_calls,
            "tool_errors": dict(record.errors) if record.errors else {},
            "error_counts": dict(self._error_counts),
            "process_reward": reward,
            "assistant_message": self._assistant_message(action, record.parsed),
        }
        if terminated or truncated:
            self._over = True
            info["termination_reason"] = reason
            broken: InfrastructureError | None = infra or reward_error
            info["infra_failure"] = broken is not None
            if broken is None and (terminated or self.grade_on_truncation):
                try:
                    outcome, outcome_components = self.rubric.score_outcome(self)
                except InfrastructureError as e:
                    info["infra_failure"] = True
                    info["termination_reason"] = _failure_reason(e)
                    info["infra_error"] = f"{type(e).__name__}: {e}"
                    outcome, outcome_components = 0.0, {}
                    terminated, truncated = False, True
                else:
                    info["verifier_reward"] = self.rubric.verifier_reward(outcome_components)
                components.update(outcome_components)
                info["outcome_reward"] = outcome
                reward += outcome
            else:
                info["outcome_reward"] = None
            if broken is not None:
                info["infra_error"] = f"{type(broken).__name__}: {broken}"
        info["reward_components"] = dict(components)
        return copy_messages(record.observation), float(reward), terminated, truncated, info

    def finish(self, reason: str = "stopped") -> dict[str, Any]:
        """End the running episode from outside (truncated with ``reason``); grade it if the env grades truncations.

        Returns what the final ``step`` would have put in ``info``: ``termination_reason``,
        ``infra_failure``, ``outcome_reward`` (None when not graded) and ``reward_components``.
        A grader failure is an infrastructure failure (``termination_reason="infra_error"``).
        """
        if self._task is None or self._over:
            raise RuntimeError("finish() needs a running episode; call env.reset() first")
        self._over = True
        info: dict[str, Any] = {"termination_reason": reason, "infra_failure": False, "outcome_reward": None}
        components: dict[str, float] = {}
        if self.grade_on_truncation:
            try:
                outcome, components = self.rubric.score_outcome(self)
                info["outcome_reward"] = outcome
                info["verifier_reward"] = self.rubric.verifier_reward(components)
            except InfrastructureError as e:
                info.update(termination_reason=_failure_reason(e), infra_failure=True)
                info["infra_error"] = f"{type(e).__name__}: {e}"
        info["reward_components"] = dict(components)
        return copy_json(info)

    def render(self) -> str | None:
        """The transcript as text (``render_mode="ansi"``), else None."""
        if self.render_mode == "ansi":
            return render_transcript(self._messages)
        return None

    def close(self) -> None:
        """End the episode (``teardown``) and release the tool worker; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self.teardown()
        self._runner.close()
        super().close()

    @classmethod
    def describe(cls, **kwargs: Any) -> dict[str, Any]:
        """Tools, reward components and splits of this environment, for ``agentgym describe``."""
        env = cls(**kwargs)
        try:
            sizes = {s: len(env.task_set.split(s)) for s in ("train", "test")}
            return {
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "doc": (cls.__doc__ or "").strip().split("\n\n")[0],
                "tools": env.tool_schemas(),
                "rewards": env.rubric.describe(),
                "tasks": len(env.task_set),
                "splits": sizes,
                "max_turns": env.max_turns,
            }
        finally:
            env.close()
