"""Tools: typed Python callables that a model invokes by name.

``@tool`` builds an OpenAI-style JSON schema from a function's signature and its
Google-style docstring. ``execute`` validates arguments against that schema and turns
every failure (unknown tool, bad arguments, an exception, a timeout) into a
:class:`ToolResult` whose text the model sees; it never raises for a model mistake.

A tool whose machinery fails (a dead sandbox, an unreachable service) raises
:class:`~agentgym.errors.InfrastructureError` or a subclass such as
:class:`~agentgym.errors.SandboxError`: ``execute`` lets those through, and the
environment ends the episode as an infrastructure failure instead of blaming the model.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, overload

import jsonschema  # type: ignore[import-untyped]  # no stubs installed (types-jsonschema is not a dev dependency)

# Re-exported: tools raise it; it lives in agentgym.errors so that every layer catches one class.
from agentgym.errors import InfrastructureError as InfrastructureError
from agentgym.messages import ToolCallDict, copy_json

_ATTR = "__agentgym_tool__"

ErrorKind = Literal["malformed", "unknown_tool", "bad_arguments", "tool_exception", "timeout"]
"""How a call failed; the model sees the message, ``info["tool_errors"]`` counts the kinds."""

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Tool:
    """A tool the model can call."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments (an ``object`` schema)."""
    fn: Callable[..., Any]
    timeout: float | None = None
    """Seconds a call may run (None: the environment's ``tool_timeout``)."""
    terminal: bool = False
    """A successful call ends the episode after its turn (e.g. ``submit``); a call that fails
    (bad arguments, an exception, a timeout) does not, so the model can try again."""
    validator: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.validator is None:
            # Checking the schema costs milliseconds; do it once, here, not per call.
            cls = jsonschema.validators.validator_for(self.parameters)
            cls.check_schema(self.parameters)
            object.__setattr__(self, "validator", cls(self.parameters))

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": copy_json(self.parameters)},
        }

    def bind(self, obj: Any) -> Tool:
        """This tool with ``fn`` bound to ``obj`` (for ``@tool`` methods)."""
        return Tool(
            self.name,
            self.description,
            self.parameters,
            types.MethodType(self.fn, obj),
            self.timeout,
            self.terminal,
            self.validator,
        )


def _json_type(annotation: Any) -> dict[str, Any]:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = get_origin(annotation)
    if origin is Literal:
        values = list(get_args(annotation))
        return {"enum": values}
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return _json_type(options[0])
        return {"anyOf": [_json_type(a) for a in options]}
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        args = get_args(annotation)
        return {"type": "array", "items": _json_type(args[0])} if args else {"type": "array"}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in simple:
        return {"type": simple[annotation]}
    raise TypeError(
        f"@tool cannot describe parameter type {annotation!r}; use str, int, float, bool, list, dict or Literal"
    )


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """First paragraph as description; ``Args:`` entries as parameter descriptions."""
    doc = inspect.cleandoc(doc or "")
    parts = re.split(r"\n\s*(?:Args|Arguments|Parameters):\s*\n", doc, maxsplit=1)
    description = re.split(r"\n\s*\n", parts[0].strip())[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    if len(parts) == 2:
        current = None
        for line in parts[1].splitlines():
            if re.match(r"^\s*(Returns|Raises|Yields|Examples?):", line):
                break
            m = re.match(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if m:
                current = m.group(1)
                params[current] = m.group(2).strip()
            elif current and line.strip():
                params[current] += " " + line.strip()
    return description, params


def _build(
    fn: Callable[..., Any], name: str | None, description: str | None, timeout: float | None, terminal: bool
) -> Tool:
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    doc_desc, doc_params = _parse_docstring(fn.__doc__ or "")
    props: dict[str, Any] = {}
    required = []
    for pname, param in sig.parameters.items():
        if pname in ("self", "cls") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        prop = _json_type(hints.get(pname, param.annotation))
        if pname in doc_params:
            prop["description"] = doc_params[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif param.default is not None:
            prop["default"] = param.default
        props[pname] = prop
    schema = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return Tool(name or fn.__name__, description or doc_desc or fn.__name__, schema, fn, timeout, terminal)


@overload
def tool(
    fn: _F,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    terminal: bool = False,
) -> _F: ...


@overload
def tool(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    terminal: bool = False,
) -> Callable[[_F], _F]: ...


def tool(
    fn: _F | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    terminal: bool = False,
) -> _F | Callable[[_F], _F]:
    """Mark a function (or an environment method) as a tool: ``@tool`` or ``@tool(terminal=True)``.

    The schema comes from the signature (``str``, ``int``, ``float``, ``bool``, ``list``,
    ``dict``, ``Literal`` and ``X | None``) and the docstring: its first paragraph is the
    description, its ``Args:`` entries describe the parameters. The function is returned
    unchanged.

    Args:
        fn: the function (when used as ``@tool`` without parentheses).
        name: the name the model calls (default: the function's name).
        description: what the model is told the tool does (default: from the docstring).
        timeout: seconds a call may run (default: the environment's ``tool_timeout``).
        terminal: a successful call ends the episode after its turn, as ``submit`` does.
    """

    def wrap(f: _F) -> _F:
        setattr(f, _ATTR, _build(f, name, description, timeout, terminal))
        return f

    return wrap(fn) if fn is not None else wrap


def as_tool(obj: Any) -> Tool:
    """The :class:`Tool` of a decorated function, or build one for a plain function."""
    if isinstance(obj, Tool):
        return obj
    spec = getattr(obj, _ATTR, None)
    if not isinstance(spec, Tool):
        return _build(obj, None, None, None, False)
    if inspect.ismethod(obj):
        return spec.bind(obj.__self__)
    return spec


def tools_of(obj: Any) -> list[Tool]:
    """The ``@tool`` methods of an object, bound to it, in definition order."""
    found = []
    seen = set()
    for klass in type(obj).__mro__:
        for attr, value in vars(klass).items():
            spec = getattr(value, _ATTR, None)
            if spec is not None and attr not in seen:
                seen.add(attr)
                found.append(spec.bind(obj))
    return found


@dataclass(frozen=True)
class ToolCall:
    """One parsed tool call. ``arguments`` is None when they could not be parsed."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str = ""
    """The text the call was parsed from (for error messages)."""

    def to_openai(self) -> ToolCallDict:
        """The call as an OpenAI ``tool_calls`` entry (arguments as a JSON string)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {
                "name": self.name,
                "arguments": json.dumps(self.arguments if self.arguments is not None else {}),
            },
        }


@dataclass
class ToolResult:
    """The outcome of one call: the text the model sees, and whether (how) it failed."""

    call_id: str
    name: str
    content: str
    error: ErrorKind | None = None
    """None when the call succeeded."""
    value: Any = None
    """What the tool returned (None on error)."""
    extra: dict[str, Any] = field(default_factory=dict)


def _schema_error(name: str, err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path)
    prefix = f"argument '{where}': " if where else ""
    message = err.message
    if len(message) > 300:
        message = message[:300] + "..."
    return (
        f'Error: invalid arguments for tool "{name}": {prefix}{message}. '
        "Check the tool's parameter schema and call it again."
    )


class ToolRunner:
    """Runs tool calls on one reusable worker thread, so a timeout can be enforced.

    A Python tool that hangs cannot be killed, only abandoned: on timeout the worker is
    left behind (daemon) and a new one is started. Tools that run commands should rely on
    their sandbox's own timeout, which does kill the process tree.
    """

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], args: dict[str, Any], timeout: float | None) -> Any:
        """``fn(**args)``; raises ``concurrent.futures.TimeoutError`` after ``timeout`` seconds."""
        if timeout is None:
            return fn(**args)
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agentgym-tool")
            pool = self._pool
        future = pool.submit(fn, **args)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        """Abandon the worker thread (a running call is not interrupted); idempotent."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


_default_runner = ToolRunner()


def execute(
    call: ToolCall, tools: dict[str, Tool], default_timeout: float | None = None, runner: ToolRunner | None = None
) -> ToolResult:
    """Run one call. Model mistakes become error results.

    Raises:
        InfrastructureError: the tool's machinery failed (raised by the tool, e.g. a
            :class:`~agentgym.errors.SandboxError`); passed through unchanged.
    """
    tool_ = tools.get(call.name)
    if tool_ is None:
        available = ", ".join(sorted(tools)) or "(none)"
        return ToolResult(
            call.id, call.name, f'Error: unknown tool "{call.name}". Available tools: {available}.', "unknown_tool"
        )
    args = call.arguments if call.arguments is not None else {}
    error = jsonschema.exceptions.best_match(tool_.validator.iter_errors(args))
    if error is not None:
        return ToolResult(call.id, call.name, _schema_error(call.name, error), "bad_arguments")
    timeout = tool_.timeout if tool_.timeout is not None else default_timeout
    try:
        value = (runner or _default_runner).run(tool_.fn, args, timeout)
    except concurrent.futures.TimeoutError:
        return ToolResult(call.id, call.name, f'Error: tool "{call.name}" timed out after {timeout:g} s.', "timeout")
    except InfrastructureError:
        raise
    except Exception as e:
        return ToolResult(
            call.id, call.name, f'Error: tool "{call.name}" raised {type(e).__name__}: {e}', "tool_exception"
        )
    content = value if isinstance(value, str) else _to_text(value)
    return ToolResult(call.id, call.name, content, None, value)


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value)
    except TypeError:
        return str(value)
