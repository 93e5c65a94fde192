"""Transcripts are valid chat data.

Checked with the official ``openai`` types and by rendering through a real HF chat template
that supports tools (Qwen2.5-style, built here into a locally made tokenizer), for every
registered environment's oracle and random episodes and for every kind of bad turn (malformed
calls, unknown tools, bad arguments, timeouts, infrastructure failures, episode-ending calls,
bad message dicts).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import time
import typing

import pytest

import agentgym
from agentgym import InfrastructureError, Task, TaskSet, load_jsonl, save_jsonl
from agentgym.env import AgentEnv
from agentgym.messages import transcript_problems
from agentgym.testing import require, require_bwrap
from agentgym.tools import tool

try:  # the official schema; a dev dependency (in CI a missing one fails, see agentgym.testing.require)
    import openai.types.chat as openai_chat
    import pydantic
except ImportError:  # pragma: no cover
    openai_chat = pydantic = None

# A tools-aware template in the style of Qwen2.5's: tools listed in the system turn, calls
# rendered from ``tool_calls`` as <tool_call> JSON, tool results grouped in a user turn as
# <tool_response>. Unlike Qwen's, it also refuses transcripts that break the call protocol
# (a tool message answering no pending call, calls left unanswered, a message after them),
# the way Mistral's templates refuse broken role order.
QWEN_STYLE_TEMPLATE = r"""
{%- set ns = namespace(pending=[], in_tools=false) -%}
{%- if tools %}
{{- '<|im_start|>system\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
{{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n<tools>' }}
{%- for t in tools %}{{- '\n' + (t | tojson) }}{%- endfor %}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags.<|im_end|>\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
  {%- if message.role != 'tool' and ns.pending | length > 0 %}
    {{- raise_exception('calls ' + (ns.pending | join(', ')) + ' were not answered before a ' + message.role + ' message') }}
  {%- endif %}
  {%- if message.role == 'tool' %}
    {%- if message.tool_call_id not in ns.pending %}
      {{- raise_exception('tool message answers ' + (message.tool_call_id | string) + ', which is no pending call') }}
    {%- endif %}
    {%- set ns.pending = ns.pending | reject('equalto', message.tool_call_id) | list %}
    {%- if not ns.in_tools %}{{- '<|im_start|>user' }}{%- endif %}
    {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
    {%- set ns.in_tools = true %}
    {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{%- set ns.in_tools = false %}{%- endif %}
  {%- elif message.role == 'assistant' %}
    {{- '<|im_start|>assistant' }}
    {%- if message.content %}{{- '\n' + message.content }}{%- endif %}
    {%- for call in message.tool_calls or [] %}
      {%- set fn = call.function %}
      {%- set ns.pending = ns.pending + [call.id] %}
      {{- '\n<tool_call>\n{"name": "' + fn.name + '", "arguments": ' }}
      {%- if fn.arguments is string %}{{- fn.arguments }}{%- else %}{{- fn.arguments | tojson }}{%- endif %}
      {{- '}\n</tool_call>' }}
    {%- endfor %}
    {{- '<|im_end|>\n' }}
  {%- elif not (loop.first and message.role == 'system') %}
    {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
  {%- endif %}
{%- endfor %}
{%- if ns.pending | length > 0 %}{{- raise_exception('calls ' + (ns.pending | join(', ')) + ' were never answered') }}{%- endif %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
"""  # noqa: E501  (a chat template: its lines stay as its authors write them)


CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + (m.content or '') + '<|im_end|>\\n' }}{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>", chat_template=QWEN_STYLE_TEMPLATE
    )


@functools.cache
def _openai_schema() -> tuple:
    require(openai_chat is not None, "the openai package (dev extra) is needed: pip install -e '.[dev]'")
    keys = {
        "system": set(typing.get_type_hints(openai_chat.ChatCompletionSystemMessageParam)),
        "user": set(typing.get_type_hints(openai_chat.ChatCompletionUserMessageParam)),
        "assistant": set(typing.get_type_hints(openai_chat.ChatCompletionAssistantMessageParam)),
        # ``name`` on tool messages is what HF's tool-use docs show; OpenAI-compatible servers accept it.
        "tool": set(typing.get_type_hints(openai_chat.ChatCompletionToolMessageParam)) | {"name"},
    }
    return pydantic.TypeAdapter(openai_chat.ChatCompletionMessageParam), keys


def check_transcript(messages: list[dict], tools: list[dict], tokenizer) -> str:
    """Assert ``messages`` is valid OpenAI chat data that a tools template renders with each call once."""
    _MESSAGE, _KEYS = _openai_schema()
    assert transcript_problems(messages) == []
    for m in messages:
        _MESSAGE.validate_python(m)  # the official types: roles, required keys, value types
        assert set(m) <= _KEYS[m["role"]], f"keys outside the OpenAI schema: {set(m) - _KEYS[m['role']]}"
        if m["role"] == "assistant":
            for call in m.get("tool_calls", []):
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
            assert "<tool_call>" not in (m.get("content") or ""), "raw call markup left in content"
    rendered = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    n_calls = sum(len(m.get("tool_calls", [])) for m in messages)
    assistant_blocks = [b.split("<|im_end|>")[0] for b in rendered.split("<|im_start|>assistant")[1:]]
    assert len(assistant_blocks) == sum(m["role"] == "assistant" for m in messages)
    assert sum(b.count("<tool_call>") for b in assistant_blocks) == n_calls, "a call is rendered twice (or not at all)"
    assert rendered.count("<tool_response>") == sum(m["role"] == "tool" for m in messages)
    return rendered


# ----- a small env with every kind of tool outcome ----------------------------------------


class Toolbox(AgentEnv):
    """Tools that succeed, time out, fail as infrastructure, or end the episode."""

    default_max_turns = 6

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task("t0", "Use the tools.", split="train")])

    @tool
    def echo(self, text: str) -> str:
        """Echo text.

        Args:
            text: what to echo
        """
        return text

    @tool(timeout=0.2)
    def slow(self) -> str:
        """Sleep past the timeout."""
        time.sleep(1.0)
        return "late"

    @tool
    def crash(self) -> str:
        """The machinery behind the tool fails."""
        raise InfrastructureError("sandbox died")

    @tool(terminal=True)
    def finish(self) -> str:
        """End the episode."""
        self.end("submitted")
        return "Done."


def call(name: str, **args) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"


def _play(turns: list) -> Toolbox:
    env = Toolbox()
    env.reset(seed=0)
    for t in turns:
        _, _, term, trunc, _ = env.step(t)
        if term or trunc:
            break
    return env


def test_assistant_turn_is_prose_plus_tool_calls_and_raw_text_is_kept(tokenizer) -> None:
    text = "Let me echo.\n" + call("echo", text="hi") + "\nand again " + call("echo", text="ho")
    env = _play([text])
    assistant = env.messages[2]
    assert assistant["content"] == "Let me echo.\n\nand again"
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["echo", "echo"]
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [{"text": "hi"}, {"text": "ho"}]
    assert [m["tool_call_id"] for m in env.messages[3:5]] == [c["id"] for c in assistant["tool_calls"]]
    assert [m["content"] for m in env.messages[3:5]] == ["hi", "ho"]
    assert env.raw_messages[2] == {"role": "assistant", "content": text}
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    # The raw view (plain ChatML, as the token path renders it) shows exactly what the model wrote.
    assert f"<|im_start|>assistant\n{text}<|im_end|>" in tokenizer.apply_chat_template(
        env.raw_messages, chat_template=CHATML, tokenize=False
    )
    env.close()


def test_calls_only_turn_has_no_content(tokenizer) -> None:
    env = _play([call("echo", text="x")])
    assert env.messages[2]["content"] is None and len(env.messages[2]["tool_calls"]) == 1
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    env.close()


def test_malformed_unknown_bad_arguments_and_timeout_in_one_turn(tokenizer) -> None:
    turn = (
        "try all: "
        + call("echo", text="ok")
        + '<tool_call>{"name": "echo", "arguments": {broken</tool_call>'
        + call("nope")
        + call("echo", text=3)
        + call("slow")
        + "<tool_call>never closed"
    )
    env = _play([turn])
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    tool_msgs = [m for m in env.messages if m["role"] == "tool"]
    assert [m["name"] for m in tool_msgs] == ["echo", "nope", "echo", "slow"]
    assert tool_msgs[0]["content"] == "ok"
    assert tool_msgs[1]["content"].startswith('Error: unknown tool "nope"')
    assert tool_msgs[2]["content"].startswith('Error: invalid arguments for tool "echo"')
    assert "timed out" in tool_msgs[3]["content"]
    # The two unreadable calls answer no id: one user message after the tool messages
    # tells the model, quoting what it wrote.
    feedback = env.messages[-1]
    assert feedback["role"] == "user" and env.messages[-2]["role"] == "tool"
    assert "invalid JSON" in feedback["content"] and '{"name": "echo", "arguments": {broken' in feedback["content"]
    assert "is not closed" in feedback["content"] and "never closed" in feedback["content"]
    assert "broken" not in (env.messages[2]["content"] or "")
    env.close()


def test_infrastructure_failure_answers_every_remaining_call(tokenizer) -> None:
    env = Toolbox()
    env.reset(seed=0)
    _, _, term, trunc, info = env.step(call("echo", text="a") + call("crash") + call("echo", text="b") + call("finish"))
    assert (term, trunc, info["termination_reason"], info["infra_failure"]) == (False, True, "infra_error", True)
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    answers = [m["content"] for m in env.messages if m["role"] == "tool"]
    assert answers[0] == "a"
    assert "not your fault" in answers[1] and "sandbox died" in answers[1]
    assert answers[2].startswith("Not run") and answers[3].startswith("Not run")
    env.close()


def test_episode_ending_call_answers_the_calls_after_it(tokenizer) -> None:
    env = Toolbox()
    env.reset(seed=0)
    _, _, term, _, info = env.step(call("finish") + call("echo", text="late"))
    assert term and info["termination_reason"] == "submitted"
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    assert [m["content"] for m in env.messages[-2:]] == [
        "Done.",
        "Not run: an earlier call in this turn ended the episode.",
    ]
    env.close()


def test_text_turn_nudge_and_feedback_are_one_user_message(tokenizer) -> None:
    env = _play(["I think the answer is 4.", "<tool_call>[1, 2]</tool_call>"])
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    assert env.messages[2] == {"role": "assistant", "content": "I think the answer is 4."}
    assert env.messages[3]["role"] == "user" and "contained no tool call" in env.messages[3]["content"]
    assert env.messages[4] == {"role": "assistant", "content": ""}
    assert env.messages[5]["role"] == "user" and "expected a JSON object" in env.messages[5]["content"]
    env.close()


def test_message_dict_actions_with_bad_and_repeated_ids(tokenizer) -> None:
    def fn(name: str, args: str) -> dict:
        return {"name": name, "arguments": args}

    action = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c", "type": "function", "function": fn("echo", '{"text": "1"}')},
            {"id": "c", "type": "function", "function": fn("echo", '{"text": "2"}')},  # repeated id
            {"type": "function", "function": fn("echo", '{"text": "3"}')},  # no id
            {"id": "d", "type": "function", "function": {"arguments": "{}"}},  # no name: unreadable
            {"id": "e", "type": "function", "function": fn("echo", "{not json")},  # unreadable arguments
        ],
    }
    env = _play([action])
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    ids = [c["id"] for c in env.messages[2]["tool_calls"]]
    assert len(ids) == 3 == len(set(ids)) and ids[0] == "c"
    assert [m["content"] for m in env.messages if m["role"] == "tool"] == ["1", "2", "3"]
    assert env.messages[-1]["role"] == "user" and "no function name" in env.messages[-1]["content"]
    assert env.raw_messages == env.messages  # a dict action has no separate raw text
    env.close()


def test_trajectory_keeps_raw_text_through_jsonl(tmp_path, tokenizer) -> None:
    [t] = agentgym.collect("agentgym/ToolUse-v0", "oracle", tasks=["chain-0003"], progress=False)
    save_jsonl([t], tmp_path / "t.jsonl")
    [back] = load_jsonl(tmp_path / "t.jsonl")
    raw = back.raw_messages()
    assert [m["content"] for m in raw if m["role"] == "assistant"] == [s.action for s in back.steps]
    assert all("tool_calls" not in m for m in raw if m["role"] == "assistant")
    check_transcript(back.messages, back.tools, tokenizer)


def test_transcript_problems_finds_each_violation() -> None:
    a = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    ok = [{"role": "user", "content": "q"}, a, {"role": "tool", "tool_call_id": "x", "content": "r"}]
    assert transcript_problems(ok) == []
    assert "got no tool message" in transcript_problems(ok[:2])[0]
    assert (
        "which is no unanswered call"
        in transcript_problems([*ok, {"role": "tool", "tool_call_id": "x", "content": "r"}])[0]
    )
    assert "does not follow" in transcript_problems([ok[0], {"role": "tool", "tool_call_id": "x", "content": "r"}])[0]
    bad_args = {**a, "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{"}}]}
    assert "not a JSON string" in transcript_problems([bad_args, ok[2]])[0]
    assert "got no tool message" in transcript_problems([a, ok[0], ok[2]])[0]


# ----- every registered environment: oracle and random episodes --------------------------


def _needs(env_id: str) -> None:
    if "CodeRepair" in env_id or "HumanEval" in env_id:
        require_bwrap()
    if "Web" in env_id:
        require(shutil.which("chromium") is not None, "Web-v0 needs Chromium: apt-get install chromium")


@pytest.mark.parametrize("env_id", agentgym.list_envs())
@pytest.mark.parametrize("policy", ["oracle", "random"])
def test_every_env_records_valid_transcripts(env_id: str, policy: str, tokenizer) -> None:
    _needs(env_id)
    kwargs = {"max_turns": 6} if policy == "random" else None
    trajs = agentgym.collect(
        env_id,
        policy,
        num_tasks=2,
        group_size=2 if policy == "random" else 1,
        num_workers=1,
        seed=11,
        env_kwargs=kwargs,
        progress=False,
    )
    n_calls = 0
    for t in trajs:
        assert not t.infra_failure, t.metadata
        check_transcript(t.messages, t.tools, tokenizer)
        n_calls += sum(len(m.get("tool_calls", [])) for m in t.messages)
        raw = [m for m in t.raw_messages() if m["role"] == "assistant"]
        assert [m["content"] for m in raw] == [
            s.action if isinstance(s.action, str) else m["content"] for s, m in zip(t.steps, raw, strict=True)
        ]
        if policy == "oracle":
            assert t.success, (t.task_id, t.termination_reason)
    if policy == "oracle" and "Addition" not in env_id and "HumanEval" not in env_id:
        assert n_calls > 0  # the transcripts did exercise tool calls
    if policy == "random":
        errors = sum(sum(s.info["tool_errors"].values()) for t in trajs for s in t.steps)
        assert errors > 0 and any(
            re.search(r"could not|unknown tool|invalid arguments", m.get("content") or "")
            for t in trajs
            for m in t.messages
        )


def test_nan_arguments_and_content_parts(tokenizer) -> None:
    env = _play(
        [
            '<tool_call>{"name": "echo", "arguments": {"text": NaN}}</tool_call>',
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "parts "}, {"type": "text", "text": "joined"}],
                "tool_calls": [
                    {"id": "p", "type": "function", "function": {"name": "echo", "arguments": '{"text": "z"}'}}
                ],
            },
        ]
    )
    check_transcript(env.messages, env.tool_schemas(), tokenizer)
    assert "tool_calls" not in env.messages[2] and "NaN and Infinity are not JSON numbers" in env.messages[3]["content"]
    assert env.messages[4]["content"] == "parts joined" and env.messages[5]["content"] == "z"
    env.close()


def test_an_env_that_raises_mid_episode_leaves_a_valid_transcript(tokenizer) -> None:
    from agentgym.messages import answer_pending_calls
    from agentgym.rewards import Rubric

    class Broken(Toolbox):
        def build_rubric(self) -> Rubric:
            def explode(env, record) -> float:
                raise RuntimeError("reward function bug")

            return Rubric().add("explode", explode, kind="process", weight=1.0)

    [t] = agentgym.collect(Broken, "random", num_tasks=1, seed=0, progress=False)
    assert (t.infra_failure, t.termination_reason) == (True, "env_error") and "reward function bug" in t.metadata[
        "error"
    ]
    check_transcript(t.messages, t.tools, tokenizer)
    cut = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "name": "f", "content": "done"},
    ]
    fixed = answer_pending_calls(cut, "Not run.")
    assert transcript_problems(fixed) == [] and fixed[-1] == {
        "role": "tool",
        "tool_call_id": "b",
        "name": "g",
        "content": "Not run.",
    }
