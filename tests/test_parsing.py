"""Tool-call parsing and execution: every malformed case, with the exact message the model sees."""

from __future__ import annotations

import time

import pytest

import agentgym
from agentgym.parsing import (
    FORMAT_HINT,
    JSON_HINT,
    LLAMA3_HINT,
    MISTRAL_HINT,
    PARSERS,
    HermesParser,
    JSONParser,
    Llama3Parser,
    MistralParser,
    detect_parser,
    get_parser,
    parse_action,
    tools_prompt,
)
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
    p = parse(
        '<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call><tool_call>{"name": "add", "arguments": {"a": '
        "2}}</tool_call>"
    )
    assert [c.id for c in p.calls] == ["call_1_0", "call_1_1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '<tool_call>{"name": "add", "arguments": {"a": 1}</tool_call>',
            "Error: could not parse tool call: invalid JSON (Expecting ',' delimiter at line 1 column 38). "
            + FORMAT_HINT,
            id="malformed-json",
        ),
        pytest.param(
            '<tool_call>{"name": "add", "arguments": {"a": 1}}',
            f"Error: could not parse tool call: <tool_call> is not closed by </tool_call>. {FORMAT_HINT}",
            id="unclosed-tag",
        ),
        pytest.param(
            '{"name": "add"}</tool_call>',
            f"Error: could not parse tool call: </tool_call> without a matching <tool_call>. {FORMAT_HINT}",
            id="stray-closing-tag",
        ),
        pytest.param(
            '<tool_call>{"arguments": {"a": 1}}</tool_call>',
            f'Error: could not parse tool call: missing "name" (a string). {FORMAT_HINT}',
            id="missing-name",
        ),
        pytest.param(
            "<tool_call>[1, 2]</tool_call>",
            f"Error: could not parse tool call: expected a JSON object, got list. {FORMAT_HINT}",
            id="not-an-object",
        ),
        pytest.param(
            '<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>',
            'Error: arguments of tool "add" must be a JSON object, got list.',
            id="arguments-not-an-object",
        ),
        pytest.param(
            '<tool_call>{"name": "add", "arguments": "{a: 1}"}</tool_call>',
            'Error: could not parse arguments of tool "add": invalid JSON (Expecting property name enclosed in double '
            "quotes). Arguments must be a JSON object.",
            id="arguments-string-not-json",
        ),
    ],
)
def test_a_malformed_call_is_one_error_that_says_how_to_write_it(text: str, message: str) -> None:
    p = parse(text)
    assert p.calls == []
    assert [e.message for e in p.errors] == [message]


def test_unknown_tool() -> None:
    r = execute(ToolCall("c", "mul", {"a": 1}), TOOLS)
    assert (r.error, r.content) == ("unknown_tool", 'Error: unknown tool "mul". Available tools: add, boom, slow.')


def test_wrong_argument_type() -> None:
    r = execute(ToolCall("c", "add", {"a": "two"}), TOOLS)
    assert r.error == "bad_arguments"
    assert (
        r.content
        == "Error: invalid arguments for tool \"add\": argument 'a': 'two' is not of type 'integer'. Check the tool's "
        "parameter schema and call it again."
    )


def test_missing_and_extra_arguments() -> None:
    r = execute(ToolCall("c", "add", {}), TOOLS)
    assert (
        r.content
        == "Error: invalid arguments for tool \"add\": 'a' is a required property. Check the tool's parameter schema "
        "and call it again."
    )
    r = execute(ToolCall("c", "add", {"a": 1, "c": 2}), TOOLS)
    assert (
        r.content
        == "Error: invalid arguments for tool \"add\": Additional properties are not allowed ('c' was unexpected). "
        "Check the tool's parameter schema and call it again."
    )


def test_tool_exception() -> None:
    r = execute(ToolCall("c", "boom", {"x": "q"}), TOOLS)
    assert (r.error, r.content) == ("tool_exception", 'Error: tool "boom" raised ValueError: bad value q')


def test_tool_timeout() -> None:
    start = time.monotonic()
    r = execute(ToolCall("c", "slow", {}), TOOLS)
    assert (r.error, r.content) == ("timeout", 'Error: tool "slow" timed out after 0.2 s.')
    assert time.monotonic() - start < 1.5


def test_openai_message_dict() -> None:
    msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "abc", "type": "function", "function": {"name": "add", "arguments": '{"a": 5}'}}],
    }
    p = parse_action(msg, HermesParser(), turn=2)
    assert p.calls == [ToolCall("abc", "add", {"a": 5}, '{"name": "add", "arguments": "{\\"a\\": 5}"}')]
    bad = {"role": "assistant", "content": None, "tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]}
    assert [e.message for e in parse_action(bad, HermesParser(), 2).errors] == [
        'Error: a tool call has no function name. Each entry of "tool_calls" needs "function": {"name": ..., '
        '"arguments": ...}.'
    ]


def test_json_parser_and_registry() -> None:
    _, calls, errors = JSONParser().parse('{"name": "add", "arguments": {"a": 1}}', 1)
    assert calls[0].name == "add" and errors == []
    assert [e.message for e in JSONParser().parse('{"name": "add", "arguments": {"a": 1}', 1)[2]] == [
        f"Error: could not parse tool call: invalid JSON (Expecting ',' delimiter at line 1 column 38). {JSON_HINT}"
    ]
    assert isinstance(get_parser("qwen"), HermesParser)
    assert isinstance(get_parser("llama3"), Llama3Parser) and isinstance(get_parser("mistral"), MistralParser)
    assert all(get_parser(name).format_hint for name in PARSERS)
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
                "properties": {
                    "a": {"type": "integer", "description": "first addend"},
                    "b": {"type": "integer", "description": "second addend", "default": 1},
                },
                "required": ["a"],
                "additionalProperties": False,
            },
        },
    }


def test_errors_reach_the_model_through_step() -> None:
    env = agentgym.make("agentgym/ToolUse-v0")
    env.reset(seed=0)
    obs, _reward, term, trunc, info = env.step(
        '<tool_call>{"name": "calculator"</tool_call><tool_call>{"name": "nope", "arguments": {}}</tool_call>'
    )
    # The unreadable call has no id to answer: the model reads its error in a user message (env.py).
    assert [m["role"] for m in obs] == ["tool", "user"]
    assert obs[0]["content"] == 'Error: unknown tool "nope". Available tools: calculator, convert, lookup, submit.'
    assert obs[1]["content"].startswith("Error: could not parse tool call: invalid JSON")
    assert info["tool_errors"] == {"malformed": 1, "unknown_tool": 1}
    assert not term and not trunc
    env.close()


# ----- Llama-3.x JSON calls ------------------------------------------------------------


def llama(text: str):
    return parse_action(text, Llama3Parser(), turn=3)


def test_llama3_calls_with_and_without_python_tag() -> None:
    p = llama('{"name": "add", "parameters": {"a": 2, "b": 3}}')
    assert p.errors == [] and p.content == ""
    assert [(c.id, c.name, c.arguments) for c in p.calls] == [("call_3_0", "add", {"a": 2, "b": 3})]
    p = llama(
        'Let me add.<|python_tag|>{"name": "add", "parameters": {"a": 1}}; {"name": "boom", "arguments": {"x": "q"}}'
    )
    assert p.errors == [] and p.content == "Let me add."
    assert [(c.id, c.name, c.arguments) for c in p.calls] == [
        ("call_3_0", "add", {"a": 1}),
        ("call_3_1", "boom", {"x": "q"}),
    ]
    p = llama('[{"name": "add", "parameters": {"a": 1}}, {"name": "add", "parameters": "{\\"a\\": 2}"}]')
    assert [c.arguments for c in p.calls] == [{"a": 1}, {"a": 2}] and p.errors == []
    assert llama("The answer is 42.").calls == [] and llama("The answer is 42.").content == "The answer is 42."
    assert execute(llama('{"name": "add", "parameters": {"a": 4}}').calls[0], TOOLS).content == "5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"name": "add", "parameters": {"a": 1}',
            "Error: could not parse tool call: invalid JSON (Expecting ',' delimiter at line 1 column 39). "
            f"{LLAMA3_HINT}",
        ),
        ('{"parameters": {"a": 1}}', f'Error: could not parse tool call: missing "name" (a string). {LLAMA3_HINT}'),
        ('{"name": "add", "parameters": [1]}', 'Error: arguments of tool "add" must be a JSON object, got list.'),
        ("<|python_tag|>   ", f"Error: could not parse tool call: nothing follows <|python_tag|>. {LLAMA3_HINT}"),
        (
            '<|python_tag|>{"name": "add"}<|python_tag|>{}',
            f"Error: could not parse tool call: <|python_tag|> appears more than once. {LLAMA3_HINT}",
        ),
        ("[1]", f"Error: could not parse tool call: expected a JSON object, got int. {LLAMA3_HINT}"),
    ],
)
def test_llama3_malformed_calls(text: str, message: str) -> None:
    p = llama(text)
    assert p.calls == [] and [e.message for e in p.errors] == [message]


def test_llama3_call_followed_by_garbage_keeps_the_call_and_reports_the_rest() -> None:
    p = llama('{"name": "add", "parameters": {"a": 1}} and then {oops')
    assert [c.name for c in p.calls] == ["add"]
    assert [e.message for e in p.errors] == [
        f"Error: could not parse tool call: invalid JSON (Expecting value at line 1 column 1). {LLAMA3_HINT}"
    ]
    assert p.errors[0].raw == "and then {oops"


# ----- Mistral calls ---------------------------------------------------------------------


def mistral(text: str, turn: int = 2):
    return parse_action(text, MistralParser(), turn=turn)


def test_mistral_calls_and_their_ids() -> None:
    p = mistral(
        'Sure. [TOOL_CALLS][{"name": "add", "arguments": {"a": 1}}, {"name": "add", "arguments": {"a": 2, "b": 5}}]'
    )
    assert p.errors == [] and p.content == "Sure."
    assert [(c.name, c.arguments) for c in p.calls] == [("add", {"a": 1}), ("add", {"a": 2, "b": 5})]
    ids = [c.id for c in p.calls] + [
        c.id for c in mistral('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1}}]', turn=11).calls
    ]
    assert all(len(i) == 9 and i.isalnum() for i in ids) and len(set(ids)) == 3
    p = mistral('[TOOL_CALLS]add[ARGS]{"a": 1}[TOOL_CALLS]boom[CALL_ID]abcdefghi[ARGS]{"x": "y"}')
    assert [(c.name, c.arguments) for c in p.calls] == [("add", {"a": 1}), ("boom", {"x": "y"})] and p.errors == []
    assert mistral("No calls here.").calls == [] and mistral("No calls here.").content == "No calls here."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[TOOL_CALLS]", f"Error: could not parse tool call: nothing follows [TOOL_CALLS]. {MISTRAL_HINT}"),
        ("[TOOL_CALLS][]", f"Error: could not parse tool call: the list after [TOOL_CALLS] is empty. {MISTRAL_HINT}"),
        (
            '[TOOL_CALLS][{"name": "add", "arguments": {"a": 1}]',
            "Error: could not parse tool call: invalid JSON (Expecting ',' delimiter at line 1 column 39). "
            f"{MISTRAL_HINT}",
        ),
        (
            '[TOOL_CALLS][{"arguments": {"a": 1}}]',
            f'Error: could not parse tool call: missing "name" (a string). {MISTRAL_HINT}',
        ),
        (
            '[TOOL_CALLS][{"name": "add", "arguments": "{a: 1}"}]',
            'Error: could not parse arguments of tool "add": invalid JSON (Expecting property name enclosed in double '
            "quotes). Arguments must be a JSON object.",
        ),
        (
            "[TOOL_CALLS]add[ARGS]{a",
            'Error: could not parse arguments of tool "add": invalid JSON (Expecting property name enclosed in double '
            f"quotes). {MISTRAL_HINT}",
        ),
    ],
)
def test_mistral_malformed_calls(text: str, message: str) -> None:
    p = mistral(text)
    assert p.calls == [] and [e.message for e in p.errors] == [message]


# ----- choosing the parser per model -------------------------------------------------------


class FakeTokenizer:
    def __init__(self, template: str | dict, vocab: tuple[str, ...] = ()):
        self.chat_template = template
        self.vocab = {t: i for i, t in enumerate(vocab)}

    def get_vocab(self) -> dict:
        return self.vocab


@pytest.mark.parametrize(
    ("template", "vocab", "native", "expected"),
    [
        (
            "{% for tool in tools %}<tool_call>{% endfor %}",
            ("<|im_start|>", "<tool_call>"),
            True,
            "hermes",
        ),  # Qwen2.5 / Hermes
        (
            'Respond in the format {"name": function name, "parameters": dictionary}',
            ("<|eot_id|>",),
            True,
            "llama3",
        ),  # Llama-3.1
        ("{{ bos_token }}", ("<|python_tag|>", "<|eot_id|>"), True, "llama3"),
        ("[AVAILABLE_TOOLS]{{ tools }}", ("[INST]", "[TOOL_CALLS]"), True, "mistral"),
        ({"default": "x", "tool_use": "{{ '[TOOL_CALLS]' }}"}, (), True, "mistral"),
        ("{{ '[TOOL_CALLS]' }}", ("[TOOL_CALLS]",), False, "hermes"),  # tools described by agentgym's Hermes block
        ("<|im_start|>{{ m }}", ("<|im_start|>",), True, "hermes"),  # nothing recognised: the fallback format
    ],
)
def test_detect_parser(template, vocab, native: bool, expected: str) -> None:
    assert detect_parser(FakeTokenizer(template, vocab), native_tools=native) == expected


def test_tools_prompt_is_the_block_the_environment_writes() -> None:
    env = agentgym.make("agentgym/ToolUse-v0")
    obs, info = env.reset(seed=0)
    env.close()
    assert obs[0]["content"].endswith("\n\n" + tools_prompt(info["tools"]))
    assert tools_prompt(info["tools"], "llama3").endswith(LLAMA3_HINT)


@pytest.mark.parametrize(
    ("parser", "call"),
    [
        ("llama3", '<|python_tag|>{"name": "calculator", "parameters": {"expression": "2 + 3"}}'),
        ("mistral", '[TOOL_CALLS][{"name": "calculator", "arguments": {"expression": "2 + 3"}}]'),
    ],
)
def test_environment_reads_each_family_format(parser: str, call: str) -> None:
    env = agentgym.make("agentgym/ToolUse-v0", parser=parser)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(call)
    env.close()
    assert info["tool_calls"] == 1 and info["tool_errors"] == {}
    assert [m["role"] for m in obs] == ["tool"] and obs[0]["content"] == "5"
    (assistant_msg,) = [m for m in env.messages if m["role"] == "assistant"]
    assert obs[0]["tool_call_id"] == assistant_msg["tool_calls"][0]["id"]


def test_openai_policy_sends_tools_instead_of_the_block_when_asked() -> None:
    from agentgym.parsing import without_tools_prompt
    from agentgym.policies import OpenAIPolicy, PolicyContext

    env = agentgym.make("agentgym/ToolUse-v0")
    obs, info = env.reset(seed=0)
    ctx = PolicyContext(env=env, task=env.task, messages=env.messages, new_messages=obs, tools=info["tools"])
    plain = OpenAIPolicy("http://127.0.0.1:9/v1", tools=False).request(ctx)
    native = OpenAIPolicy("http://127.0.0.1:9/v1", tools=True).request(ctx)
    env.close()
    assert "tools" not in plain and plain["messages"] == env.messages
    assert native["tools"] == info["tools"] and native["messages"][1:] == env.messages[1:]
    assert native["messages"][0]["content"] == env.system_prompt  # the block is gone, the env's prompt stays
    assert (
        without_tools_prompt([{"role": "system", "content": "Hi."}], info["tools"]) is None
    )  # nothing to cut: no tools= either
