"""Tools: typed Python callables that a model invokes by name.

``@tool`` builds an OpenAI-style JSON schema from a function's signature and its
Google-style docstring. ``execute`` validates arguments against that schema and turns
every failure (unknown tool, bad arguments, an exception, a timeout) into a
:class:`ToolResult` whose text the model sees; it never raises for a model mistake.

Where a call runs: a tool with a timeout (its own ``timeout``, else the environment's
``tool_timeout``) runs on a worker thread that is abandoned when the time is up, since a
Python function cannot be killed; that hand-off costs tens of microseconds per call. An
``inline`` tool runs on the caller's thread, with no timeout and no hand-off: for tools that
return at once (a computation over the environment's state) or that bound their own run
time (a sandbox command run with the sandbox's timeout, which does kill the process tree).

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
    inline: bool = False
    """Run on the caller's thread with no timeout (no thread hand-off): for tools that return
    at once or bound their own run time (a sandbox command with the sandbox's timeout)."""
    accepts: Callable[[dict[str, Any]], bool] | None = field(default=None, init=False, compare=False, repr=False)
    """A quick check that passes only arguments the schema accepts (None: the schema is not
    simple enough; a failed check means "ask the full validator", not "invalid")."""

    def __post_init__(self) -> None:
        if self.inline and self.timeout is not None:
            raise ValueError(
                f"tool {self.name!r}: an inline tool runs without a timeout; give it inline=True or a timeout, not both"
            )
        if self.validator is None:
            # Checking the schema costs milliseconds; do it once, here, not per call.
            cls = jsonschema.validators.validator_for(self.parameters)
            cls.check_schema(self.parameters)
            object.__setattr__(self, "validator", cls(self.parameters))
        object.__setattr__(self, "accepts", _quick_check(self.parameters))

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool (a fresh copy)."""
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
            self.inline,
        )


# JSON-schema types whose instances are plain Python types (``bool`` is not an integer, a
# float is never an ``integer`` here, although the schema would accept 3.0: the validator decides).
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_SCHEMA_KEYS = frozenset({"type", "properties", "required", "additionalProperties", "description", "title"})
_PROPERTY_KEYS = frozenset({"type", "enum", "items", "description", "default", "title"})
_ANY: tuple[type, ...] = ()  # a property (or list item) with no type: any value


def _plain_types(schema: Any, keys: frozenset[str]) -> tuple[type, ...] | None:
    """The Python types a ``{"type": ...}`` schema stands for; None when it says more than that."""
    if not isinstance(schema, dict) or set(schema) - keys:
        return None
    kind = schema.get("type")
    if kind is None:
        return _ANY
    return _PLAIN_TYPES.get(kind) if isinstance(kind, str) else None


def _quick_check(schema: dict[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
    """A check that passes a subset of the arguments ``schema`` accepts, for the schemas ``@tool`` writes.

    It reads only ``type`` (one plain type per property), ``enum`` of strings, list ``items`` of
    one plain type, ``required`` and ``additionalProperties``; a schema with anything else gets
    None. Arguments it does not pass go to the full validator, which accepts them or words the
    error, so the check changes no outcome and no message: it only skips jsonschema's machinery
    on the common, valid call.
    """
    if set(schema) - _SCHEMA_KEYS or schema.get("type") != "object":
        return None
    additional = schema.get("additionalProperties", True)
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(additional, bool) or not isinstance(properties, dict) or not isinstance(required, list):
        return None
    if not all(isinstance(r, str) for r in required):
        return None
    allowed: dict[str, tuple[type, ...]] = {}
    choices: dict[str, frozenset[str]] = {}
    items: dict[str, tuple[type, ...]] = {}
    for name, prop in properties.items():
        types_ = _plain_types(prop, _PROPERTY_KEYS)
        if types_ is None:
            return None
        allowed[name] = types_
        if "enum" in prop:
            values = prop["enum"]
            if types_ not in (_ANY, (str,)) or not isinstance(values, list):
                return None
            if not all(isinstance(v, str) for v in values):
                return None
            allowed[name], choices[name] = (str,), frozenset(values)
        if "items" in prop:
            item_types = _plain_types(prop["items"], frozenset({"type", "description"}))
            if types_ != (list,) or item_types is None:
                return None
            if item_types:
                items[name] = item_types
    needed = tuple(required)

    def check(args: dict[str, Any]) -> bool:
        for name in needed:
            if name not in args:
                return False
        for name, value in args.items():
            types_ = allowed.get(name)
            if types_ is None:
                if additional:
                    continue
                return False
            if types_ and type(value) not in types_:
                return False
            if name in choices and value not in choices[name]:
                return False
            if name in items and any(type(v) not in items[name] for v in value):
                return False
        return True

    return check


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
    fn: Callable[..., Any],
    name: str | None,
    description: str | None,
    timeout: float | None,
    terminal: bool,
    inline: bool = False,
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
    return Tool(
        name or fn.__name__, description or doc_desc or fn.__name__, schema, fn, timeout, terminal, inline=inline
    )


@overload
def tool(
    fn: _F,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    terminal: bool = False,
    inline: bool = False,
) -> _F: ...


@overload
def tool(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    terminal: bool = False,
    inline: bool = False,
) -> Callable[[_F], _F]: ...


def tool(
    fn: _F | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    terminal: bool = False,
    inline: bool = False,
) -> _F | Callable[[_F], _F]:
    """Mark a function (or an environment method) as a tool: ``@tool``, ``@tool(terminal=True, inline=True)``.

    The schema comes from the signature (``str``, ``int``, ``float``, ``bool``, ``list``,
    ``dict``, ``Literal`` and ``X | None``) and the docstring: its first paragraph is the
    description, its ``Args:`` entries describe the parameters. The function is returned
    unchanged.

    Args:
        fn: the function (when used as ``@tool`` without parentheses).
        name: the name the model calls (default: the function's name).
        description: what the model is told the tool does (default: from the docstring).
        timeout: seconds a call may run (default: the environment's ``tool_timeout``); the call
            runs on a worker thread, abandoned when the time is up.
        terminal: a successful call ends the episode after its turn, as ``submit`` does.
        inline: run on the caller's thread with no timeout and no thread hand-off, for a tool that
            returns at once or bounds its own run time (a sandbox command with the sandbox's timeout).
    """

    def wrap(f: _F) -> _F:
        setattr(f, _ATTR, _build(f, name, description, timeout, terminal, inline))
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


_STRICT_JSON = json.JSONEncoder(allow_nan=False)
"""``json.dumps(x, allow_nan=False)`` without building an encoder per call."""


@dataclass(frozen=True)
class ToolCall:
    """One parsed tool call. ``arguments`` is None when they could not be parsed."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str = ""
    """The text the call was parsed from (for error messages)."""

    @property
    def arguments_json(self) -> str | None:
        """The arguments as strict JSON text, written once; None when they hold NaN or Infinity (not JSON)."""
        # Cached by hand: functools.cached_property takes a lock on every read before Python 3.12.
        cache = self.__dict__
        if "_arguments_json" not in cache:
            try:
                text: str | None = _STRICT_JSON.encode(self.arguments if self.arguments is not None else {})
            except ValueError:
                text = None
            cache["_arguments_json"] = text
        cached: str | None = cache["_arguments_json"]
        return cached

    def to_openai(self) -> ToolCallDict:
        """The call as an OpenAI ``tool_calls`` entry (arguments as a JSON string)."""
        text = self.arguments_json
        if text is None:  # NaN/Infinity: written as Python's json writes them
            text = json.dumps(self.arguments)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": text}}


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


class _TimedOut(concurrent.futures.TimeoutError):
    """The runner gave up on a call (told apart from a ``TimeoutError`` the tool raised itself)."""


class ToolRunner:
    """Runs tool calls on one reusable worker thread, so a timeout can be enforced.

    A Python tool that hangs cannot be killed, only abandoned: on timeout the worker is
    left behind (daemon) and a new one is started. Tools that run commands should rely on
    their sandbox's own timeout, which does kill the process tree (and be ``inline``).
    """

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], args: dict[str, Any], timeout: float | None) -> Any:
        """``fn(**args)``; raises ``concurrent.futures.TimeoutError`` after ``timeout`` seconds.

        With ``timeout=None`` the call runs on the caller's thread. An exception the tool
        raises (its own ``TimeoutError`` too) is raised as it is.
        """
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
            if future.done():  # the tool raised TimeoutError, or finished as the wait ended
                return future.result()
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise _TimedOut(f"no result after {timeout:g} s") from None

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
    if tool_.accepts is None or not tool_.accepts(args):
        error = jsonschema.exceptions.best_match(tool_.validator.iter_errors(args))
        if error is not None:
            return ToolResult(call.id, call.name, _schema_error(call.name, error), "bad_arguments")
    timeout = None if tool_.inline else tool_.timeout if tool_.timeout is not None else default_timeout
    try:
        value = tool_.fn(**args) if timeout is None else (runner or _default_runner).run(tool_.fn, args, timeout)
    except _TimedOut:
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
