"""Tool-call parsing and execution: every malformed case, with the exact message the model sees."""

from __future__ import annotations

import time

import pytest

import agentgym
from agentgym.parsing import FORMAT_HINT, HermesParser, JSONParser, get_parser, parse_action
from agentgym.tools import ToolCall, as_tool, execute, tool


@tool
def add(a: int, b: int = 1) -> int:
    """Add two integers.

    Args:
        a: first addend
        b: second addend
    """
    return a + b


@tool(timeout=0.2)
def slow() -> str:
    """Sleep too long."""
    time.sleep(2)
    return "done"


@tool
def boom(x: str) -> str:
    """Always fails."""
    raise ValueError(f"bad value {x}")


TOOLS = {t.name: t for t in map(as_tool, (add, slow, boom))}


def parse(text: str):
    return parse_action(text, HermesParser(), turn=1)


def test_well_formed_call() -> None:
    p = parse('I will add.\n<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>')
    assert p.errors == []
    assert p.calls == [ToolCall("call_1_0", "add", {"a": 2, "b": 3}, '{"name": "add", "arguments": {"a": 2, "b": 3}}')]
    assert p.content == "I will add."
    assert p.message["content"].startswith("I will add.")  # raw text kept verbatim
    assert execute(p.calls[0], TOOLS).content == "5"


def test_arguments_as_json_string() -> None:
    p = parse('<tool_call>{"name": "add", "arguments": "{\\"a\\": 4}"}</tool_call>')
    assert p.calls[0].arguments == {"a": 4}


def test_several_calls_get_distinct_ids() -> None:
    p = parse('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call><tool_call>{"name": "add", "arguments": {"a": 2}}</tool_call>')
    assert [c.id for c in p.calls] == ["call_1_0", "call_1_1"]


def test_malformed_json() -> None:
    p = parse('<tool_call>{"name": "add", "arguments": {"a": 1}</tool_call>')
    assert p.calls == []
    assert [e.message for e in p.errors] == [
        f"Error: could not parse tool call: invalid JSON (Expecting ',' delimiter at line 1 column 38). {FORMAT_HINT}"
    ]


def test_unclosed_tag() -> None:
    p = parse('<tool_call>{"name": "add", "arguments": {"a": 1}}')
    assert [e.message for e in p.errors] == [f"Error: could not parse tool call: <tool_call> is not closed by </tool_call>. {FORMAT_HINT}"]


def test_stray_closing_tag() -> None:
    p = parse('{"name": "add"}</tool_call>')
    assert [e.message for e in p.errors] == [f"Error: could not parse tool call: </tool_call> without a matching <tool_call>. {FORMAT_HINT}"]


def test_missing_name() -> None:
    p = parse('<tool_call>{"arguments": {"a": 1}}</tool_call>')
    assert [e.message for e in p.errors] == [f'Error: could not parse tool call: missing "name" (a string). {FORMAT_HINT}']


def test_not_an_object() -> None:
    p = parse("<tool_call>[1, 2]</tool_call>")
    assert [e.message for e in p.errors] == [f"Error: could not parse tool call: expected a JSON object, got list. {FORMAT_HINT}"]


def test_arguments_not_an_object() -> None:
    p = parse('<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>')
    assert [e.message for e in p.errors] == ['Error: arguments of tool "add" must be a JSON object, got list.']


def test_arguments_string_not_json() -> None:
    p = parse('<tool_call>{"name": "add", "arguments": "{a: 1}"}</tool_call>')
    assert [e.message for e in p.errors] == [
        'Error: could not parse arguments of tool "add": invalid JSON (Expecting property name enclosed in double quotes). Arguments must be a JSON object.'
    ]


def test_unknown_tool() -> None:
    r = execute(ToolCall("c", "mul", {"a": 1}), TOOLS)
    assert (r.error, r.content) == ("unknown_tool", 'Error: unknown tool "mul". Available tools: add, boom, slow.')


def test_wrong_argument_type() -> None:
    r = execute(ToolCall("c", "add", {"a": "two"}), TOOLS)
    assert r.error == "bad_arguments"
    assert r.content == "Error: invalid arguments for tool \"add\": argument 'a': 'two' is not of type 'integer'. Check the tool's parameter schema and call it again."


def test_missing_and_extra_arguments() -> None:
    r = execute(ToolCall("c", "add", {}), TOOLS)
    assert r.content == "Error: invalid arguments for tool \"add\": 'a' is a required property. Check the tool's parameter schema and call it again."
    r = execute(ToolCall("c", "add", {"a": 1, "c": 2}), TOOLS)
    assert r.content == "Error: invalid arguments for tool \"add\": Additional properties are not allowed ('c' was unexpected). Check the tool's parameter schema and call it again."


def test_tool_exception() -> None:
    r = execute(ToolCall("c", "boom", {"x": "q"}), TOOLS)
    assert (r.error, r.content) == ("tool_exception", 'Error: tool "boom" raised ValueError: bad value q')


def test_tool_timeout() -> None:
    start = time.monotonic()
    r = execute(ToolCall("c", "slow", {}), TOOLS)
    assert (r.error, r.content) == ("timeout", 'Error: tool "slow" timed out after 0.2 s.')
    assert time.monotonic() - start < 1.5


def test_openai_message_dict() -> None:
    msg = {"role": "assistant", "content": None, "tool_calls": [{"id": "abc", "type": "function", "function": {"name": "add", "arguments": '{"a": 5}'}}]}
    p = parse_action(msg, HermesParser(), turn=2)
    assert p.calls == [ToolCall("abc", "add", {"a": 5}, '{"name": "add", "arguments": "{\\"a\\": 5}"}')]
    bad = {"role": "assistant", "content": None, "tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]}
    assert [e.message for e in parse_action(bad, HermesParser(), 2).errors] == [
        'Error: a tool call has no function name. Each entry of "tool_calls" needs "function": {"name": ..., "arguments": ...}.'
    ]


def test_json_parser_and_registry() -> None:
    text, calls, errors = JSONParser().parse('{"name": "add", "arguments": {"a": 1}}', 1)
    assert calls[0].name == "add" and errors == []
    assert isinstance(get_parser("qwen"), HermesParser)
    with pytest.raises(ValueError, match="unknown tool-call parser 'nope'; choose one of"):
        get_parser("nope")


def test_schema_from_signature_and_docstring() -> None:
    assert as_tool(add).schema() == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer", "description": "first addend"}, "b": {"type": "integer", "description": "second addend", "default": 1}},
                "required": ["a"],
                "additionalProperties": False,
            },
        },
    }


def test_errors_reach_the_model_through_step() -> None:
    env = agentgym.make("agentgym/ToolUse-v0")
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step('<tool_call>{"name": "calculator"</tool_call><tool_call>{"name": "nope", "arguments": {}}</tool_call>')
    assert [m["role"] for m in obs] == ["tool", "tool"]
    assert obs[0]["content"].startswith("Error: could not parse tool call: invalid JSON")
    assert obs[1]["content"] == 'Error: unknown tool "nope". Available tools: calculator, convert, lookup, submit.'
    assert info["tool_errors"] == {"malformed": 1, "unknown_tool": 1}
    assert not term and not trunc
    env.close()
