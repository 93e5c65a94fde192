"""Training survives bad episodes: real envs, templates and engines that raise; a run of failures stops the run.

Every failure is real: an env whose ``setup`` raises, a chat template that calls
``raise_exception`` on some content, a grader that raises, an env returning NaN rewards or a
malformed step, the real HF engine failing on some prompts. Each must end its own episode
alone, with its reason, and the rest of the batch must train.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import gymnasium as gym
import pytest

import agentgym
from agentgym.env import AgentEnv
from agentgym.messages import user
from agentgym.rewards import Rubric
from agentgym.rollout import plan_jobs
from agentgym.tasks import Task, TaskSet
from agentgym.trainer import GRPOConfig, train
from agentgym.trainer.batch import make_batch
from agentgym.trainer.engines import Completion, SamplingParams
from agentgym.trainer.engines.hf import HFEngine
from agentgym.trainer.loop import TrainingStopped
from agentgym.trainer.models import CHATML_TEMPLATE, load_model
from agentgym.trainer.rollout import RolloutLimits, rollout
from agentgym.trainer.tokens import ChatTokens
from agentgym.trajectory import load_jsonl, save_jsonl

RunConfig = Callable[..., GRPOConfig]  # the run_config fixture (tests/trainer/conftest.py)
FLAKY_ID = "agentgym/TestFlaky-v0"
# task index % every -> what goes wrong (0 and the rest: nothing)
EXPECTED = {
    1: "reset_error",
    2: "template_error",
    3: "template_error",
    4: "env_error",
    5: "nonfinite_reward",
    6: "env_error",
    7: "engine_error",
    8: "engine_error",
}


def _kind(task_id: str, every: int) -> int:
    return int(task_id.rsplit("-", 1)[1]) % every if every else 0


class FlakyEnv(AgentEnv):
    """Two text turns; the reward is the fraction of digits in the replies.

    Task i % every picks a failure: 1 setup raises, 2 prompt the template refuses, 3 feedback the
    template refuses, 4 grader raises, 5 NaN rewards, 6 a malformed step result, 7 prompt the engine
    fails on, 8 prompt the engine returns NaN log-probs for.
    """

    system_prompt = "Reply."
    default_max_turns = 2

    def __init__(self, every: int = 10, broken: bool = False, **kwargs):
        self.every, self.broken = every, broken
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        words = {2: " BOOM", 7: " ENGINE", 8: " NANLP"}
        tasks = []
        for i in range(200):
            word = words.get(_kind(f"flaky-{i}", self.every), "")
            tasks.append(Task(f"flaky-{i:03d}", f"Say {i}.{word}", split="train" if i < 160 else "test"))
        return TaskSet(tasks, name="flaky")

    def get_tools(self) -> list:
        return []

    def kind(self) -> int:
        return _kind(self.task.id, self.every)

    def setup(self, task: Task) -> None:
        if self.broken or _kind(task.id, self.every) == 1:
            raise RuntimeError(f"cannot set up {task.id}")

    def on_text_turn(self, parsed) -> list:
        return [user("Again." + (" BOOM" if self.kind() == 3 else ""))]

    def build_rubric(self) -> Rubric:
        def digits(env: AgentEnv) -> float:
            if env.kind() == 4:  # type: ignore[attr-defined]
                raise ValueError("grader bug: unexpected reply")
            replies = [m.get("content") or "" for m in env.messages if m["role"] == "assistant"]
            text = "".join(replies)
            return sum(ch.isdigit() for ch in text) / max(len(text), 1)

        return Rubric().add("digits", digits)

    def step(self, action):
        if self.kind() == 6:
            return None
        obs, reward, terminated, truncated, info = super().step(action)
        if self.kind() == 5:
            reward = info["process_reward"] = float("nan")
        return obs, reward, terminated, truncated, info


class FaultyEngine:
    """The real HF engine, failing the way GPUs and servers do on some prompts (the call raises / NaN log-probs)."""

    def __init__(self, inner: HFEngine, tokenizer):
        self.inner, self.tokenizer = inner, tokenizer

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        texts = [self.tokenizer.decode(list(p)) for p in prompts]
        if any("ENGINE" in t for t in texts):
            raise RuntimeError("CUDA error: device-side assert triggered")
        out = self.inner.generate(prompts, params)
        return [
            Completion(c.ids, [float("nan")] * len(c.ids), c.finish_reason) if "NANLP" in t else c
            for c, t in zip(out, texts, strict=True)
        ]

    def sync_weights(self, model: object) -> None:
        self.inner.sync_weights(model)


@pytest.fixture
def flaky_env_id() -> Iterator[str]:
    agentgym.register(FLAKY_ID, FlakyEnv, override=True)
    yield FLAKY_ID
    del gym.registry[FLAKY_ID]


@pytest.fixture(scope="module")
def boom_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a ChatML template that raises on any message containing BOOM."""
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("boom") / "tiny-boom"
    shutil.copytree(tiny_dir, path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = (
        "{% for message in messages %}{% if 'BOOM' in (message['content'] or '') %}"
        "{{ raise_exception('this template cannot render BOOM') }}{% endif %}{% endfor %}" + CHATML_TEMPLATE
    )
    tok.save_pretrained(path)
    return path


def test_each_failure_ends_only_its_own_episode(boom_dir: Path, flaky_env_id: str, tmp_path: Path) -> None:
    model, tokenizer = load_model(str(boom_dir))
    chat = ChatTokens(tokenizer)
    engine = FaultyEngine(HFEngine(model, tokenizer), tokenizer)
    task_ids = [f"flaky-{i:03d}" for i in range(20, 30)]  # one task of each kind
    jobs = plan_jobs(task_ids, 2, seed=0)
    envs = [agentgym.make(flaky_env_id) for _ in jobs]
    try:
        trajs = rollout(envs, jobs, engine, chat, RolloutLimits(6, 256, 1.0), seed=0)
    finally:
        for env in envs:
            env.close()
    assert [t.task_id for t in trajs] == [j.task_id for j in jobs]
    for t in trajs:
        expected = EXPECTED.get(_kind(t.task_id, 10))
        if expected:
            assert t.infra_failure and t.termination_reason == expected, (
                t.task_id,
                t.termination_reason,
                t.metadata.get("error"),
            )
            assert t.metadata["error"], f"{t.task_id}: no error recorded"
        else:
            assert not t.infra_failure and t.outcome_reward is not None, (
                t.task_id,
                t.termination_reason,
                t.metadata.get("error"),
            )
            assert t.num_turns == 2 and any(s.trainable for s in t.segments)
    errors = " | ".join(f"{t.termination_reason}: {t.metadata['error']}" for t in trajs if t.infra_failure)
    for reason, text in [
        ("reset_error", "cannot set up flaky-021"),
        ("template_error", "cannot render BOOM"),
        ("env_error", "grader bug"),
        ("env_error", "malformed result"),
        ("nonfinite_reward", "nan"),
        ("engine_error", "CUDA error"),
        ("engine_error", "not all finite"),
    ]:
        assert f"{reason}: " in errors and text in errors, f"{reason} / {text!r} not in {errors}"
    path = tmp_path / "t.jsonl"
    save_jsonl(trajs, path)  # NaN rewards were replaced: still valid JSON
    assert len(load_jsonl(path)) == len(trajs)

    batch = make_batch(trajs)
    want = Counter(EXPECTED[_kind(t, 10)] for t in task_ids if _kind(t, 10) in EXPECTED)
    assert batch.stats["masked_reasons"] == {k: 2 * n for k, n in want.items()}
    assert batch.stats["episodes_masked"] == 2 * sum(want.values())
    assert batch.stats["episodes_trained"] <= len(trajs) - batch.stats["episodes_masked"]


def test_training_goes_on_with_the_rest_of_the_batch(
    run_config: RunConfig, boom_dir: Path, flaky_env_id: str, tmp_path: Path
) -> None:
    config = run_config(
        flaky_env_id,
        env_kwargs={"every": 20},
        model=str(boom_dir),
        steps=2,
        tasks_per_step=8,
        group_size=2,
        lr=1e-3,
        eval_tasks=4,
    )
    summary = train(config)
    assert summary["step"] == 2
    trajs = load_jsonl(tmp_path / "trajectories.jsonl")
    for record in summary["train"]:
        step_trajs = [t for t in trajs if t.metadata["step"] == record["step"] - 1]
        kinds = [_kind(t.task_id, 20) for t in step_trajs]
        want = Counter(
            EXPECTED[k] for k in kinds if 1 <= k <= 6
        )  # the HF engine here has no faults (7, 8 train normally)
        assert record["masked_reasons"] == dict(want)
        assert record["episodes_masked"] == sum(want.values())
    assert sum(r["episodes_masked"] for r in summary["train"]) > 0, "the seeded task order must hit some failing tasks"
    assert sum(r.get("optimizer_steps", 0) for r in summary["train"]) > 0, "the good episodes must still train"


def test_a_run_of_failing_steps_stops_with_one_clear_line(
    run_config: RunConfig, flaky_env_id: str, tmp_path: Path
) -> None:
    config = run_config(
        flaky_env_id, env_kwargs={"broken": True}, steps=5, tasks_per_step=2, group_size=2, max_failed_steps=2
    )
    with pytest.raises(TrainingStopped) as err:
        train(config)
    message = str(err.value)
    assert "\n" not in message
    assert (
        "step 2" in message and "most common reason: reset_error (8 episodes)" in message and "cannot set up" in message
    )
    assert "--max-failed-fraction" in message
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["kind"] == "train"]
    assert len(train_records) == 2 and train_records[-1]["stopped"] == message


def test_the_prompt_alone_over_the_budget_is_named(run_config: RunConfig, flaky_env_id: str) -> None:
    config = run_config(
        flaky_env_id,
        env_kwargs={"every": 0},
        steps=3,
        tasks_per_step=2,
        group_size=2,
        max_total_tokens=4,
        max_failed_steps=1,
    )
    with pytest.raises(TrainingStopped, match=r"no_tokens \(4 episodes\).*max_total_tokens=4"):
        train(config)


def test_the_cli_reports_the_stop_in_one_line(
    tiny_dir: Path, flaky_env_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentgym.cli import main

    code = main(
        [
            "train",
            "--env",
            flaky_env_id,
            "--env-kwargs",
            '{"broken": true}',
            "--model",
            str(tiny_dir),
            "--output-dir",
            str(tmp_path),
            "--steps",
            "3",
            "--tasks-per-step",
            "2",
            "--group-size",
            "2",
            "--max-turn-tokens",
            "6",
            "--eval-tasks",
            "0",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()  # transformers' loading progress bar may come first
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert (
        last.startswith("agentgym: error: training stopped at step 2:")
        and "reset_error" in last
        and "cannot set up" in last
    )
