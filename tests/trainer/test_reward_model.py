"""Reward models and process reward models: losses by hand, a separable preference set, the CLI, the PRM's one pass."""

from __future__ import annotations

import json
import math
import pickle
import random
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

import agentgym
from agentgym.errors import RewardError
from agentgym.rewards import RewardFunc
from agentgym.trainer.reward_model import (
    ProcessRewardModel,
    Renderer,
    RewardModelReward,
    bradley_terry_loss,
    pair_accuracy,
    pointwise_loss,
)
from agentgym.trainer.rm_data import load_pairs, load_turn_labels, split
from agentgym.trainer.rm_train import RMConfig, train_reward_model
from agentgym.trajectory import Step, Trajectory, save_jsonl

SEED = 0
TEST_FRACTION = 0.25


# ----- losses and metrics by hand ---------------------------------------------------------------


def test_bradley_terry_loss_against_hand_computed_values() -> None:
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    # differences (1, -1): (-log sigmoid(1) - log sigmoid(-1)) / 2 = (0.3132617 + 1.3132617) / 2
    assert float(bradley_terry_loss(chosen, rejected)) == pytest.approx(0.8132617, abs=1e-6)
    # margin 1: differences (0, -2): (log 2 + log(1 + e^2)) / 2 = (0.6931472 + 2.1269280) / 2
    assert float(bradley_terry_loss(chosen, rejected, margin=1.0)) == pytest.approx(1.4100376, abs=1e-6)
    # per-pair margins (0, 1): (0.3132617 + 2.1269280) / 2
    assert float(bradley_terry_loss(chosen, rejected, torch.tensor([0.0, 1.0]))) == pytest.approx(1.2200949, abs=1e-6)
    # centring 0.1: + 0.1 * mean((2 + 1)^2, (0 + 1)^2) = + 0.1 * 5
    assert float(bradley_terry_loss(chosen, rejected, center_coef=0.1)) == pytest.approx(1.3132617, abs=1e-6)


def test_pair_accuracy_counts_ties_as_half() -> None:
    assert pair_accuracy([2.0, 1.0, 0.0], [1.0, 1.0, 3.0]) == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3
    assert pair_accuracy(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0])) == pytest.approx(0.75)
    assert pair_accuracy([5.0] * 4, [5.0] * 4) == 0.5  # a constant model
    assert math.isnan(pair_accuracy([], []))
    with pytest.raises(ValueError, match="2 chosen scores but 1 rejected"):
        pair_accuracy([1.0, 2.0], [1.0])


def test_pointwise_loss_is_bce_of_the_sigmoid() -> None:
    # scores (0, 2), labels (1, 0): (-log sigmoid(0) - log(1 - sigmoid(2))) / 2 = (0.6931472 + 2.1269280) / 2
    assert float(pointwise_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))) == pytest.approx(1.4100376, 1e-6)


# ----- data -------------------------------------------------------------------------------------


def _call(name: str, args: dict[str, Any], call_id: str = "c1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _transcript(rng: random.Random, good: bool) -> list[dict[str, Any]]:
    """A task, sometimes a tool call and its result, and a final answer: the marker decides the preference."""
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You solve tasks with tools."},
        {"role": "user", "content": f"What is {a} + {b}?"},
    ]
    if rng.random() < 0.5:
        msgs += [
            {"role": "assistant", "content": None, "tool_calls": [_call("add", {"a": a, "b": b})]},
            {"role": "tool", "tool_call_id": "c1", "name": "add", "content": str(rng.randint(0, 200))},
        ]
    marker = "Verified: yes yes yes." if good else "Unsure: no no no."
    msgs.append({"role": "assistant", "content": f"The answer is {rng.randint(0, 200)}. {marker}"})
    return msgs


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _separable(path: Path, seed: int, n: int = 260) -> Path:
    rng = random.Random(seed)
    return _write_jsonl(
        path, [{"chosen": _transcript(rng, True), "rejected": _transcript(rng, False)} for _ in range(n)]
    )


def _traj(task: str, reward: float, answer: str) -> Trajectory:
    messages: list[Any] = [
        {"role": "system", "content": "Solve."},
        {"role": "user", "content": f"Task {task}."},
        {"role": "assistant", "content": answer},
    ]
    step = Step(answer, [], reward, {"check": reward}, {"process_reward": 0.0})
    return Trajectory(
        "agentgym/Test-v0", task, messages, [step], outcome_reward=reward, terminated=True, termination_reason="done"
    )


def test_load_pairs_reads_both_jsonl_formats_and_trajectories(tmp_path: Path) -> None:
    chosen = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    rejected = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]
    prompt = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    path = _write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"chosen": chosen, "rejected": rejected, "margin": 2},
            "",
            {"prompt": prompt, "chosen": [chosen[1]], "rejected": [rejected[1]]},
            {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},  # TRL's standard (string) format
        ],
    )
    pairs = load_pairs(path)
    assert [p.source for p in pairs] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert pairs[0].chosen == chosen and pairs[0].rejected == rejected and pairs[0].margin == 2.0
    assert pairs[1].chosen == [*prompt, chosen[1]] and pairs[1].rejected == [*prompt, rejected[1]]
    assert pairs[2].chosen == chosen and pairs[2].margin is None

    trajs = tmp_path / "trajectories.jsonl"
    save_jsonl(
        [_traj("t1", 1.0, "right"), _traj("t1", 0.0, "wrong"), _traj("t2", 0.7, "a"), _traj("t2", 0.6, "b")], trajs
    )
    from_trajs = load_pairs(trajs)  # t2's rewards are only 0.1 apart: no pair under min_margin 0.5
    assert len(from_trajs) == 1
    assert from_trajs[0].chosen[-1]["content"] == "right" and from_trajs[0].rejected[-1]["content"] == "wrong"
    assert from_trajs[0].source == f"{trajs}:1 > {trajs}:2"
    assert len(load_pairs(trajs, min_margin=0.1)) == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "2: not valid JSON"),
        ('["a list"]', "2: a row must be a JSON object"),
        ('{"chosen": []}', "2: expected {'chosen', 'rejected'}"),
        ('{"chosen": [{"content": "x"}], "rejected": []}', r"2: chosen\[0\] is not a chat message"),
        ('{"chosen": [], "rejected": []}', "2: 'chosen' and 'rejected' must not be empty"),
    ],
)
def test_load_pairs_names_the_bad_line(tmp_path: Path, row: str, message: str) -> None:
    good = {"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}
    path = _write_jsonl(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(ValueError, match=f"bad.jsonl:{message}"):
        load_pairs(path)


def test_load_turn_labels_from_rows_and_trajectories(tmp_path: Path) -> None:
    msgs = [
        {"role": "user", "content": "Go."},
        {"role": "assistant", "content": "step 1"},
        {"role": "user", "content": "Next."},
        {"role": "assistant", "content": "step 2"},
    ]
    path = _write_jsonl(tmp_path / "turns.jsonl", [{"messages": msgs, "turn_labels": [1, 0]}])
    save_jsonl([_traj("t1", 1.0, "right"), _traj("t2", 0.0, "wrong")], tmp_path / "t.jsonl")
    path.write_text(path.read_text() + (tmp_path / "t.jsonl").read_text())
    items = load_turn_labels(path)
    assert [it.turn_labels for it in items] == [[1.0, 0.0], [1.0], [0.0]]  # Monte-Carlo: the episode's outcome
    _write_jsonl(path, [{"messages": msgs, "turn_labels": [1]}])
    with pytest.raises(ValueError, match=r"turns.jsonl:1: 1 turn_labels for 2 assistant turns"):
        load_turn_labels(path)


def test_split_is_a_stable_hash_of_each_pair(tmp_path: Path) -> None:
    pairs = load_pairs(_separable(tmp_path / "p.jsonl", 1, n=100))
    train, test = split(pairs, 0.3, seed=4)
    assert 15 <= len(test) <= 45 and len(train) + len(test) == 100
    # the held-out side depends on each pair's content only: reordering or dropping rows moves nothing
    _, test_rev = split(list(reversed(pairs[:60])), 0.3, seed=4)
    assert {p.key() for p in test_rev} == {p.key() for p in test if p in pairs[:60]}
    assert {p.key() for p in split(pairs, 0.3, seed=5)[1]} != {p.key() for p in test}


# ----- a reward model on a separable preference set ---------------------------------------------


def _config(tiny_dir: Path, data: Path, out: Path, **kw: Any) -> RMConfig:
    base: dict[str, Any] = {
        "model": str(tiny_dir),
        "data": str(data),
        "output_dir": str(out),
        "epochs": 2,
        "lr": 1e-3,
        "batch_size": 16,
        "max_length": 256,
        "test_fraction": TEST_FRACTION,
        "seed": SEED,
        "threads": 1,
        "progress": False,
    }
    return RMConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def trained(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A reward model trained on 260 separable pairs (about 195 train, 65 held out)."""
    root = tmp_path_factory.mktemp("rm")
    data = _separable(root / "pairs.jsonl", SEED)
    result = train_reward_model(_config(tiny_dir, data, root / "rm"))
    return {**result, "data": data}


def test_reward_model_separates_held_out_pairs(trained: dict[str, Any]) -> None:
    m = trained["metrics"]
    assert m["objective"] == "pairwise" and m["test_examples"] >= 50 and m["train_examples"] >= 180
    assert m["test_accuracy"] > 0.9, m
    assert m["test_accuracy_before"] < 0.8  # a random head does not separate them: training did
    assert json.loads((Path(trained["output_dir"]) / "metrics.json").read_text()) == m
    records = [json.loads(line) for line in Path(trained["metrics_file"]).read_text().splitlines()]
    assert sum(r["kind"] == "train" for r in records) == m["steps"] > 0

    # the saved directory, as an environment's reward, re-scores the held-out pairs
    _, test = split(load_pairs(trained["data"]), TEST_FRACTION, SEED)
    assert len(test) == m["test_examples"]
    rm = RewardModelReward(trained["output_dir"], normalize="none")
    chosen, rejected = rm.score([p.chosen for p in test]), rm.score([p.rejected for p in test])
    assert pair_accuracy(chosen, rejected) == pytest.approx(m["test_accuracy"])
    assert pair_accuracy(chosen, rejected) > 0.9
    probs = RewardModelReward(trained["output_dir"]).score([test[0].chosen, test[0].rejected])  # sigmoid
    assert 0 < probs[1] < probs[0] < 1


def test_saved_model_is_a_standard_sequence_classifier(trained: dict[str, Any]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = Path(trained["output_dir"])
    meta = json.loads((out / "agentgym_rm.json").read_text())
    assert meta["objective"] == "pairwise" and meta["max_length"] == 256
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_labels == 1 and model.config.pad_token_id == tokenizer.pad_token_id
    transcript = _transcript(random.Random(7), True)
    ids = Renderer(tokenizer, 256).ids(transcript)
    with torch.no_grad():
        logit = float(model(torch.tensor([ids])).logits[0, 0])  # what TRL's RewardTrainer reads
    assert RewardModelReward(str(out), normalize="none").score([transcript])[0] == pytest.approx(logit, abs=1e-5)


def test_rendering_writes_calls_into_the_text_and_cuts_from_the_left(tiny_tokenizer: Any) -> None:
    transcript: list[dict[str, Any]] = [
        {"role": "user", "content": "Add 2 and 3."},
        {"role": "assistant", "content": None, "tool_calls": [_call("add", {"a": 2, "b": 3})]},
        {"role": "tool", "tool_call_id": "c1", "name": "add", "content": "5"},
    ]
    renderer = Renderer(tiny_tokenizer, 16)
    assert not renderer.native_calls  # the tiny ChatML template does not render tool_calls
    assert '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>' in renderer.text(transcript)
    full = renderer.chat.encode(renderer.text(transcript))
    assert len(full) > 16 and renderer.ids(transcript) == full[-16:]  # the end of the episode is kept


# ----- the command line -------------------------------------------------------------------------


def test_rm_train_command(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoModelForSequenceClassification

    from agentgym.cli import main

    data = _separable(tmp_path / "pairs.jsonl", 3, n=24)
    out = tmp_path / "rm"
    argv = ["rm", "train", "--model", str(tiny_dir), "--data", str(data), "--output-dir", str(out)]
    argv += ["--epochs", "1", "--batch-size", "8", "--lr", "1e-4", "--test-fraction", "0.25", "--threads", "1"]
    assert main([*argv, "--no-progress", "--max-length", "128"]) == 0
    printed = capsys.readouterr().out
    assert "held-out pair accuracy" in printed and str(out) in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == math.ceil(metrics["train_examples"] / 8) and metrics["test_examples"] > 0
    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 1

    capsys.readouterr()
    bad = _write_jsonl(tmp_path / "bad.jsonl", [json.loads(data.read_text().splitlines()[0]), {"prompt": []}])
    assert main([*argv[:5], str(bad), "--output-dir", str(tmp_path / "bad_rm"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{bad}:2: expected" in err


# ----- rewards for environments -----------------------------------------------------------------


def test_reward_model_reward_fails_at_first_call_and_caches(trained: dict[str, Any], tiny_dir: Path) -> None:
    missing = RewardModelReward("/nonexistent/rm")  # construction is cheap: nothing loads
    with pytest.raises(RewardError, match="cannot load the reward model"):
        missing.score([[{"role": "user", "content": "Hi"}]])
    assert missing.stats["errors"] == 1
    with pytest.raises(RewardError, match="not a reward model"):
        RewardModelReward(str(tiny_dir)).score([[{"role": "user", "content": "Hi"}]])  # a causal LM, no head

    rm = RewardModelReward(trained["output_dir"])
    transcripts = [_transcript(random.Random(k), k % 2 == 0) for k in range(6)]
    results: list[list[float]] = []
    threads = [threading.Thread(target=lambda: results.append(rm.score(transcripts))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == results[0] for r in results)
    stats = rm.stats
    assert stats["calls"] == 24 and stats["errors"] == 0
    assert stats["scored"] + stats["cache_hits"] == 24  # threads that miss together each score
    rm.score(transcripts[:1])
    assert rm.stats["cache_hits"] == stats["cache_hits"] + 1 and rm.stats["scored"] == stats["scored"]
    copy = pickle.loads(pickle.dumps(rm))  # an env holding it may be pickled: settings travel, the model reloads
    assert copy._model is None and copy.score(transcripts) == results[0]


def _multi_turn() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You solve tasks with tools."},
        {"role": "user", "content": "What is 12 * 3 + 4?"},
        {"role": "assistant", "content": "Let me compute.", "tool_calls": [_call("calculator", {"x": "12 * 3"})]},
        {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "36"},
        {"role": "assistant", "content": None, "tool_calls": [_call("calculator", {"x": "36 + 4"}, "c2")]},
        {"role": "tool", "tool_call_id": "c2", "name": "calculator", "content": "40"},
        {"role": "user", "content": "Please submit."},
        {"role": "assistant", "content": "The answer is 40. Verified: yes yes yes."},
    ]


def test_prm_one_pass_equals_each_prefix_scored_alone(trained: dict[str, Any]) -> None:
    transcript = _multi_turn()
    prm = ProcessRewardModel(trained["output_dir"], normalize="none")
    rm = RewardModelReward(trained["output_dir"], normalize="none")
    # s_0: the opening; s_t: up to the next assistant message (turn t's tool results and feedback)
    prefixes = [transcript[:2], transcript[:4], transcript[:7], transcript]
    alone = rm.score(prefixes)
    assert prm.prefix_scores(transcript) == pytest.approx(alone, abs=1e-5)
    assert prm.score_turns(transcript) == pytest.approx(alone[1:], abs=1e-5)
    assert prm.stats["scored"] == 1  # one forward pass for every turn

    delta = ProcessRewardModel(trained["output_dir"], mode="delta", normalize="sigmoid")
    r = delta.score_turns(transcript)
    s = delta.prefix_scores(transcript)
    assert len(r) == 3 and sum(r) == pytest.approx(s[-1] - s[0], abs=1e-6)  # telescopes: s_T - s_0
    # longer than max_length: each prefix is cut and scored on its own
    short = ProcessRewardModel(trained["output_dir"], normalize="none", max_length=40)
    cut = RewardModelReward(trained["output_dir"], normalize="none", max_length=40).score(prefixes)
    assert short.prefix_scores(transcript) == pytest.approx(cut, abs=1e-5)
    with pytest.raises(RewardError, match="at least one assistant turn"):
        prm.score_turns(transcript[:2])


def test_prm_per_turn_rewards_in_a_real_episode(trained: dict[str, Any]) -> None:
    prm = ProcessRewardModel(trained["output_dir"], mode="delta")
    env = agentgym.make("agentgym/ToolUse-v0", rewards=[RewardFunc("prm", prm, 1.0, "process")])
    try:
        env.reset(seed=0)
        task = env.task
        rewards = []
        for action in env.oracle_turns(task):
            _, _, terminated, truncated, info = env.step(action)
            rewards.append(info["reward_components"]["prm"])
            if terminated or truncated:
                break
        assert info["termination_reason"] != "reward_error" and len(rewards) >= 2
        assert rewards == pytest.approx(prm.score_turns(env.messages, env.tool_schemas()), abs=1e-6)
        s = prm.prefix_scores(env.messages, env.tool_schemas())
        assert sum(rewards) == pytest.approx(s[-1] - s[0], abs=1e-6)
    finally:
        env.close()


def test_prm_spec_builds_from_json(trained: dict[str, Any]) -> None:
    from agentgym.rewards import make_reward

    fn = make_reward({"type": "prm", "name": "steps", "path": trained["output_dir"], "mode": "delta", "weight": 0.5})
    assert fn.kind == "process" and fn.weight == 0.5
    assert isinstance(fn.fn, ProcessRewardModel) and fn.fn.source == "prm" and fn.fn._model is None  # lazy


def test_pointwise_prm_training(tiny_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    for _ in range(80):
        msgs = [{"role": "user", "content": f"Solve {rng.randint(0, 99)}."}]
        labels = []
        for _ in range(rng.randint(1, 3)):
            good = rng.random() < 0.5
            msgs += [
                {"role": "assistant", "content": "Verified: yes yes yes." if good else "Unsure: no no no."},
                {"role": "user", "content": "Go on."},
            ]
            labels.append(1 if good else 0)
        rows.append({"messages": msgs, "turn_labels": labels})
    data = _write_jsonl(tmp_path / "turns.jsonl", rows)
    result = train_reward_model(
        _config(tiny_dir, data, tmp_path / "prm", objective="pointwise", epochs=4, batch_size=8)
    )
    m = result["metrics"]
    assert m["accuracy"] == "turn" and m["train_accuracy"] > 0.9 and m["test_accuracy"] > 0.9, m
    prm = ProcessRewardModel(result["output_dir"])
    scores = prm.score_turns(rows[0]["messages"])
    assert len(scores) == len(rows[0]["turn_labels"])
    assert all((s > 0.5) == bool(y) for s, y in zip(scores, rows[0]["turn_labels"], strict=True))
