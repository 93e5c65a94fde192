"""Overlapped rollouts, one-step off-policy training and trainer envs behind the Gymnasium API.

Real parts throughout: the tiny model sampling with the HF engine, real agentgym envs (a test
env whose turns wait like a test run, the built-in ToolUse env), a real ``agentgym serve`` on
loopback, real training runs and checkpoints.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file

import agentgym
from agentgym.env import AgentEnv
from agentgym.envs.tooluse import ToolUseEnv
from agentgym.messages import Message, user
from agentgym.rewards import Rubric
from agentgym.rollout import plan_jobs
from agentgym.server import serve
from agentgym.tasks import Task, TaskSet
from agentgym.trainer import GRPOConfig, train
from agentgym.trainer.checkpoint import latest
from agentgym.trainer.engines import SamplingParams
from agentgym.trainer.engines.hf import HFEngine
from agentgym.trainer.loop import Trainer
from agentgym.trainer.models import load_model
from agentgym.trainer.rollout import RolloutLimits, RolloutStats, rollout
from agentgym.trainer.tokens import ChatTokens
from agentgym.trajectory import Trajectory, load_jsonl

RunConfig = Callable[..., GRPOConfig]  # the run_config fixture (tests/trainer/conftest.py)
SLOW_ID = "agentgym/TestSlowChecks-v0"
TOOLS_ID = "agentgym/TestToolUseThreads-v0"


class SlowChecksEnv(AgentEnv):
    """Text turns, each followed by a "test run" that sleeps: ``delays[i % len(delays)]`` seconds for task i.

    Deterministic given the actions (the sleep changes only timing). Task i with ``i % 10`` in ``fail_step``
    raises inside ``step`` on turn 2, in ``fail_reset`` when it is set up.
    """

    system_prompt = "Reply with digits."
    default_max_turns = 3

    def __init__(
        self,
        delays: tuple[float, ...] = (0.0, 0.3),
        fail_step: tuple[int, ...] = (),
        fail_reset: tuple[int, ...] = (),
        **kwargs: Any,
    ):
        self.delays, self.fail_step, self.fail_reset = delays, fail_step, fail_reset
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        return TaskSet([Task(f"slow-{i:03d}", f"Say {i}.", split="train") for i in range(40)], name="slow")

    def get_tools(self) -> list:
        return []

    def index(self) -> int:
        return int(self.task.id.rsplit("-", 1)[1])

    def setup(self, task: Task) -> None:
        if int(task.id.rsplit("-", 1)[1]) % 10 in self.fail_reset:
            raise RuntimeError(f"cannot set up {task.id}")

    def on_text_turn(self, parsed: Any) -> list[Message]:
        time.sleep(self.delays[self.index() % len(self.delays)])  # the turn's checks run
        if self.turn == 2 and self.index() % 10 in self.fail_step:
            raise RuntimeError(f"the checks of {self.task.id} crashed")
        return [user("Checks ran. Again.")]

    def build_rubric(self) -> Rubric:
        def digits(env: AgentEnv) -> float:
            text = "".join(m.get("content") or "" for m in env.messages if m["role"] == "assistant")
            return sum(ch.isdigit() for ch in text) / max(len(text), 1)

        return Rubric().add("digits", digits)


class ThreadRecordingToolUse(ToolUseEnv):
    """The built-in ToolUse env, recording the name of the thread each step ran on (server threads or the trainer's)."""

    threads: list[str] = []  # noqa: RUF012  (shared on purpose: the test reads what every instance saw)

    def step(self, action: Any) -> Any:
        ThreadRecordingToolUse.threads.append(threading.current_thread().name)
        return super().step(action)


@pytest.fixture(scope="module")
def slow_env_id() -> Iterator[str]:
    agentgym.register(SLOW_ID, SlowChecksEnv, override=True)
    agentgym.register(TOOLS_ID, ThreadRecordingToolUse, override=True)
    yield SLOW_ID
    del gym.registry[SLOW_ID]
    del gym.registry[TOOLS_ID]


@pytest.fixture(scope="module")
def tiny_engine(tiny_dir: Path) -> tuple[HFEngine, ChatTokens]:
    model, tokenizer = load_model(str(tiny_dir))
    return HFEngine(model, tokenizer), ChatTokens(tokenizer)


def test_a_prompt_with_its_own_seed_samples_the_same_in_any_batch(tiny_engine: tuple[HFEngine, ChatTokens]) -> None:
    engine, _ = tiny_engine
    prompts = [[1, 87, 85, 264], [1, 40, 41, 42, 43, 44, 45], [1, 87, 85, 264]]
    params = SamplingParams(max_tokens=12, temperature=1.0, seeds=[7, 8, 9])
    batched = engine.generate(prompts, params)
    for i, p in enumerate(prompts):
        (alone,) = engine.generate([p], SamplingParams(max_tokens=12, temperature=1.0, seeds=[7 + i]))
        assert alone.ids == batched[i].ids
        torch.testing.assert_close(
            torch.tensor(alone.logprobs), torch.tensor(batched[i].logprobs), rtol=1e-4, atol=1e-4
        )
    assert batched[0].ids != batched[2].ids  # the same prompt, its own seed: its own sample
    with pytest.raises(ValueError, match="seeds has 2 entries for 3 prompts"):
        engine.generate(prompts, SamplingParams(seeds=[1, 2]))


def _play(
    env_id: str, engine: HFEngine, chat: ChatTokens, mode: str, n_tasks: int = 4, **env_kwargs: Any
) -> tuple[list[Trajectory], RolloutStats]:
    jobs = plan_jobs([f"slow-{i:03d}" for i in range(n_tasks)], 2, seed=5)
    envs = [agentgym.make(env_id, **env_kwargs) for _ in jobs]
    stats = RolloutStats()
    try:
        trajs = rollout(
            envs, jobs, engine, chat, RolloutLimits(8, 512, 1.0), seed=11, env_workers=len(jobs), stats=stats, mode=mode
        )
    finally:
        for env in envs:
            env.close()
    return trajs, stats


@pytest.fixture(scope="module")
def both_modes(
    slow_env_id: str, tiny_engine: tuple[HFEngine, ChatTokens]
) -> dict[str, tuple[list[Trajectory], RolloutStats]]:
    """The same jobs and seeds played in lockstep and overlapped, on episodes whose checks take 0 s or 0.3 s."""
    engine, chat = tiny_engine
    return {mode: _play(slow_env_id, engine, chat, mode) for mode in ("lockstep", "overlap")}


def test_overlap_plays_the_same_episodes_as_lockstep(both_modes: dict) -> None:
    (lock, lock_stats), (over, over_stats) = both_modes["lockstep"], both_modes["overlap"]
    # the schedules really differed: lockstep batches every episode per turn, overlap batches whoever is ready
    assert lock_stats.generate_calls == 3 and over_stats.generate_calls > 3
    assert lock_stats.turns == over_stats.turns == 8 * 3
    assert [t.task_id for t in over] == [t.task_id for t in lock]  # job order
    for a, b in zip(lock, over, strict=True):
        assert not a.infra_failure and a.num_turns == 3
        assert a.token_ids() == b.token_ids(), f"{a.task_id} seed {a.seed}: sampled differently"
        assert a.messages == b.messages and a.reward == b.reward and a.termination_reason == b.termination_reason
        for sa, sb in zip(a.segments, b.segments, strict=True):
            if sa.trainable:  # batched kernels may move a log-prob in its last bits, nothing more
                torch.testing.assert_close(torch.tensor(sa.logprobs), torch.tensor(sb.logprobs), rtol=1e-4, atol=1e-4)
    assert len({tuple(t.token_ids()) for t in lock}) == len(lock)  # every episode sampled its own turns


def test_overlap_leaves_the_generator_idle_less_than_lockstep(both_modes: dict) -> None:
    (_, lock), (_, over) = both_modes["lockstep"], both_modes["overlap"]
    assert 0.0 < over.generator_idle_share < lock.generator_idle_share < 1.0, (
        f"idle share: lockstep {lock.generator_idle_share:.3f}, overlap {over.generator_idle_share:.3f}"
    )
    assert lock.wall_s > 3 * 0.3  # lockstep waits for the slowest checks every turn


def test_a_failing_episode_ends_alone_while_the_others_play_on(
    slow_env_id: str, tiny_engine: tuple[HFEngine, ChatTokens]
) -> None:
    engine, chat = tiny_engine
    # task 1 fails to set up, task 2's checks crash on turn 2; tasks 0 and 3 (one slow, one fast) play on
    trajs, _ = _play(slow_env_id, engine, chat, "overlap", delays=(0.0, 0.2), fail_reset=(1,), fail_step=(2,))
    by_task: dict[str, list[Trajectory]] = {}
    for t in trajs:
        by_task.setdefault(t.task_id, []).append(t)
    for t in by_task["slow-001"]:
        assert t.infra_failure and t.termination_reason == "reset_error" and "cannot set up" in t.metadata["error"]
        assert t.messages == [] and t.segments == []
    for t in by_task["slow-002"]:
        assert t.infra_failure and t.termination_reason == "env_error" and "crashed" in t.metadata["error"]
        assert t.num_turns == 1 and len([s for s in t.segments if s.kind == "sampled"]) == 2
    for task in ("slow-000", "slow-003"):
        for t in by_task[task]:
            assert not t.infra_failure and t.num_turns == 3 and t.termination_reason == "max_turns"
            assert t.outcome_reward is not None


def test_the_token_budget_ends_an_episode_through_finish(
    slow_env_id: str, tiny_engine: tuple[HFEngine, ChatTokens]
) -> None:
    engine, chat = tiny_engine
    env = agentgym.make(slow_env_id, delays=(0.0,))
    budget = len(chat.encode(chat.render(env.reset(options={"task_id": "slow-000"})[0], True))) + 12
    jobs = plan_jobs(["slow-000"], 2, seed=1)
    envs = [env, agentgym.make(slow_env_id, delays=(0.0,))]
    try:
        trajs = rollout(envs, jobs, engine, chat, RolloutLimits(8, budget, 1.0), seed=3)
    finally:
        for e in envs:
            e.close()
    for t in trajs:
        assert t.termination_reason == "token_budget" and t.truncated and not t.infra_failure
        assert t.outcome_reward is not None and t.steps[-1].info["termination_reason"] == "token_budget"
        assert "digits" in t.steps[-1].reward_components  # graded by env.finish


def test_training_steps_with_envs_from_a_real_server_match_local_envs(
    slow_env_id: str, run_config: RunConfig, tmp_path: Path
) -> None:
    server = serve("127.0.0.1", 0, token="s3cret-token")
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    common = {"steps": 1, "tasks_per_step": 2, "group_size": 2, "max_turns": 2, "max_turn_tokens": 24}
    common["max_total_tokens"] = 4096  # ToolUse's prompt (its tools block) alone is longer than the small default
    try:
        ThreadRecordingToolUse.threads.clear()
        remote = train(
            run_config(
                TOOLS_ID,
                output_dir=str(tmp_path / "server"),
                env_backend="server",
                env_server_url=url,
                env_server_token="s3cret-token",
                eval_tasks=2,
                **common,
            )
        )
        served_threads = list(ThreadRecordingToolUse.threads)
    finally:
        server.shutdown()
        server.server_close()
    ThreadRecordingToolUse.threads.clear()
    local = train(run_config(TOOLS_ID, output_dir=str(tmp_path / "local"), eval_tasks=2, **common))
    assert remote["step"] == local["step"] == 1
    saved = (tmp_path / "server" / "config.json").read_text()
    assert '"env_backend": "server"' in saved and "s3cret" not in saved  # the token is never written
    assert served_threads and not any(name.startswith("agentgym-env") for name in served_threads)  # ran on the server
    assert ThreadRecordingToolUse.threads and all(n.startswith("agentgym-env") for n in ThreadRecordingToolUse.threads)
    a = load_jsonl(tmp_path / "server" / "trajectories.jsonl")
    b = load_jsonl(tmp_path / "local" / "trajectories.jsonl")
    assert len(a) == len(b) == 4
    for ta, tb in zip(a, b, strict=True):
        assert ta.token_ids() == tb.token_ids() and ta.messages == tb.messages and ta.reward == tb.reward
    assert remote["evals"][-1]["tasks"] == local["evals"][-1]["tasks"] == 2
    assert remote["evals"][-1]["success"] == local["evals"][-1]["success"]


def test_training_with_ray_actor_envs(ray_cluster: Any, run_config: RunConfig, tmp_path: Path) -> None:
    summary = train(  # on the session's local Ray cluster (loopback)
        run_config(
            "agentgym/ToolUse-v0",
            env_backend="ray",
            steps=1,
            tasks_per_step=2,
            group_size=2,
            max_turns=2,
            max_total_tokens=4096,
            eval_tasks=2,
        )
    )
    assert summary["step"] == 1
    trajs = load_jsonl(tmp_path / "trajectories.jsonl")
    assert len(trajs) == 4 and all(t.segments and not t.infra_failure and t.num_turns >= 1 for t in trajs)
    assert summary["evals"][-1]["tasks"] == 2 and summary["evals"][-1]["infra_failures"] == 0


def test_off_policy_rollouts_are_one_step_stale_at_most(
    run_config: RunConfig, digits_env_id: str, tmp_path: Path
) -> None:
    summary = train(run_config(digits_env_id, steps=3, off_policy_steps=1, lr=3e-3))
    trajs = load_jsonl(tmp_path / "trajectories.jsonl")
    assert len(trajs) == 3 * 16
    for t in trajs:
        step, version = t.metadata["step"], t.metadata["policy_version"]
        assert version == max(step - 1, 0), (step, version)  # step k+1 sampled with the weights of step k
        assert step - version <= 1
    for record in summary["train"]:
        assert record["staleness_max"] <= 1 and record["episodes_stale"] == 0
        assert 0.0 <= record["generator_idle_share"] <= 1.0 and record["generate_calls"] >= 1
    assert [r["staleness_max"] for r in summary["train"]] == [0, 1, 1]
    assert all(r["optimizer_steps"] > 0 for r in summary["train"])


def test_a_batch_staler_than_the_bound_is_dropped_and_counted(
    run_config: RunConfig, digits_env_id: str, tmp_path: Path
) -> None:
    trainer = Trainer(run_config(digits_env_id, steps=3, off_policy_steps=1))  # step 2 is the last: none ahead
    try:
        trainer.step = 2
        trajs, stats = trainer.play_step(2)  # sampled by version 0: two steps stale at step 2
        assert {t.metadata["policy_version"] for t in trajs} == {0}
        stale: Future = Future()
        stale.set_result((trajs, stats))
        trainer._ahead = stale
        record = trainer.train_step()
    finally:
        trainer.close()
    assert record["episodes_stale"] == 16 and record["staleness_max"] == 2
    assert record["episodes_trained"] == 0 and record["optimizer_steps"] == 0


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(latest(path) / "model.safetensors")


@pytest.mark.slow
def test_an_off_policy_run_resumes_with_the_batch_sampled_ahead(
    run_config: RunConfig, digits_env_id: str, tmp_path: Path
) -> None:
    straight = tmp_path / "straight"
    train(run_config(digits_env_id, output_dir=str(straight), steps=4, save_every=2, off_policy_steps=1, lr=3e-3))
    # the run as if it had stopped after step 2: its checkpoint holds the episodes step 3 trains on
    state = json.loads((straight / "checkpoints" / "step_000002" / "trainer_state" / "state.json").read_text())
    ahead = state["rollout_ahead"]["trajectories"]
    assert len(ahead) == 16 and {t["metadata"]["policy_version"] for t in ahead} == {1}
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_000004")
    train(
        run_config(
            digits_env_id, output_dir=str(resumed), steps=4, save_every=2, off_policy_steps=1, lr=3e-3, resume="auto"
        )
    )
    a, b = _weights(straight), _weights(resumed)
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-6, atol=1e-7, msg=f"{name} differs after resume")
    ta = load_jsonl(straight / "trajectories.jsonl")
    tb = load_jsonl(resumed / "trajectories.jsonl")
    assert [t.token_ids() for t in ta] == [t.token_ids() for t in tb]
    assert [t.metadata["policy_version"] for t in ta] == [t.metadata["policy_version"] for t in tb]
