"""The Ray backend: the thread backend's trajectories, lost workers replayed or reported, eval on Ray, RayEnv.

Everything runs on the session's one local Ray cluster (``ray_cluster`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import agentgym
from agentgym.policies import OraclePolicy, PolicyContext, make_policy
from agentgym.rollout import collect, run_episode
from agentgym.testing import run_cli
from agentgym.trajectory import Trajectory, load_jsonl

TOOLUSE = "agentgym/ToolUse-v0"


@pytest.fixture(scope="module", autouse=True)
def _policies_travel_by_value(ray_cluster: Any) -> None:
    """The Ray workers cannot import this test module by name: its policies travel by value."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def comparable(t: Trajectory) -> dict[str, Any]:
    """A trajectory as plain data, without what only says how it ran (Ray retries)."""
    d = json.loads(t.to_json())
    d["metadata"] = {k: v for k, v in d["metadata"].items() if not k.startswith("ray_")}
    return d


def test_the_local_cluster_listens_on_loopback_only(ray_cluster: Any) -> None:
    import psutil
    import ray

    assert ray_cluster.owned and ray_cluster.address.startswith("127.0.0.1:")
    assert {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} == {"127.0.0.1"}
    # Every process of the cluster (GCS, raylet, agents, workers) is a child of this process.
    listening = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name() in ("gcs_server", "raylet") or p.name().startswith("ray::") or "/ray/" in " ".join(p.cmdline()):
                conns = p.net_connections("inet")
                listening |= {(p.name(), c.laddr.ip) for c in conns if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:  # a worker that ended meanwhile
            continue
    assert {name for name, _ in listening} >= {"gcs_server", "raylet"}
    assert all(_loopback(ip) for _, ip in listening), listening


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1 (a dual-stack socket)
    return (mapped or addr).is_loopback


def test_ray_and_threads_give_identical_oracle_trajectories(ray_cluster: Any) -> None:
    run = {"num_tasks": 6, "group_size": 2, "num_workers": 2, "seed": 3, "progress": False}
    threads = collect(TOOLUSE, "oracle", **run)
    finished: list[int] = []
    on_ray = collect(TOOLUSE, "oracle", backend="ray", on_result=lambda job, t: finished.append(job.index), **run)
    assert [comparable(t) for t in on_ray] == [comparable(t) for t in threads]
    assert len(on_ray) == 12 and all(t.success and "ray_retries" not in t.metadata for t in on_ray)
    assert sorted(finished) == list(range(12)) and len({t.seed for t in on_ray}) == 12


def test_ray_and_threads_give_identical_seeded_model_trajectories(
    ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from agentgym.trainer.models import ensure_tiny

    tiny = ensure_tiny(tmp_path_factory.mktemp("models") / "tiny")
    run: dict[str, Any] = {
        "num_tasks": 2,
        "group_size": 2,
        "num_workers": 2,
        "seed": 5,
        "progress": False,
        "env_kwargs": {"max_turns": 2},
        "policy_kwargs": {"max_tokens": 12, "temperature": 1.0, "threads": 1},
    }
    threads = collect(TOOLUSE, f"hf:{tiny}", **run)
    on_ray = collect(TOOLUSE, f"hf:{tiny}", backend="ray", **run)
    assert [comparable(t) for t in on_ray] == [comparable(t) for t in threads]
    sampled = [[s.ids for s in t.segments if s.trainable] for t in on_ray]
    assert all(sampled) and sampled[0] != sampled[1], "two episodes of a group sample alike: the seed is not used"


class StallOnce(OraclePolicy):
    """The oracle, except that the first time it plays ``victim`` it writes its pid and stalls."""

    def __init__(self, victim: str, pid_file: Path, killed_flag: Path):
        self.victim, self.pid_file, self.killed_flag = victim, pid_file, killed_flag

    def act(self, ctx: PolicyContext) -> Any:
        if ctx.task is not None and ctx.task.id == self.victim and not self.killed_flag.exists():
            self.pid_file.write_text(str(os.getpid()))
            time.sleep(300)
        return super().act(ctx)


def test_a_worker_killed_mid_episode_is_replayed_on_a_fresh_one(
    ray_cluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = {"num_tasks": 4, "num_workers": 2, "seed": 1, "progress": False}
    expected = collect(TOOLUSE, "oracle", **run)
    victim = expected[2].task_id
    pid_file, killed = tmp_path / "pid", tmp_path / "killed"

    def kill_the_worker() -> None:
        end = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < end:
            time.sleep(0.05)
        killed.touch()
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    with caplog.at_level(logging.WARNING, logger="agentgym.distributed"):
        got = collect(TOOLUSE, StallOnce(victim, pid_file, killed), backend="ray", **run)
    killer.join(timeout=5)
    assert killed.exists(), "the worker never stalled, so nothing was killed"
    assert [comparable(t) for t in got] == [comparable(t) for t in expected]
    assert [t.metadata.get("ray_retries", 0) for t in got] == [0, 0, 1, 0]
    assert f"the worker playing task {victim} (job 2, seed {expected[2].seed}) was lost" in caplog.text
    assert "1 episode(s) replayed on fresh workers and completed, 0 ended as worker_lost" in caplog.text


class KillsItsWorker(OraclePolicy):
    """The oracle, except that playing ``victim`` kills the worker process, every time."""

    def __init__(self, victim: str):
        self.victim = victim

    def act(self, ctx: PolicyContext) -> Any:
        if ctx.task is not None and ctx.task.id == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(ctx)


def test_an_episode_that_loses_every_worker_ends_as_an_infra_failure(ray_cluster: Any) -> None:
    from agentgym.distributed import collect_ray

    ids = agentgym.make(TOOLUSE).tasks.ids[:3]
    got = collect_ray(TOOLUSE, KillsItsWorker(ids[1]), tasks=ids, num_workers=2, progress=False, max_attempts=2)
    assert [t.task_id for t in got] == ids
    assert [t.termination_reason for t in got] == ["submitted", "worker_lost", "submitted"]
    lost = got[1]
    assert (lost.infra_failure, lost.truncated, lost.steps, lost.metadata["ray_retries"]) == (True, True, [], 1)
    assert lost.metadata["error"].startswith("the Ray worker playing this episode was lost 2 times")
    assert (lost.env_id, lost.policy) == (TOOLUSE, "oracle")


def test_eval_cli_on_ray_writes_the_report_threads_write(ray_cluster: Any, tmp_path: Path) -> None:
    args = ["eval", "ToolUse-v0", "--policy", "random", "--tasks", "4", "--samples", "2", "-k", "2", "--seed", "4"]
    threads = run_cli(*args, "--out", "threads", cwd=tmp_path)
    assert threads.returncode == 0, threads.stderr
    ray = run_cli(*args, "--out", "ray", "--backend", "ray", "--address", ray_cluster.address, cwd=tmp_path)
    assert ray.returncode == 0, ray.stderr
    for name in ("summary.md", "metrics.json", "eval.json"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "threads" / name).read_text(), name
    on_ray, on_threads = (
        load_jsonl(tmp_path / "ray" / "trajectories.jsonl"),
        load_jsonl(tmp_path / "threads" / "trajectories.jsonl"),
    )
    assert sorted(map(json.dumps, map(comparable, on_ray))) == sorted(map(json.dumps, map(comparable, on_threads)))
    assert 0 < json.loads((tmp_path / "ray" / "metrics.json").read_text())["episodes"] == 8


def test_run_cli_on_ray_prints_what_threads_print(ray_cluster: Any, tmp_path: Path) -> None:
    args = ["run", "ToolUse-v0", "--policy", "random", "--episodes", "3", "--workers", "2", "--quiet"]
    threads = run_cli(*args, "--out", "threads.jsonl", cwd=tmp_path)
    ray = run_cli(*args, "--out", "ray.jsonl", "--backend", "ray", "--address", ray_cluster.address, cwd=tmp_path)
    assert threads.returncode == 0 and ray.returncode == 0, (threads.stderr, ray.stderr)
    assert ray.stdout.replace("ray.jsonl", "threads.jsonl") == threads.stdout and threads.stdout.count("task ") == 3
    a, b = load_jsonl(tmp_path / "ray.jsonl"), load_jsonl(tmp_path / "threads.jsonl")
    assert [comparable(t) for t in a] == [comparable(t) for t in b]


def test_address_without_the_ray_backend_is_a_one_line_error(tmp_path: Path) -> None:
    out = run_cli("eval", "ToolUse-v0", "--address", "127.0.0.1:1", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr == "agentgym: error: --address is the Ray cluster of --backend ray; " + (
        "add --backend ray\n"
    )


def test_ray_env_plays_like_the_local_env(ray_cluster: Any) -> None:
    from agentgym.distributed import RayEnv

    local = agentgym.make(TOOLUSE, split="test")
    remote = RayEnv(TOOLUSE, {"split": "test"})
    try:
        assert remote.task_ids() == local.tasks.ids and remote.env_id == TOOLUSE
        for seed in (0, 1):
            a = run_episode(local, make_policy("random"), seed=seed)
            b = run_episode(remote, make_policy("random"), seed=seed)
            assert comparable(b) == comparable(a) and remote.messages == local.messages == b.messages
        remote.reset(seed=2)
        assert remote.finish("budget")["termination_reason"] == "budget"
        # The oracle needs the task, which a proxy does not expose: a clear policy error, not a crash.
        t = run_episode(remote, make_policy("oracle"), seed=0)
        assert (t.infra_failure, t.termination_reason) == (True, "policy_error")
        assert (
            "needs the episode's task and env.oracle_turns(task), which RayEnv does not expose" in t.metadata["error"]
        )
    finally:
        local.close()
        remote.close()
        remote.close()


def test_workers_no_node_can_host_are_an_error_not_a_hang(ray_cluster: Any) -> None:
    from agentgym.distributed import collect_ray

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"did not start within 2 s: no node can host an actor with resources="):
        collect_ray(
            TOOLUSE,
            "oracle",
            num_tasks=2,
            num_workers=1,
            progress=False,
            actor_options={"resources": {"agentgym-nowhere": 1}},
            start_timeout=2,
        )
    assert time.monotonic() - t0 < 30


def test_a_replacement_worker_that_never_starts_is_a_lost_worker(ray_cluster: Any, monkeypatch: Any) -> None:
    """The node that could host a replacement is gone: the episode ends as worker_lost instead of waiting forever."""
    from agentgym import distributed

    real_replace = distributed._Workers.replace

    def replace_where_nothing_fits(self: Any, dead: Any) -> Any:
        self.cls = distributed._remote(distributed._RolloutWorker).options(
            **{**self.options, "resources": {"agentgym-nowhere": 1}}
        )
        return real_replace(self, dead)

    monkeypatch.setattr(distributed._Workers, "replace", replace_where_nothing_fits)
    ids = agentgym.make(TOOLUSE).tasks.ids[:3]
    got = distributed.collect_ray(
        TOOLUSE, KillsItsWorker(ids[0]), tasks=ids, num_workers=2, progress=False, max_attempts=2, start_timeout=3
    )
    assert [t.task_id for t in got] == ids
    assert got[0].termination_reason == "worker_lost" and got[0].infra_failure
    assert "did not start within 3 s" in got[0].metadata["error"]
    assert [t.termination_reason for t in got[1:]] == ["submitted", "submitted"]
