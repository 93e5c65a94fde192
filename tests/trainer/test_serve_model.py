"""``agentgym serve-model``: the official openai client and agentgym's ``openai:`` policy against a real server.

The model is the tiny random model after ~100 steps of fitting one ToolUse oracle episode, so
that greedy sampling writes real tool calls over several turns; everything runs over loopback.
"""

from __future__ import annotations

import http.client
import json
import math
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import torch

import agentgym
from agentgym.parsing import without_tools_prompt
from agentgym.policies import OpenAIPolicy
from agentgym.testing import run_cli
from agentgym.trainer.batch import collate, make_batch
from agentgym.trainer.models import load_model
from agentgym.trainer.openai_records import EPISODE_HEADER, EpisodeStore, RequestError, fetch_segments, present
from agentgym.trainer.sequences import trajectory_sequence
from agentgym.trainer.serve_model import ModelServer, ModelService, serve_model
from agentgym.trainer.tokens import ChatTokens, sampled_transcript
from agentgym.trajectory import Trajectory, load_jsonl

ENV = "agentgym/ToolUse-v0"
TASK = "chain-0056"  # lookup, lookup, calculator, submit
MAX_TOKENS = 48


@pytest.fixture(scope="module")
def fitted_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fitted to one oracle episode of ToolUse (its exact training sequence)."""
    (traj,) = agentgym.collect(ENV, "oracle", tasks=[TASK], num_workers=1, progress=False)
    model, tokenizer = load_model(str(tiny_dir))
    seq = trajectory_sequence(ChatTokens(tokenizer), traj)
    ids = torch.tensor(seq.ids)[None]  # (1, L)
    mask = torch.tensor(seq.trainable[1:], dtype=torch.float32)  # (L-1,)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(300):
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)  # (L-1, V)
            loss = -(logp.gather(-1, ids[0, 1:, None]).squeeze(-1) * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if loss.item() < 0.005:
                break
    out = tmp_path_factory.mktemp("models") / "fitted"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def service(fitted_dir: Path) -> ModelService:
    return ModelService(str(fitted_dir), name="fitted", max_tokens=MAX_TOKENS, temperature=0.0, threads=1)


def _start(server: ModelServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def url(service: ModelService) -> Iterator[str]:
    yield from _start(serve_model(service, "127.0.0.1", 0))


@pytest.fixture
def client(url: str) -> Iterator[Any]:
    with openai.OpenAI(base_url=url, api_key="unused", max_retries=0) as c:
        yield c


def _opening() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The opening messages of the task (with the environment's tools block) and its tool schemas."""
    env = agentgym.make(ENV)
    try:
        _, info = env.reset(options={"task_id": TASK})
        return [dict(m) for m in env.messages], info["tools"]
    finally:
        env.close()


def test_the_openai_client_gets_parsed_tool_calls_and_the_exact_recorded_tokens(
    client: Any, service: ModelService
) -> None:
    messages, tools = _opening()
    shown = without_tools_prompt(messages, tools)  # an OpenAI agent describes its tools with tools= only
    resp = client.chat.completions.create(
        model="fitted", messages=shown, tools=tools, max_tokens=MAX_TOKENS, temperature=0, logprobs=True
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "lookup" and call.id
    assert json.loads(call.function.arguments) == {"key": "price-peach"}
    assert not choice.message.content

    # The prompt is the chat template's rendering of the transcript with agentgym's tools block
    # (this template cannot render tools=), tokenized by the engine's tokenizer.
    chat = service.chat
    prompt_ids = resp.model_extra["prompt_token_ids"]
    assert prompt_ids == chat.encode(chat.render(messages, True))
    ids = choice.model_extra["token_ids"]
    assert ids[-1] == chat.end_of_turn_id  # stopped on its own
    text = chat.decode(ids)
    assert text.startswith("<tool_call>") and '"price-peach"' in text
    assert resp.usage.prompt_tokens == len(prompt_ids) and resp.usage.completion_tokens == len(ids)

    entries = choice.logprobs.content
    assert len(entries) == len(ids)
    assert all(math.isfinite(e.logprob) and e.logprob <= 0 for e in entries)
    assert "".join(e.token for e in entries[:-1]) == text

    extras = resp.model_extra["agentgym"]
    prompt, sampled = extras["segments"]
    assert prompt["ids"] == prompt_ids and not prompt["trainable"] and prompt["kind"] == "prompt"
    assert sampled["ids"] == ids and sampled["trainable"] and sampled["kind"] == "sampled"
    assert sampled["logprobs"] == [e.logprob for e in entries]


def test_the_openai_policy_plays_a_tool_episode_with_token_exact_segments_the_trainer_takes(
    url: str, service: ModelService
) -> None:
    policy = OpenAIPolicy(url, "fitted", max_tokens=MAX_TOKENS)
    try:
        (traj,) = agentgym.collect(ENV, policy, tasks=[TASK], num_workers=1, progress=False)
    finally:
        policy.close()
    assert traj.termination_reason == "submitted" and traj.outcome_reward == 1.0, traj.metadata
    assert traj.num_turns == 4 and [m["role"] for m in traj.messages].count("tool") == 4
    kinds = [(s.kind, s.turn) for s in traj.segments]
    assert kinds == [("prompt", 0)] + [(k, t) for t in range(1, 5) for k in ("sampled", "env") if (k, t) != ("env", 4)]

    # Token-exact: the segments are the template's rendering of the transcript whose assistant
    # turns are the sampled text (what the model really wrote), tokenized by the engine.
    chat = service.chat
    messages, tools = sampled_transcript(chat, traj)
    assert chat.encode(chat.render(messages, False, tools))[: len(traj.token_ids())] == traj.token_ids()

    # ... and the model, run over the whole sequence, gives each sampled token the logprob recorded
    # when it was sampled (the server conditioned on exactly these ids).
    seq = trajectory_sequence(chat, traj)
    assert np.array_equal(seq.ids, np.array(traj.token_ids()))
    with torch.no_grad():
        logits = service.model(input_ids=torch.tensor(seq.ids)[None]).logits[0, :-1].float()  # (L-1, V)
    recomputed = torch.log_softmax(logits, -1).gather(-1, torch.tensor(seq.ids[1:])[:, None]).squeeze(-1)
    trained = torch.tensor(seq.trainable[1:])
    assert torch.allclose(recomputed[trained], torch.tensor(seq.sample_logprobs[1:])[trained], atol=1e-4)

    # The server's own record of the episode is the same segments.
    (episode,) = [e for e in service.store.ids() if e.startswith("agentgym-")]  # the policy's episode ids
    record = _get(url, f"/agentgym/episodes/{episode}")
    assert record["segments"] == [vars(s) for s in traj.segments] and len(record["contexts"]) == 1
    assert fetch_segments(url, episode) == traj.segments  # what a harness outside agentgym reads back

    # The GRPO batch builder takes the served trajectory: loss exactly on the sampled tokens.
    twin = Trajectory.from_json(traj.to_json())
    twin.outcome_reward, twin.group_id = 0.0, traj.group_id
    batch = make_batch([traj, twin], scale="none")
    assert len(batch.episodes) == 2
    first = batch.episodes[0]
    assert first.n_tokens == sum(len(s.ids) for s in traj.segments if s.trainable)
    assert torch.equal(first.ids, torch.tensor(traj.token_ids()))
    assert collate(batch.episodes, pad_id=0)["mask"].sum().item() == 2 * first.n_tokens


def _get(url: str, path: str) -> Any:
    status, body = _http(url, "GET", path)
    assert status == 200, body
    return body


def _http(url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, "/v1" + path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_a_continued_conversation_extends_the_context_and_an_edited_one_starts_a_new_context(
    client: Any, url: str
) -> None:
    messages, tools = _opening()
    episode = "edited-history-1"
    header = {EPISODE_HEADER: episode}

    def ask(msgs: list[dict[str, Any]]) -> Any:
        return client.chat.completions.create(
            model="fitted", messages=msgs, tools=tools, max_tokens=MAX_TOKENS, temperature=0, extra_headers=header
        )

    first = ask(messages)
    reply = first.choices[0].message.model_dump(exclude_none=True)
    call_id = reply["tool_calls"][0]["id"]
    tool_msg = {"role": "tool", "tool_call_id": call_id, "content": "18"}
    second = ask([*messages, reply, tool_msg])
    ext1, ext2 = first.model_extra["agentgym"], second.model_extra["agentgym"]
    assert ext1["new_context"] and not ext2["new_context"] and ext1["context"] == ext2["context"] == 0
    env_segment = ext2["segments"][0]
    assert env_segment["kind"] == "env" and not env_segment["trainable"]
    assert second.model_extra["prompt_token_ids"] == (
        first.model_extra["prompt_token_ids"] + first.choices[0].model_extra["token_ids"] + env_segment["ids"]
    )

    edited = {**reply, "tool_calls": [{**reply["tool_calls"][0], "function": {"name": "lookup", "arguments": "{}"}}]}
    third = ask([*messages, edited, tool_msg])
    ext3 = third.model_extra["agentgym"]
    assert ext3["new_context"] and ext3["context"] == 1 and ext3["segments"][0]["kind"] == "prompt"
    record = _get(url, f"/agentgym/episodes/{episode}")
    assert [len(c["segments"]) for c in record["contexts"]] == [4, 2]
    assert record["segments"] == record["contexts"][1]["segments"]
    assert _http(url, "DELETE", f"/agentgym/episodes/{episode}") == (200, {"id": episode, "deleted": True})
    status, body = _http(url, "GET", f"/agentgym/episodes/{episode}")
    assert status == 404 and "no episode" in body["error"]["message"]


def test_a_stop_string_cuts_the_text_and_the_recorded_ids_keep_what_was_sampled(
    client: Any, service: ModelService
) -> None:
    messages, _ = _opening()
    resp = client.chat.completions.create(
        model="fitted", messages=messages, max_tokens=MAX_TOKENS, temperature=0, stop=['"lookup"']
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == '<tool_call>{"name": '
    ids = choice.model_extra["token_ids"]
    text = service.chat.decode(ids)
    assert text.startswith(choice.message.content + '"lookup"') and len(ids) < 20
    assert not service.chat.decode(ids[:-1]).startswith(choice.message.content + '"lookup"')


def _fn_tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m"}, "'messages' must be a non-empty list"),
        ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role must be one of"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "only n=1 is supported"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}, "streaming is not supported"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "'max_tokens' must be"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "'temperature'"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}, "tool_choice"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"x": 1}]}, "tools[0] must be"),
        ({"model": "m", "messages": [{"role": "tool", "content": "5"}]}, "needs 'tool_call_id'"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [_fn_tool(5)]},
            "tools[0].function.parameters must be a JSON Schema object",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": "x" * 257}, "1 to 256 characters"),
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "a b"}, "the episode id"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_bad_requests_are_400_with_a_clear_message(url: str, body: Any, message: str) -> None:
    status, reply = _http(url, "POST", "/chat/completions", body)
    assert status == 400
    error = reply["error"]
    assert message in (error["message"] if isinstance(error, dict) else error)


def test_the_openai_client_raises_bad_request_not_a_server_error(client: Any) -> None:
    with pytest.raises(openai.BadRequestError, match="only n=1 is supported"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=2)


def test_models_and_a_token_protected_server(service: ModelService) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        serve_model(service, "0.0.0.0", 0)
    for base in _start(serve_model(service, "127.0.0.1", 0, token="s3cret")):
        with (
            openai.OpenAI(base_url=base, api_key="wrong", max_retries=0) as denied,
            pytest.raises(openai.AuthenticationError),
        ):
            denied.models.list()
        with openai.OpenAI(base_url=base, api_key="s3cret", max_retries=0) as allowed:
            assert [m.id for m in allowed.models.list()] == ["fitted"]


def test_episode_records_are_bounded() -> None:
    store = EpisodeStore(max_episodes=2, ttl=3600.0)
    for name in ("a", "b", "c"):
        store.get(name, create=True)
    assert store.ids() == ["b", "c"]
    store.get("b")  # used: now the most recent
    store.get("d", create=True)
    assert store.ids() == ["b", "d"]
    expired = EpisodeStore(ttl=0.0)
    expired.get("x", create=True)
    assert expired.get("x") is None and len(expired) == 0


def test_episode_records_are_bounded_in_tokens() -> None:
    """Few long episodes must not grow the store without bound: it counts token ids, not only records."""
    from types import SimpleNamespace

    from agentgym.trainer.openai_records import Context
    from agentgym.trajectory import TokenSegment

    store = EpisodeStore(max_episodes=100, max_tokens=1000)

    def grow(name: str, n: int) -> None:
        record = store.get(name, create=True)
        assert record is not None
        tokens = SimpleNamespace(segments=[TokenSegment([7] * n, trainable=False)], sampled=[])
        store.add_context(record, Context(tokens, "[]"))  # type: ignore[arg-type]  # only .segments is counted
        store.account(record)

    grow("a", 400)
    grow("b", 400)
    assert (store.ids(), store.tokens) == (["a", "b"], 800)
    grow("c", 400)  # 1200 > 1000: the least recently used record goes
    assert (store.ids(), store.tokens) == (["b", "c"], 800)
    grow("b", 900)  # one record over the bound alone is kept (it is the one in use), the others go
    assert (store.ids(), store.tokens) == (["b"], 1300)
    store.pop("b")
    assert (len(store), store.tokens) == (0, 0)


def test_tools_are_shown_once_whether_or_not_the_client_left_the_block_in(service: ModelService) -> None:
    messages, tools = _opening()
    stripped = without_tools_prompt(messages, tools)
    assert stripped is not None
    assert present(service.chat, stripped, tools) == present(service.chat, messages, tools) == (messages, None)


@pytest.mark.slow
def test_the_cli_serves_a_model(fitted_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym.cli", "serve-model", str(fitted_dir), "--port", "0", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving "), line
        base = line.split(" at ", 1)[1].split()[0]
        with openai.OpenAI(base_url=base, api_key="x", max_retries=0) as c:
            assert [m.id for m in c.models.list()] == [str(fitted_dir)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


NATIVE_TEMPLATE = (  # a ChatML template that renders tools= itself (as Qwen2.5's does), calls as <tool_call> JSON
    "{% if tools %}<|im_start|>system\n{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n"
    "{% endif %}# Tools\n<tools>{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}\n</tools>\n"
    'Call a tool as <tool_call>{"name": ..., "arguments": {...}}</tool_call>.<|im_end|>\n'
    "{% elif messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n{% endif %}"
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] or '' }}"
    "{% for call in message.tool_calls or [] %}<tool_call>"
    "{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']} | tojson }}</tool_call>"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def native_service(fitted_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelService:
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("models") / "native"
    shutil.copytree(fitted_dir, path, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(fitted_dir)
    tokenizer.chat_template = NATIVE_TEMPLATE
    tokenizer.save_pretrained(path)
    return ModelService(str(path), max_tokens=8, temperature=0.0, threads=1)


@pytest.mark.parametrize("which", ["block", "native"])
def test_tools_and_earlier_calls_are_rendered_by_the_template_or_as_the_block(
    which: str, service: ModelService, native_service: ModelService
) -> None:
    svc = native_service if which == "native" else service
    assert svc.chat.native_tools == (which == "native") and svc.chat.parser == "hermes"
    messages, tools = _opening()
    stripped = without_tools_prompt(messages, tools)
    assert stripped is not None
    ask: dict[str, Any] = {"model": "m", "tools": tools, "max_tokens": 8, "temperature": 0}
    first = svc.complete({**ask, "messages": stripped}, f"{which}-1")
    expected = svc.chat.render(stripped, True, tools) if which == "native" else svc.chat.render(messages, True)
    assert first["prompt_token_ids"] == svc.chat.encode(expected)

    reply = first["choices"][0]["message"]
    second = svc.complete({**ask, "messages": [*stripped, reply, {"role": "user", "content": "Go on."}]}, f"{which}-1")
    env_segment = second["agentgym"]["segments"][0]
    assert not second["agentgym"]["new_context"] and env_segment["kind"] == "env"
    assert (
        second["prompt_token_ids"] == first["prompt_token_ids"] + first["choices"][0]["token_ids"] + env_segment["ids"]
    )

    # History the server did not sample (a new context): earlier calls are shown in the call format.
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "price-peach"}'}}
    history = [*stripped, {"role": "assistant", "content": None, "tool_calls": [call]}]
    history.append({"role": "tool", "tool_call_id": "c1", "content": "18"})
    third = svc.complete({**ask, "messages": history}, f"{which}-2")
    assert third["agentgym"]["new_context"]
    prompt_text = svc.tokenizer.decode(third["prompt_token_ids"])
    assert '<tool_call>{"name": "lookup", "arguments": {"key": "price-peach"}}</tool_call>' in prompt_text
    assert prompt_text.count('{"name": "submit"') == 1  # the tools are described once


def test_a_failed_turn_leaves_the_context_as_it_was_so_a_retry_continues_it(service: ModelService) -> None:
    messages, tools = _opening()
    ask: dict[str, Any] = {"model": "m", "tools": tools, "max_tokens": 8, "temperature": 0}
    first = service.complete({**ask, "messages": messages}, "failed-turn")
    reply = first["choices"][0]["message"]
    too_long = {"role": "user", "content": "x " * 20_000}
    with pytest.raises(RequestError, match=r"the prompt is \d+ tokens; the model's context is 4096"):
        service.complete({**ask, "messages": [*messages, reply, too_long]}, "failed-turn")
    go_on = {"role": "user", "content": "Go on."}
    retry = service.complete({**ask, "messages": [*messages, reply, go_on]}, "failed-turn")
    assert not retry["agentgym"]["new_context"]
    env_segment = retry["agentgym"]["segments"][0]
    context = first["prompt_token_ids"] + first["choices"][0]["token_ids"] + env_segment["ids"]
    assert retry["prompt_token_ids"] == context
    assert [s["kind"] for s in service.episode("failed-turn")["segments"]] == ["prompt", "sampled", "env", "sampled"]


def test_the_user_field_names_the_episode_and_max_completion_tokens_caps_the_reply(service: ModelService) -> None:
    messages, _ = _opening()
    body = {"model": "m", "messages": messages, "max_completion_tokens": 3, "temperature": 0, "user": "user-field-1"}
    reply = service.complete(body)
    assert reply["choices"][0]["finish_reason"] == "length" and len(reply["choices"][0]["token_ids"]) == 3
    assert reply["agentgym"]["episode_id"] == "user-field-1"
    assert service.episode("user-field-1")["segments"][1]["ids"] == reply["choices"][0]["token_ids"]


def test_concurrent_episodes_keep_their_own_records(url: str, service: ModelService) -> None:
    before = set(service.store.ids())
    policy = OpenAIPolicy(url, "fitted", max_tokens=MAX_TOKENS)
    try:
        trajs = agentgym.collect(ENV, policy, tasks=[TASK], group_size=3, num_workers=3, progress=False)
    finally:
        policy.close()
    assert [t.outcome_reward for t in trajs] == [1.0, 1.0, 1.0]
    assert trajs[0].token_ids() == trajs[1].token_ids() == trajs[2].token_ids()  # greedy: the same episode
    new = set(service.store.ids()) - before
    assert len(new) == 3
    assert all(len(service.episode(e)["contexts"]) == 1 for e in new)


def test_agentgym_run_with_the_openai_policy_writes_trajectories_with_the_served_tokens(
    url: str, service: ModelService, tmp_path: Path
) -> None:
    out = tmp_path / "served.jsonl"
    policy = f"openai:{url}#fitted"
    done = run_cli("run", "ToolUse-v0", "--policy", policy, "--task-id", TASK, "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"task {TASK}: reward 1.000" in done.stdout
    (traj,) = load_jsonl(out)
    assert [s.kind for s in traj.segments].count("sampled") == traj.num_turns == 4
    seq = trajectory_sequence(service.chat, traj)  # the saved segments, as the trainer reads them
    assert seq.trainable.sum() == sum(len(s.ids) for s in traj.segments if s.kind == "sampled")
