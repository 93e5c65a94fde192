"""ToolUse: a fast, learnable multi-turn tool-use family with verifiable answers.

Four kinds of task, generated deterministically (hundreds of each):

* ``arithmetic``: compute an expression; tool ``calculator``.
* ``lookup``: read a value from a small key-value store; tool ``lookup``.
* ``convert``: convert a quantity between units; tool ``convert``.
* ``chain``: look up two prices, then compute a total (several tool calls).

The agent answers with ``submit(answer)``. The outcome reward ``correct`` is 1 when the
submitted answer equals the task's answer (numbers compared with a relative tolerance
of 1e-6), else 0. Process components (metrics unless weighted via ``process_rewards``):
``well_formed``, ``tool_errors``, ``step_cost``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from agentgym.env import AgentEnv
from agentgym.messages import Action, Message
from agentgym.parsing import FORMAT_HINT, ParsedAction, format_tool_call
from agentgym.rewards import Rubric, step_cost, tool_errors, well_formed_calls
from agentgym.tasks import Task, TaskSet
from agentgym.tools import Tool, tool

KINDS = ("arithmetic", "lookup", "convert", "chain")
EXTRA_KINDS = ("addition",)
"""Kinds not in the default mix: ``addition`` (two small numbers; submit directly)."""

UNITS: dict[str, tuple[str, float]] = {
    # unit: (dimension, factor to the SI base unit)
    "mm": ("length", 0.001),
    "cm": ("length", 0.01),
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "mi": ("length", 1609.344),
    "g": ("mass", 0.001),
    "kg": ("mass", 1.0),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "ms": ("time", 0.001),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORDS = ("apple", "pear", "plum", "fig", "kiwi", "lime", "date", "mango", "peach", "grape", "melon", "cherry")
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def safe_eval(expression: str) -> float | int:
    """Evaluate +, -, *, /, //, %, ** and parentheses on numbers; nothing else."""
    if len(expression) > 200:
        raise ValueError("expression longer than 200 characters")
    tree = ast.parse(expression, mode="eval")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and (abs(b) > 64 or abs(a) > 10**6):
                raise ValueError("exponent too large (|base| <= 1e6 and |exponent| <= 64)")
            return _OPS[type(node.op)](a, b)
        raise ValueError(f"unsupported syntax: {ast.dump(node)[:60]}")

    value: float | int = ev(tree)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ValueError("result is not a finite number")
    return value


def format_number(x: float | int) -> str:
    """A number as the model should write it: integral floats without ``.0``, else 10 significant digits."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}" if isinstance(x, float) else str(x)


def _parse_number(text: str) -> float | None:
    try:
        return float(str(text).strip().replace(",", ""))
    except ValueError:
        return None


def answers_match(given: str, expected: str) -> bool:
    """Numbers equal within a relative tolerance of 1e-6; other answers equal ignoring case and spaces."""
    a, b = _parse_number(given), _parse_number(expected)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return str(given).strip().lower() == str(expected).strip().lower()


def _arithmetic(rng: np.random.Generator, i: int) -> Task:
    a, b, c = (int(x) for x in rng.integers(2, 99, size=3))
    form = i % 3
    expr = [f"{a} * {b} + {c}", f"({a} + {b}) * {c}", f"{a} * {b} - {c}"][form]
    answer = format_number(safe_eval(expr))
    return Task(
        f"arithmetic-{i:04d}",
        f"What is {expr}? Use the calculator, then submit the result.",
        verifier={"answer": answer},
        solution={"calls": [("calculator", {"expression": expr})], "answer": answer},
        metadata={"kind": "arithmetic"},
    )


def _lookup(rng: np.random.Generator, i: int) -> Task:
    keys = [f"{w}-{int(rng.integers(10, 99))}" for w in rng.choice(_WORDS, size=5, replace=False)]
    store = {k: str(int(rng.integers(100, 9999))) for k in keys}
    key = keys[int(rng.integers(len(keys)))]
    return Task(
        f"lookup-{i:04d}",
        f"Find the value stored under the key '{key}' and submit it.",
        setup={"store": store},
        verifier={"answer": store[key]},
        solution={"calls": [("lookup", {"key": key})], "answer": store[key]},
        metadata={"kind": "lookup"},
    )


def _convert(rng: np.random.Generator, i: int) -> Task:
    dims = sorted({d for d, _ in UNITS.values()})
    dim = dims[int(rng.integers(len(dims)))]
    units = [u for u, (d, _) in UNITS.items() if d == dim]
    src, dst = (str(u) for u in rng.choice(units, size=2, replace=False))
    value = float(int(rng.integers(1, 500))) / (1 if i % 2 else 4)
    answer = format_number(value * UNITS[src][1] / UNITS[dst][1])
    return Task(
        f"convert-{i:04d}",
        f"Convert {format_number(value)} {src} to {dst} and submit the number.",
        verifier={"answer": answer},
        solution={"calls": [("convert", {"value": value, "from_unit": src, "to_unit": dst})], "answer": answer},
        metadata={"kind": "convert"},
    )


def _addition(rng: np.random.Generator, i: int) -> Task:
    a, b = (int(x) for x in rng.integers(1, 20, size=2))
    return Task(
        f"addition-{i:04d}",
        f"What is {a} + {b}? Submit the result.",
        verifier={"answer": str(a + b)},
        solution={"calls": [], "answer": str(a + b)},
        metadata={"kind": "addition"},
    )


def _chain(rng: np.random.Generator, i: int) -> Task:
    w1, w2, *rest = (str(w) for w in rng.choice(_WORDS, size=4, replace=False))
    store = {f"price-{w}": str(int(rng.integers(2, 50))) for w in (w1, w2, *rest)}
    n1, n2 = (int(x) for x in rng.integers(2, 9, size=2))
    expr = f"{store[f'price-{w1}']} * {n1} + {store[f'price-{w2}']} * {n2}"
    answer = format_number(safe_eval(expr))
    prompt = (
        f"The store keeps prices under keys like 'price-<fruit>'. How much do {n1} {w1}s and {n2} {w2}s cost "
        f"in total? Look up both prices, compute the total, and submit it."
    )
    calls = [
        ("lookup", {"key": f"price-{w1}"}),
        ("lookup", {"key": f"price-{w2}"}),
        ("calculator", {"expression": expr}),
    ]
    solution = {"calls": calls, "answer": answer}
    return Task(
        f"chain-{i:04d}",
        prompt,
        setup={"store": store},
        verifier={"answer": answer},
        solution=solution,
        metadata={"kind": "chain"},
    )


@lru_cache(maxsize=8)
def build_tasks(kinds: tuple[str, ...] = KINDS, per_kind: int = 150) -> TaskSet:
    """The generated task set (deterministic; same ids and answers on every machine)."""
    makers = {"arithmetic": _arithmetic, "lookup": _lookup, "convert": _convert, "chain": _chain, "addition": _addition}
    unknown = set(kinds) - set(makers)
    if unknown:
        raise ValueError(f"unknown ToolUse kinds {sorted(unknown)}; choose from {KINDS + EXTRA_KINDS}")
    tasks = []
    for kind in kinds:
        rng = np.random.default_rng(1000 + (KINDS + EXTRA_KINDS).index(kind))
        tasks += [makers[kind](rng, i) for i in range(per_kind)]
    return TaskSet(tasks, name="tooluse")


def _correct(env: ToolUseEnv) -> float:
    """1 when the submitted answer matches the task's answer (numbers within tolerance), else 0."""
    return float(env._submitted is not None and answers_match(env._submitted, env.task.verifier["answer"]))


class ToolUseEnv(AgentEnv):
    """Multi-turn tool use with verifiable answers: calculator, key lookup, unit conversion."""

    system_prompt = (
        "You are a precise assistant. Solve the task by calling tools, then call submit with the final answer."
    )
    default_max_turns = 6

    def __init__(
        self,
        kinds: Sequence[str] = KINDS,
        per_kind: int = 150,
        tools: Sequence[str] | None = None,
        answer_in_text: bool = False,
        compact_tools: bool = False,
        end_on_text: bool = False,
        **kwargs: Any,
    ):
        """Generate the tasks and choose the tools offered.

        Args:
            kinds: task kinds (``KINDS``, or ``EXTRA_KINDS`` such as ``addition``).
            per_kind: tasks generated per kind.
            tools: offer only these tools (default: all); a shorter prompt for small models.
            answer_in_text: a turn without a tool call ends the episode and its last number is the
                submitted answer (for models too small to call tools yet).
            compact_tools: describe the tools in one line of signatures (``lookup(key)``) instead of their JSON
                schemas: a prompt a third as long (pass ``tools_in_prompt=False`` with it).
            end_on_text: a turn without a tool call ends the episode (unsolved) instead of a nudge to call one.
            **kwargs: :class:`~agentgym.env.AgentEnv` arguments (``tasks``, ``split``, ``max_turns``, ...).
        """
        self.kinds = tuple(kinds)
        self.offered = tuple(tools) if tools is not None else None
        self.answer_in_text = answer_in_text
        self.compact_tools = compact_tools
        self.end_on_text = end_on_text
        self.per_kind = per_kind
        self._store: dict[str, str] = {}
        self._submitted: str | None = None
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        """The generated tasks of the chosen kinds."""
        return build_tasks(self.kinds, self.per_kind)

    def build_rubric(self) -> Rubric:
        """``correct`` (the outcome) and the metrics ``well_formed``, ``tool_errors``, ``step_cost``."""
        rubric = Rubric().add("correct", _correct)
        rubric.add("well_formed", well_formed_calls, weight=0.0, kind="process")
        rubric.add("tool_errors", tool_errors, weight=0.0, kind="process")
        rubric.add("step_cost", step_cost, weight=0.0, kind="process")
        return rubric

    def get_tools(self) -> list[Tool]:
        """The ``@tool`` methods, or only those named by ``tools``."""
        offered = super().get_tools()
        if self.offered is None:
            return offered
        unknown = set(self.offered) - {t.name for t in offered}
        if unknown:
            raise ValueError(f"unknown ToolUse tools {sorted(unknown)}; choose from {[t.name for t in offered]}")
        return [t for t in offered if t.name in self.offered]

    def opening_messages(self, task: Task) -> list[Message]:
        """The system message and the task; with ``compact_tools`` the tools as one line of signatures."""
        messages = super().opening_messages(task)
        if self.compact_tools:
            signatures = ", ".join(f"{t.name}({', '.join(t.parameters['properties'])})" for t in self.get_tools())
            messages[0]["content"] = f"{messages[0]['content']}\n\nTools: {signatures}. {FORMAT_HINT}"
        return messages

    def on_text_turn(self, parsed: ParsedAction) -> list[Message]:
        """With ``answer_in_text``, the reply's last number is the answer and the episode ends.

        With ``end_on_text``, the episode ends unsolved; else the model is nudged to call a tool.
        """
        if self.end_on_text and not self.answer_in_text:
            self.end("no_tool_call")
            return []
        if not self.answer_in_text:
            return super().on_text_turn(parsed)
        numbers = _NUMBER.findall(parsed.content)
        self._submitted = numbers[-1] if numbers else parsed.content
        self.end("final_answer")
        return []

    def setup(self, task: Task) -> None:
        """Load the task's key-value store; nothing is submitted yet."""
        self._store = dict(task.setup.get("store", {}))
        self._submitted = None

    @tool(inline=True)
    def calculator(self, expression: str) -> str:
        """Evaluate an arithmetic expression (+, -, *, /, //, %, ** and parentheses).

        Args:
            expression: the expression, e.g. "12 * (3 + 4)"
        """
        return format_number(safe_eval(expression))

    @tool(inline=True)
    def lookup(self, key: str) -> str:
        """Read the value stored under a key.

        Args:
            key: the key to read
        """
        if key not in self._store:
            raise KeyError(
                f"no key {key!r}; keys are {sorted(self._store)}"
                if self._store
                else f"no key {key!r}; the store is empty"
            )
        return self._store[key]

    @tool(inline=True)
    def convert(self, value: float, from_unit: str, to_unit: str) -> str:
        """Convert a quantity between units of the same dimension (length, mass, time).

        Args:
            value: the quantity
            from_unit: unit of the value, e.g. "km"
            to_unit: unit to convert to, e.g. "m"
        """
        for u in (from_unit, to_unit):
            if u not in UNITS:
                raise ValueError(f"unknown unit {u!r}; known units: {', '.join(UNITS)}")
        if UNITS[from_unit][0] != UNITS[to_unit][0]:
            raise ValueError(f"cannot convert {UNITS[from_unit][0]} ({from_unit}) to {UNITS[to_unit][0]} ({to_unit})")
        return format_number(value * UNITS[from_unit][1] / UNITS[to_unit][1])

    @tool(terminal=True, inline=True)
    def submit(self, answer: str) -> str:
        """Submit the final answer; this ends the episode.

        Args:
            answer: the final answer, e.g. "42"
        """
        self._submitted = str(answer)
        self.end("submitted")
        return "Answer submitted."

    def oracle_turns(self, task: Task) -> list[Action]:
        """The task's reference calls, then ``submit`` with its answer."""
        turns: list[Action] = [format_tool_call(name, args) for name, args in task.solution["calls"]]
        turns.append(format_tool_call("submit", {"answer": task.solution["answer"]}))
        return turns
