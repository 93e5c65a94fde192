"""Where tool calls run (inline or on the timeout thread) and the cheap paths of a step, behaviour only.

The timings are benchmarks/bench_env.py's job; these tests pin what the fast paths must not
change: timeouts still enforced, the same validation errors, copies the caller may mutate.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Literal

import jsonschema
import pytest

import agentgym
from agentgym import AgentEnv, Task, TaskSet, tool
from agentgym.messages import copy_json
from agentgym.parsing import FORMAT_HINT, LLAMA3_HINT
from agentgym.tools import Tool, ToolCall, as_tool, execute


class Threads(AgentEnv):
    """Tools that report the thread they ran on; one sleeps past its timeout."""

    default_max_turns = 6

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task("t0", "Call the tools.", split="train")])

    @tool(inline=True)
    def here(self) -> str:
        """The name of the thread the call ran on (inline)."""
        return threading.current_thread().name

    @tool(timeout=5.0)
    def timed(self) -> str:
        """The name of the thread the call ran on (with a timeout)."""
        return threading.current_thread().name

    @tool
    def default(self) -> str:
        """The name of the thread the call ran on (the env's tool_timeout)."""
        return threading.current_thread().name

    @tool(timeout=0.2)
    def slow(self) -> str:
        """Sleep past the timeout."""
        time.sleep(1.0)
        return "late"

    @tool(inline=True)
    def own_timeout(self) -> str:
        """A tool whose own operation timed out (not the runner's timeout)."""
        raise TimeoutError("the service did not answer")


def call(name: str, **args: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"


def test_inline_tools_run_on_the_callers_thread_and_timed_ones_on_the_tool_thread() -> None:
    env = Threads()
    env.reset(seed=0)
    caller = threading.current_thread().name
    obs, *_ = env.step(call("here") + call("timed") + call("default"))
    here, timed, default = (m["content"] for m in obs)
    assert here == caller
    assert timed.startswith("agentgym-tool") and default.startswith("agentgym-tool")
    env.close()


def test_no_env_timeout_runs_every_tool_without_one_inline() -> None:
    env = Threads(tool_timeout=None)
    env.reset(seed=0)
    obs, *_ = env.step(call("default") + call("timed"))
    assert obs[0]["content"] == threading.current_thread().name
    assert obs[1]["content"].startswith("agentgym-tool")  # its own timeout still holds
    env.close()


def test_a_sleeping_tool_times_out_and_the_episode_goes_on() -> None:
    env = Threads()
    env.reset(seed=0)
    start = time.monotonic()
    obs, _, terminated, truncated, info = env.step(call("slow"))
    assert time.monotonic() - start < 0.9
    assert obs[0]["content"] == 'Error: tool "slow" timed out after 0.2 s.'
    assert (terminated, truncated, info["tool_errors"]) == (False, False, {"timeout": 1})
    # The abandoned worker does not block the next calls: a new one runs them.
    obs, _, terminated, truncated, info = env.step(call("timed") + call("here"))
    assert obs[0]["content"].startswith("agentgym-tool") and not info["tool_errors"]
    assert env.messages[3]["content"] == 'Error: tool "slow" timed out after 0.2 s.'  # what the model saw
    assert info["error_counts"] == {"timeout": 1}
    env.close()


def test_a_timeout_error_raised_by_the_tool_itself_is_a_tool_exception() -> None:
    env = Threads()
    env.reset(seed=0)
    obs, *_, info = env.step(call("own_timeout"))
    assert obs[0]["content"] == 'Error: tool "own_timeout" raised TimeoutError: the service did not answer'
    assert info["tool_errors"] == {"tool_exception": 1}

    @tool(timeout=5.0)
    def timed_own() -> str:
        """Raises TimeoutError on the tool thread."""
        raise TimeoutError("upstream")

    result = execute(ToolCall("c", "timed_own", {}), {"timed_own": as_tool(timed_own)})
    assert (result.error, result.content) == ("tool_exception", 'Error: tool "timed_own" raised TimeoutError: upstream')
    env.close()


def test_inline_and_a_timeout_together_are_refused() -> None:
    with pytest.raises(ValueError, match="an inline tool runs without a timeout; give it inline=True or a timeout"):

        @tool(inline=True, timeout=1.0)
        def both() -> str:
            """Both."""
            return ""


def test_the_calculator_family_runs_inline() -> None:
    for env_id in ("agentgym/ToolUse-v0", "agentgym/Calculator-v0", "agentgym/ToolChain-v0"):
        env = agentgym.make(env_id)
        assert all(t.inline for t in env.unwrapped.tools), env_id  # type: ignore[attr-defined]
        env.close()


# ----- validation: the quick check passes only what jsonschema accepts, and words nothing itself -----


@tool
def typed(
    s: str,
    i: int,
    x: float,
    b: bool,
    items: list,  # type: ignore[type-arg]  # a bare list: an array of anything
    obj: dict,  # type: ignore[type-arg]  # a bare dict: any object
    names: list[str],
    anything: Any = None,
    opt: int = 3,
) -> str:
    """Every simple parameter type.

    Args:
        s: a string
        i: an integer
        x: a number
        b: a boolean
        items: a list
        obj: an object
        names: a list of strings
        anything: any value
        opt: an optional integer
    """
    return "ok"


VALUES: list[Any] = ["a", "", 0, 7, -1, 2.5, 3.0, math.nan, True, False, None, [], [1], ["a", 1], ["a"], {}, {"k": 1}]


def test_the_quick_check_never_passes_what_the_schema_refuses() -> None:
    t = as_tool(typed)
    assert t.accepts is not None
    base = {"s": "a", "i": 1, "x": 1.5, "b": True, "items": [], "obj": {}, "names": ["n"]}
    assert t.accepts(base) and t.validator.is_valid(base)
    checked = 0
    for name in [*base, "anything", "opt", "extra"]:
        for value in VALUES:
            args = {**base, name: value}
            if t.accepts(args):
                assert t.validator.is_valid(args), args
            checked += 1
        without = {k: v for k, v in base.items() if k != name}
        assert not t.accepts(without) or t.validator.is_valid(without)
    assert checked == 10 * len(VALUES)
    # What it leaves to the validator is still accepted when valid (an integral float is an integer).
    assert (
        not t.accepts({**base, "i": 3.0})
        and execute(ToolCall("c", "typed", {**base, "i": 3.0}), {"typed": t}).error is None
    )


def test_bad_arguments_get_the_validators_words() -> None:
    t = as_tool(typed)
    args = {"s": "a", "i": "two", "x": 1.5, "b": True, "items": [], "obj": {}, "names": []}
    result = execute(ToolCall("c", "typed", args), {"typed": t})
    assert result.error == "bad_arguments"
    assert result.content == (
        "Error: invalid arguments for tool \"typed\": argument 'i': 'two' is not of type 'integer'. "
        "Check the tool's parameter schema and call it again."
    )


def _object(prop: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": prop}, "additionalProperties": False}


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        (_object({"anyOf": [{"type": "string"}, {"type": "integer"}]}), {"a": 1}, {"a": 1.5}),
        (_object({"type": ["string", "null"]}), {"a": None}, {"a": 1}),
        (_object({"enum": [1, 2]}), {"a": 2}, {"a": 3}),
        (_object({"type": "string", "minLength": 2}), {"a": "ab"}, {"a": "a"}),
        (_object({"type": "integer", "enum": ["a"]}), {}, {"a": "a"}),
        (
            _object({"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
            {"a": [["s"]]},
            {"a": [[1]]},
        ),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}, {}, []),
    ],
)
def test_schemas_beyond_the_quick_check_go_to_the_validator(schema: dict[str, Any], good: Any, bad: Any) -> None:
    t = Tool("t", "x", schema, lambda **kw: "ran")
    assert t.accepts is None
    assert execute(ToolCall("c", "t", good), {"t": t}).content == "ran"
    result = execute(ToolCall("c", "t", bad), {"t": t})
    assert result.error == "bad_arguments" and result.content.startswith('Error: invalid arguments for tool "t"')


def test_a_literal_parameter_is_checked_against_its_choices() -> None:
    @tool
    def pick(colour: Literal["red", "green"]) -> str:
        """Pick a colour.

        Args:
            colour: which
        """
        return colour

    t = as_tool(pick)
    assert t.accepts is not None and t.accepts({"colour": "red"}) and not t.accepts({"colour": "blue"})
    result = execute(ToolCall("c", "pick", {"colour": "blue"}), {"pick": t})
    assert result.error == "bad_arguments" and "'blue' is not one of ['red', 'green']" in result.content


# ----- calls, copies and caches ----------------------------------------------------------------------


def test_arguments_json_is_strict_and_written_once() -> None:
    c = ToolCall("c", "f", {"x": 1.5, "s": "é"})
    assert c.arguments_json == json.dumps({"x": 1.5, "s": "é"}) and c.arguments_json is c.arguments_json
    assert c.to_openai()["function"]["arguments"] == c.arguments_json
    nan = ToolCall("c", "f", {"x": math.nan})
    assert nan.arguments_json is None and nan.to_openai()["function"]["arguments"] == '{"x": NaN}'
    assert ToolCall("c", "f", None).arguments_json == "{}"
    assert c == ToolCall("c", "f", {"x": 1.5, "s": "é"})  # the cache is no part of equality


def test_what_reset_and_step_return_is_the_callers_to_change() -> None:
    env = agentgym.make("agentgym/Calculator-v0")
    obs, info = env.reset(seed=0)
    kept = copy_json(env.unwrapped.messages)  # type: ignore[attr-defined]
    obs[0]["content"] = "changed"
    info["tools"][0]["function"]["parameters"]["properties"].clear()
    _, info2 = env.reset(seed=0)
    assert env.unwrapped.messages == kept  # type: ignore[attr-defined]
    assert info2["tools"][0]["function"]["parameters"]["properties"]
    task = env.unwrapped.task  # type: ignore[attr-defined]
    obs, _, _, _, info = env.step(env.unwrapped.oracle_turns(task)[0])  # type: ignore[attr-defined]
    before = copy_json(env.unwrapped.messages)  # type: ignore[attr-defined]
    obs[0]["content"] = "changed"
    info["assistant_message"]["tool_calls"][0]["function"]["name"] = "changed"
    info["reward_components"]["step_cost"] = 99.0
    assert env.unwrapped.messages == before  # type: ignore[attr-defined]
    assert info["assistant_message"] is not env.unwrapped.messages[-2]  # type: ignore[attr-defined]
    env.close()


def test_the_tools_block_follows_the_tool_format() -> None:
    env = agentgym.make("agentgym/Calculator-v0")
    hermes, _ = env.reset(seed=0)
    llama, _ = env.reset(seed=0, options={"tool_format": "llama3"})
    again, _ = env.reset(seed=0, options={"tool_format": "hermes"})
    assert FORMAT_HINT in hermes[0]["content"] and LLAMA3_HINT in llama[0]["content"]
    assert hermes[0]["content"] != llama[0]["content"] and again[0]["content"] == hermes[0]["content"]
    parser = env.unwrapped.parser  # type: ignore[attr-defined]
    env.reset(seed=0, options={"tool_format": "qwen"})  # the same format under another name: kept
    assert env.unwrapped.parser is parser  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown tool-call parser 'nope'"):
        env.reset(seed=0, options={"tool_format": "nope"})
    env.close()


def test_copy_json_copies_containers_and_keeps_leaves() -> None:
    from collections import Counter, OrderedDict

    data = {"a": [1, 2.5, "s", None, True, {"b": [{}]}], "c": Counter(x=2), "d": OrderedDict(k=(1, 2))}
    out = copy_json(data)
    assert out == data and out is not data and out["a"][5] is not data["a"][5]
    assert type(out["c"]) is dict and type(out["d"]) is dict and out["d"]["k"] == (1, 2)


def test_a_tool_bound_to_an_env_keeps_its_validator_and_where_it_runs() -> None:
    env = Threads()
    bound = {x.name: x for x in env.tools}
    spec = Threads.here.__agentgym_tool__  # type: ignore[attr-defined]
    assert bound["here"].validator is spec.validator  # schema checked and compiled once, at @tool
    assert isinstance(spec.validator, jsonschema.Draft202012Validator)
    assert (bound["here"].inline, bound["timed"].inline, bound["timed"].timeout) == (True, False, 5.0)
    assert bound["here"].accepts is not None
    env.close()
