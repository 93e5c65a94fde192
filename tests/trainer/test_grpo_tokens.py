"""Token-exact episodes with the locally built tokenizer: deltas, masks, template checks, the HF engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

import agentgym
from agentgym.parsing import format_tool_call
from agentgym.rollout import Job, run_episode
from agentgym.trainer.engines import Completion, SamplingParams, make_engine
from agentgym.trainer.rollout import RolloutLimits, rollout
from agentgym.trainer.tokens import ChatTokens, TemplateError, episode_sequence


class ScriptedEngine:
    """'Samples' fixed texts (one per turn), so the expected tokens are known."""

    def __init__(self, chat: ChatTokens, turns: list[str]):
        self.chat, self.turns, self.calls = chat, turns, 0

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        text = self.turns[self.calls]
        self.calls += 1
        ids = [*self.chat.encode(text), self.chat.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        return [Completion(ids, [-0.5] * len(ids), "stop") for _ in prompts]

    def sync_weights(self, model: object) -> None:
        pass


def test_masks_cover_exactly_the_sampled_tokens_of_a_three_turn_episode(tiny_tokenizer) -> None:
    chat = ChatTokens(tiny_tokenizer)
    env = agentgym.make("agentgym/ToolUse-v0", kinds=("lookup",))
    task = env.tasks.ids[0]
    key = env.task_set[task].solution["calls"][0][1]["key"]
    turns = [
        format_tool_call("lookup", {"key": key}),
        "<tool_call>{not json</tool_call>",
        format_tool_call("submit", {"answer": env.task_set[task].verifier["answer"]}),
    ]
    (traj,) = rollout([env], [Job(0, task, 0, "g")], ScriptedEngine(chat, turns), chat, RolloutLimits(64, 4096))
    env.close()
    assert traj.num_turns == 3 and traj.success and traj.termination_reason == "submitted"
    assert [s.kind for s in traj.segments] == ["prompt", "sampled", "env", "sampled", "env", "sampled"]
    assert any(m["role"] == "user" and "could not parse" in m["content"] for m in traj.messages)  # the unreadable call

    seq = episode_sequence(traj.segments)
    # The whole sequence is the template's rendering of the transcript up to the last reply's <|im_end|>.
    raw = traj.raw_messages()  # the transcript as sampled (traj.messages holds the parsed OpenAI form)
    upto_last_reply = raw[: max(i for i, m in enumerate(raw) if m["role"] == "assistant") + 1]
    expected = chat.encode(chat.render(upto_last_reply, False))
    assert seq.ids.tolist() == expected[: len(seq.ids)] and expected[len(seq.ids) :] == chat.encode("\n")
    # Masks: exactly the sampled ids, labelled with their turn; tool results and prompts are not trainable.
    for turn, text in enumerate(turns, start=1):
        ids = seq.ids[(seq.turns == turn) & seq.trainable]
        assert tiny_tokenizer.decode(ids.tolist()) == text + "<|im_end|>"
    assert seq.trainable.sum() == sum(len(chat.encode(t)) + 1 for t in turns)
    assert (seq.sample_logprobs[seq.trainable] == -0.5).all() and (seq.sample_logprobs[~seq.trainable] == 0).all()
    env_text = tiny_tokenizer.decode(seq.ids[~seq.trainable].tolist())
    assert "<|im_start|>tool\n" in env_text and json.loads(f'"{key}"') in env_text


def test_a_template_that_rewrites_history_is_refused(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tok.chat_template = (
        "{% for m in messages %}{% if loop.last %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% else %}[{{ m['role'] }}]{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% endif %}"
    )
    with pytest.raises(TemplateError, match="does not extend prefixes"):
        ChatTokens(tok)


def test_hf_engine_logprobs_are_those_of_the_sampling_distribution(tiny_dir: Path, tiny_tokenizer) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    engine = make_engine("hf", model, tiny_tokenizer)
    prompts = [[1, 87, 85, 264], [1, 87, 85, 264], [1, 40, 41, 42, 43, 44, 45]]  # duplicates share a prefill
    params = SamplingParams(max_tokens=[5, 5, 3], temperature=0.7, top_k=0, seed=3, stop_ids=(2,))
    out = engine.generate(prompts, params)
    assert [len(c.ids) <= m for c, m in zip(out, [5, 5, 3], strict=True)] == [True] * 3
    assert out == engine.generate(prompts, params), "sampling is not a function of the seed"
    for p, c in zip(prompts, out, strict=True):
        full = torch.tensor([p + c.ids])
        logits = model(full).logits[0, len(p) - 1 : -1] / 0.7
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c.ids)[:, None]).squeeze(-1)
        torch.testing.assert_close(torch.tensor(c.logprobs), expected, rtol=1e-4, atol=1e-4)
        assert c.finish_reason == ("stop" if c.ids[-1] == 2 else "length")


def test_token_budget_stops_an_episode_and_is_recorded(tiny_tokenizer) -> None:
    chat = ChatTokens(tiny_tokenizer)
    env = agentgym.make("agentgym/ToolUse-v0", kinds=("lookup",))
    budget = len(chat.encode(chat.render(env.reset(seed=0)[0], True))) + 40
    engine = ScriptedEngine(chat, ["thinking " * 30, "more"])
    (traj,) = rollout([env], [Job(0, env.tasks.ids[0], 0, "g")], engine, chat, RolloutLimits(200, budget))
    env.close()
    assert traj.termination_reason == "token_budget" and traj.truncated and traj.outcome_reward == 0.0
    assert sum(len(s.ids) for s in traj.segments) >= budget


def test_hf_policy_records_token_segments(tiny_dir: Path) -> None:
    from agentgym.policies import make_policy

    policy = make_policy(f"hf:{tiny_dir}", max_tokens=8, threads=1)
    env = agentgym.make("agentgym/Calculator-v0", max_turns=2)
    traj = run_episode(env, policy, seed=0)
    env.close()
    assert traj.num_turns == 2 and [s.kind for s in traj.segments] == ["prompt", "sampled", "env", "sampled"]
    assert all(len(s.logprobs or []) == len(s.ids) for s in traj.segments if s.trainable)
