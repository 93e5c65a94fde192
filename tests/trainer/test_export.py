"""Exported records: real episodes in, TRL/verl layouts out; ``datasets`` loads them; TRL's trainers accept them."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import datasets
import pytest

import agentgym
from agentgym.messages import transcript_problems
from agentgym.policies import ScriptedPolicy
from agentgym.trainer import export
from agentgym.trajectory import Trajectory, save_jsonl

ENV = "agentgym/ToolUse-v0"
# trl 1.16's configs set the alias transformers 5.24 deprecates (not our call): TRL's warning, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore:`[a-z_]*gradient_checkpointing[a-z_]*` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def oracle() -> list[Trajectory]:
    return agentgym.collect(ENV, "oracle", num_tasks=4, seed=0, progress=False)


@pytest.fixture(scope="module")
def failed(oracle: list[Trajectory]) -> list[Trajectory]:
    """Episodes of the same tasks that submit a wrong answer first (reward 0)."""
    wrong = '<tool_call>{"name": "submit", "arguments": {"answer": "-1"}}</tool_call>'
    return agentgym.collect(ENV, ScriptedPolicy([wrong]), tasks=[t.task_id for t in oracle], progress=False)


@pytest.fixture(scope="module")
def tool_tokenizer(tiny_dir: Path) -> Any:
    """The tiny tokenizer with a chat template that renders tool calls and ``tools=`` (TRL's Qwen2.5 template).

    A fresh copy: the session's ``tiny_tokenizer`` must keep its own template for the other tests.
    """
    from transformers import AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    tok.chat_template = qwen2_5_chat_template
    return tok


def _load_jsonl(path: Path) -> datasets.Dataset:
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert isinstance(ds, datasets.Dataset)
    return ds


def test_sft_records_are_the_transcript_with_json_arguments(oracle: list[Trajectory]) -> None:
    recs = export.sft_records(oracle)
    assert len(recs) == len(oracle)
    for rec, t in zip(recs, oracle, strict=True):
        assert rec["tools"] == t.tools
        assert "<tools>" in (t.messages[0].get("content") or "")
        assert "<tools>" not in rec["messages"][0]["content"]  # the template renders tools=, once
        assert rec["messages"][1:] != t.messages[1:]  # arguments became objects
        for got, orig in zip(rec["messages"], t.messages, strict=True):
            for gc, oc in zip(got.get("tool_calls") or [], orig.get("tool_calls") or [], strict=True):
                assert gc["function"]["arguments"] == json.loads(oc["function"]["arguments"])
                assert isinstance(gc["function"]["arguments"], dict)
        # back to the OpenAI schema, still valid chat data
        back = [
            {
                **m,
                "tool_calls": [
                    {**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"])}}
                    for c in m["tool_calls"]
                ],
            }
            if m.get("tool_calls")
            else m
            for m in rec["messages"]
        ]
        assert transcript_problems(back) == []


def test_sft_min_reward_keeps_successes_only(oracle: list[Trajectory], failed: list[Trajectory]) -> None:
    both = oracle + failed
    assert len(export.sft_records(both)) == len(both)
    kept = export.sft_records(both, min_reward=1.0)
    assert len(kept) == len(oracle)
    assert [r["messages"] for r in kept] == [export.trl_messages(t.messages, t.tools) for t in oracle]


def test_preference_records_share_the_prompt(oracle: list[Trajectory], failed: list[Trajectory]) -> None:
    recs = export.preference_records(zip(oracle, failed, strict=True))
    assert len(recs) == len(oracle)
    for rec, good, bad in zip(recs, oracle, failed, strict=True):
        assert [m["role"] for m in rec["prompt"]] == ["system", "user"]
        assert rec["prompt"][1]["content"] == good.messages[1]["content"]
        assert rec["chosen"][0]["role"] == "assistant" and rec["rejected"][0]["role"] == "assistant"
        assert len(rec["chosen"]) == len(good.messages) - 2 and len(rec["rejected"]) == len(bad.messages) - 2
        assert rec["rejected"][0]["tool_calls"][0]["function"]["arguments"] == {"answer": "-1"}
    with pytest.raises(ValueError, match="open with different messages"):
        export.preference_records([(oracle[0], failed[1])])


def test_jsonl_and_dataset_load_back_unchanged(
    oracle: list[Trajectory], failed: list[Trajectory], tmp_path: Path
) -> None:
    for recs in (export.sft_records(oracle + failed), export.preference_records(zip(oracle, failed, strict=True))):
        path = tmp_path / "records.jsonl"
        assert export.write_jsonl(recs, path) == len(recs)
        assert [dict(r) for r in _load_jsonl(path)] == recs
        ds = export.save_dataset(recs, tmp_path / "ds")
        assert [dict(r) for r in ds] == recs
        assert [dict(r) for r in datasets.load_from_disk(str(tmp_path / "ds"))] == recs


def test_token_records_need_token_segments(oracle: list[Trajectory]) -> None:
    with pytest.raises(ValueError, match=r"no token segments.*--format sft"):
        export.token_records(oracle)


def test_token_records_follow_the_segments(tiny_dir: Path, tmp_path: Path) -> None:
    from agentgym.trainer.policy import HFPolicy

    policy = HFPolicy(str(tiny_dir), max_tokens=12, threads=1, device="cpu")
    trajs = agentgym.collect(
        ENV, policy, num_tasks=2, group_size=2, seed=0, num_workers=1, progress=False, env_kwargs={"max_turns": 2}
    )
    # one group with a reward spread, so advantages are not all zero
    trajs[0].steps[-1].reward += 1.0
    trajs[0].outcome_reward = 1.0
    rows = export.token_records(trajs)
    assert len(rows) == len(trajs)
    for row, t in zip(rows, trajs, strict=True):
        ids = t.token_ids()
        assert row["prompt_ids"] + row["response_ids"] == ids
        assert row["prompt_ids"] == t.segments[0].ids
        n = len(row["response_ids"])
        assert len(row["response_mask"]) == len(row["response_logprobs"]) == len(row["advantages"]) == n
        sampled = [i for s in t.segments if s.kind == "sampled" for i in s.ids]
        assert [i for i, m in zip(row["response_ids"], row["response_mask"], strict=True) if m] == sampled
        assert [lp for lp, m in zip(row["response_logprobs"], row["response_mask"], strict=True) if m] == [
            x for s in t.segments if s.kind == "sampled" for x in s.logprobs or []
        ]
        assert all(a == 0.0 for a, m in zip(row["advantages"], row["response_mask"], strict=True) if not m)
        assert row["assistant_turns"] == t.num_turns
        assert row["reward_score"] == t.reward
    # group of task 0: outcomes (1, 0) -> GRPO advantages (+1, -1) on every sampled token
    a0 = [a for a, m in zip(rows[0]["advantages"], rows[0]["response_mask"], strict=True) if m]
    a1 = [a for a, m in zip(rows[1]["advantages"], rows[1]["response_mask"], strict=True) if m]
    assert trajs[0].group_id == trajs[1].group_id
    assert a0 == pytest.approx([1.0] * len(a0), abs=1e-5) and a1 == pytest.approx([-1.0] * len(a1), abs=1e-5)
    path = tmp_path / "tokens.jsonl"
    export.write_jsonl(rows, path)
    assert [dict(r) for r in _load_jsonl(path)] == rows


def test_cli_writes_jsonl_and_datasets(oracle: list[Trajectory], tmp_path: Path) -> None:
    src = tmp_path / "trajs.jsonl"
    save_jsonl(oracle, src)
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    out = tmp_path / "sft.jsonl"
    assert export.run(parser.parse_args(["--format", "sft", "--input", str(src), "--output", str(out)])) == 0
    assert len(_load_jsonl(out)) == len(oracle)
    args = parser.parse_args(["--format", "sft", "--input", str(src), "--output", str(tmp_path / "d"), "--dataset"])
    assert export.run(args) == 0
    assert len(datasets.load_from_disk(str(tmp_path / "d"))) == len(oracle)
    args = parser.parse_args(["--format", "tokens", "--input", str(src), "--output", str(tmp_path / "t.jsonl")])
    with pytest.raises(ValueError, match="no token segments"):
        export.run(args)


def test_cli_pairs_episodes_for_preference(oracle: list[Trajectory], failed: list[Trajectory], tmp_path: Path) -> None:
    src = tmp_path / "trajs.jsonl"
    save_jsonl(oracle + failed, src)
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    out = tmp_path / "pref.jsonl"
    assert export.run(parser.parse_args(["--format", "preference", "--input", str(src), "--output", str(out)])) == 0
    rows = [dict(r) for r in _load_jsonl(out)]
    assert rows == export.preference_records(zip(oracle, failed, strict=True))  # agentgym.trainer.dpo pairs them
    assert (
        export.run(
            parser.parse_args(
                ["--format", "preference", "--input", str(src), "--output", str(out), "--min-margin", "2"]
            )
        )
        == 1
    )  # no pair that far apart: nothing written


def _trl_args(cls: Any, tmp_path: Path, **kw: Any) -> Any:
    return cls(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
        **kw,
    )


def test_trl_sft_trainer_takes_the_sft_dataset(
    oracle: list[Trajectory], tiny_dir: Path, tool_tokenizer: Any, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    path = tmp_path / "sft.jsonl"
    export.write_jsonl(export.sft_records(oracle), path)
    ds = _load_jsonl(path)
    text = tool_tokenizer.apply_chat_template(ds[3]["messages"], tools=ds[3]["tools"], tokenize=False)
    assert '<tool_call>\n{"name": "submit", "arguments": {"answer": ' in text  # calls rendered as JSON objects
    assert '"name": "lookup"' in text  # the tools= block
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = SFTTrainer(
        model=model,
        args=_trl_args(SFTConfig, tmp_path, max_length=1024),
        train_dataset=ds,
        processing_class=tool_tokenizer,
    )
    out = trainer.train()
    assert trainer.state.global_step == 1
    assert out.training_loss > 0 and out.training_loss == out.training_loss  # finite
    assert any(not (p.detach() == before[n]).all() for n, p in model.named_parameters())


def test_trl_dpo_trainer_takes_the_preference_dataset(
    oracle: list[Trajectory], failed: list[Trajectory], tiny_dir: Path, tool_tokenizer: Any, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    path = tmp_path / "pref.jsonl"
    export.write_jsonl(export.preference_records(zip(oracle, failed, strict=True)), path)
    ds = _load_jsonl(path)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    trainer = DPOTrainer(
        model=model,
        args=_trl_args(DPOConfig, tmp_path, max_length=1024),
        train_dataset=ds,
        processing_class=tool_tokenizer,
    )
    out = trainer.train()
    assert trainer.state.global_step == 1
    # a random model barely prefers either side: the loss starts at about log 2
    assert out.training_loss == pytest.approx(0.6931, abs=0.05)


os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
