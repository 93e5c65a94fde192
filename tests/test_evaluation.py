"""Evaluation a user can trust.

pass@k only where there are k valid samples (dropped tasks reported), an error for k > samples,
JSON metrics, resume after a kill or Ctrl-C that ends with the same report as an uninterrupted
run, and ``agentgym eval compare``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from math import comb
from pathlib import Path

import pytest

from agentgym import Trajectory, load_jsonl
from agentgym.compare import compare_runs, sign_flip_test
from agentgym.evaluation import EpisodeLog, EvalReport, evaluate, pass_at_k

TOOLUSE = "agentgym/ToolUse-v0"
ROOT = Path(__file__).resolve().parents[1]


def _traj(task: str, success: bool, infra: bool = False) -> Trajectory:
    return Trajectory(
        "env",
        task,
        outcome_reward=None if infra else float(success),
        infra_failure=infra,
        termination_reason="infra_error" if infra else "submitted",
    )


def test_pass_at_k_only_over_tasks_with_k_valid_samples_and_dropped_tasks_reported() -> None:
    trajs = [
        _traj("a", True),
        _traj("a", False),
        _traj("a", False),  # 3 valid, 1 correct
        _traj("b", True),
        _traj("b", True, infra=True),
        _traj("b", True, infra=True),  # 1 valid: dropped for k=2
        _traj("c", False),
        _traj("c", True),  # 2 valid, 1 correct
    ]
    report = EvalReport("env", "p", trajs, ks=(1, 2), tasks=["a", "b", "c", "d"])  # d: never ran
    p2 = report.pass_at(2)
    assert p2["value"] == pytest.approx((pass_at_k(3, 1, 2) + pass_at_k(2, 1, 2)) / 2)
    assert (p2["tasks"], p2["dropped"]) == (2, 2)
    assert p2["dropped_tasks"] == [{"task_id": "b", "valid_samples": 1}, {"task_id": "d", "valid_samples": 0}]
    p1 = report.pass_at(1)
    assert p1["value"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3) and p1["dropped_tasks"] == [
        {"task_id": "d", "valid_samples": 0}
    ]
    m = report.metrics()
    assert m["pass@2"] == p2["value"] and m["infra_failures"] == 2 and m["valid_episodes"] == 6
    assert m["per_task"]["b"] == {"episodes": 3, "valid": 1, "successes": 1, "mean_reward": 0.0, "mean_outcome": 1.0}
    md = report.to_markdown()
    assert (
        "pass@2 is over 2 tasks; 2 dropped with fewer than 2 valid samples (task (valid samples)): b (1), d (0)" in md
    )
    # No task with k valid samples: the value is unknown, not 0.
    assert EvalReport("env", "p", [_traj("a", True)], ks=(2,)).pass_at(2)["value"] is None


def test_k_larger_than_samples_is_an_error_not_a_silent_pass_at_1(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"pass@4 needs at least 4 samples per task but --samples is 1; run with --samples 4"
    ):
        evaluate(TOOLUSE, "oracle", num_tasks=2, samples=1, ks=(1, 4), progress=False)
    out = _cli("eval", "ToolUse-v0", "--samples", "1", "-k", "4", "--tasks", "2", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "pass@4 needs at least 4 samples" in out.stderr


def test_metrics_json_beside_markdown_and_png(tmp_path: Path) -> None:
    report = evaluate(TOOLUSE, "random", num_tasks=4, samples=3, ks=(1, 3), seed=2, progress=False, out_dir=tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m == json.loads(json.dumps(report.metrics()))
    assert m["episodes"] == 12 and len(m["per_task"]) == 4 and set(m["pass_at"]) == {"1", "3"}
    assert sum(t["episodes"] for t in m["per_task"].values()) == 12
    assert m["pass@1"] == pytest.approx(sum(t["successes"] / t["valid"] for t in m["per_task"].values()) / 4)
    assert (tmp_path / "rewards.png").read_bytes()[:4] == b"\x89PNG" and "| pass@3 |" in (
        tmp_path / "summary.md"
    ).read_text()
    assert [t.metadata["eval_job"][0] for t in load_jsonl(tmp_path / "trajectories.jsonl")] == list(range(12))


# ----- resume ------------------------------------------------------------------------------

# A CLI run whose random policy is slowed down, so that an interrupt lands mid-way. Each act
# is logged, to count which episodes a resumed run plays again.
_SLOW_CLI = """
import os, sys, time
from agentgym.policies import RandomPolicy, register_policy

class Slow(RandomPolicy):
    def act(self, ctx):
        with open(os.environ["ACT_LOG"], "a") as f:
            f.write(f"{ctx.task.id} {ctx.turn}\\n")
        time.sleep(float(os.environ.get("ACT_SLEEP", "0")))
        return super().act(ctx)

register_policy("slowrandom", lambda *a, **k: Slow())
from agentgym.cli import main
sys.exit(main(sys.argv[1:]))
"""
_EVAL = [
    "eval",
    "ToolUse-v0",
    "--policy",
    "slowrandom",
    "--samples",
    "2",
    "-k",
    "1",
    "-k",
    "2",
    "--tasks",
    "8",
    "--seed",
    "3",
    "--workers",
    "2",
]


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentgym.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _slow(tmp: Path, out: str, *extra: str, sleep: float = 0.0) -> subprocess.Popen:
    script = tmp / "slow_cli.py"
    script.write_text(_SLOW_CLI)
    env = {**os.environ, "ACT_LOG": str(tmp / f"{out}.acts"), "ACT_SLEEP": str(sleep)}
    return subprocess.Popen(
        [sys.executable, str(script), *_EVAL, "--out", str(tmp / out), *extra],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.communicate()}"
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {n} episodes")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("full")
    proc = _slow(tmp, "full")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return tmp / "full"


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resume_after_kill_or_interrupt_gives_the_uninterrupted_report(
    tmp_path: Path, uninterrupted: Path, how: signal.Signals
) -> None:
    proc = _slow(tmp_path, "run", sleep=0.2)  # slow enough that the signal lands mid-run on a loaded machine
    _wait_for_lines(tmp_path / "run" / "trajectories.jsonl", 4, proc)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=120)
    if how == signal.SIGINT:
        assert proc.returncode == 130 and "continue with the same command and --resume" in err
    assert not (tmp_path / "run" / "metrics.json").exists()
    kept = EpisodeLog(tmp_path / "run" / "trajectories.jsonl").read()
    assert 4 <= len(kept) < 16
    kept_jobs = {t.metadata["eval_job"][0] for t in kept}
    acts_before = (tmp_path / "run.acts").read_text().count("\n")

    proc = _slow(tmp_path, "run", "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    # Only the unfinished episodes ran again: each played turn is logged, and the resumed
    # run played exactly the turns of the episodes that were not on file.
    replayed = (tmp_path / "run.acts").read_text().count("\n") - acts_before
    full = load_jsonl(uninterrupted / "trajectories.jsonl")
    assert replayed == sum(t.num_turns for t in full if t.metadata["eval_job"][0] not in kept_jobs)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == json.loads(
        (uninterrupted / "metrics.json").read_text()
    )
    assert (tmp_path / "run" / "trajectories.jsonl").read_text() == (uninterrupted / "trajectories.jsonl").read_text()
    assert (tmp_path / "run" / "summary.md").read_text() == (uninterrupted / "summary.md").read_text()


def test_resume_reruns_infrastructure_failures_and_ignores_a_cut_line(tmp_path: Path) -> None:
    calls = {"n": 0}

    class Flaky:
        """A model server that is down for the first episodes it sees."""

        name = "flaky"

        def act(self, ctx):
            calls["n"] += 1
            if ctx.task.id in down:
                raise ConnectionError("model server down")
            return ctx.env.oracle_turns(ctx.task)[ctx.turn]

    clean = evaluate(TOOLUSE, "oracle", num_tasks=5, samples=2, ks=(1, 2), seed=1, progress=False)
    ids = list(dict.fromkeys(t.task_id for t in clean.trajectories))
    down = set(ids[:2])
    first = evaluate(TOOLUSE, Flaky(), num_tasks=5, samples=2, ks=(1, 2), seed=1, progress=False, out_dir=tmp_path)
    assert first.metrics()["infra_failures"] == 4
    assert first.pass_at(1)["dropped_tasks"] == [{"task_id": t, "valid_samples": 0} for t in ids[:2]]
    with open(tmp_path / "trajectories.jsonl", "a") as f:
        f.write('{"env_id": "cut by a crash')  # no newline: the writer died mid-line
    down.clear()
    calls["n"] = 0
    resumed = evaluate(
        TOOLUSE, Flaky(), num_tasks=5, samples=2, ks=(1, 2), seed=1, progress=False, out_dir=tmp_path, resume=True
    )
    assert calls["n"] == sum(
        t.num_turns for t in clean.trajectories if t.task_id in ids[:2]
    )  # only the failed episodes
    m = resumed.metrics()
    assert m["infra_failures"] == 0 and m["pass@2"] == 1.0 and m["pass_at"]["2"]["dropped"] == 0
    assert len(load_jsonl(tmp_path / "trajectories.jsonl")) == 10


def test_resume_refuses_another_evaluation_and_plain_rerun_refuses_to_overwrite(tmp_path: Path) -> None:
    evaluate(TOOLUSE, "oracle", num_tasks=2, samples=1, progress=False, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"holds another evaluation .*policy: 'oracle' on file, 'random' now"):
        evaluate(TOOLUSE, "random", num_tasks=2, samples=1, progress=False, out_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="already holds an evaluation; pass --resume"):
        evaluate(TOOLUSE, "oracle", num_tasks=2, samples=1, progress=False, out_dir=tmp_path)
    again = evaluate(TOOLUSE, "random", num_tasks=2, samples=1, progress=False, out_dir=tmp_path, overwrite=True)
    assert json.loads((tmp_path / "metrics.json").read_text())["policy"] == again.policy == "random"


# ----- compare -----------------------------------------------------------------------------


def _run_dir(
    path: Path, per_task: dict[str, tuple[int, int]], policy: str = "p", env: str = "agentgym/ToolUse-v0"
) -> Path:
    trajs = [_traj(task, i < c) for task, (c, n) in per_task.items() for i in range(n)]
    EvalReport(env, policy, trajs, tasks=list(per_task)).save(path)
    return path


def test_sign_flip_test_is_mcnemar_exact_on_binary_outcomes() -> None:
    # 9 tasks B solves and A does not, 2 the other way, 5 ties: McNemar exact, by hand.
    p, how = sign_flip_test([Fraction(1)] * 9 + [Fraction(-1)] * 2 + [Fraction(0)] * 5)
    assert how == "exact" and p == pytest.approx(2 * sum(comb(11, i) for i in range(3)) / 2**11)
    # Fractional differences: enumerate all 2^4 sign vectors by hand.
    d = [Fraction(1, 2), Fraction(-1, 3), Fraction(2, 3), Fraction(1, 3)]
    obs = abs(sum(d))
    count = sum(abs(sum(x if (m >> i) & 1 else -x for i, x in enumerate(d))) >= obs for m in range(16))
    assert sign_flip_test(d)[0] == pytest.approx(count / 16)


def test_compare_side_by_side_with_significance(tmp_path: Path) -> None:
    tasks_a = {f"t{i}": (0, 1) for i in range(14)} | {"only-a": (1, 1)}
    tasks_b = {f"t{i}": (1 if i < 12 else 0, 1) for i in range(14)} | {"only-b": (0, 1)}
    a, b = _run_dir(tmp_path / "a", tasks_a, "base"), _run_dir(tmp_path / "b", tasks_b, "tuned")
    c = compare_runs(a, b)
    assert c["paired_tasks"] == 14 and (c["b_better_tasks"], c["b_worse_tasks"]) == (12, 0)
    assert c["test"]["method"].startswith("McNemar exact") and c["test"]["p_value"] == pytest.approx(2 / 2**12)
    assert (
        c["verdict"].startswith("B is better than A") and c["only_in_a"] == ["only-a"] and c["only_in_b"] == ["only-b"]
    )
    lo, hi = c["test"]["bootstrap_ci95"]
    assert 0 < lo <= 12 / 14 <= hi <= 1

    out = _cli("eval", "compare", str(a), str(b), "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "| t0 | 0 / 1 | 1 / 1 | +1.000 ▲ |" in out.stdout and "McNemar exact" in out.stdout
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["test"]["p_value"] == c["test"]["p_value"]
    assert (tmp_path / "cmp" / "compare.md").read_text() in out.stdout

    # Few differing tasks: not significant, and the note says why.
    small = compare_runs(
        _run_dir(tmp_path / "c", {"x": (0, 2), "y": (1, 2)}), _run_dir(tmp_path / "d", {"x": (2, 2), "y": (1, 2)})
    )
    assert "no significant difference" in small["verdict"] and "smallest possible p = 1" in small["verdict"]
    assert small["test"]["method"].startswith("paired sign-flip")

    missing = _cli("eval", "compare", str(a), str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "no metrics.json" in missing.stderr and missing.stderr.count("\n") == 1


def test_compare_real_runs_from_the_cli(tmp_path: Path) -> None:
    for name, policy in (("rand", "random"), ("orac", "oracle")):
        out = _cli("eval", "ToolUse-v0", "--policy", policy, "--tasks", "12", "--out", name, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    out = _cli("eval", "compare", "rand", "orac", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    c = json.loads((tmp_path / "eval-compare" / "compare.json").read_text())
    assert c["paired_tasks"] == 12 and c["success_rate_b"] == 1.0 and c["verdict"].startswith("B is better")


def test_an_episode_whose_env_raises_is_an_infra_failure_not_a_crashed_evaluation() -> None:
    from agentgym.envs.tooluse import ToolUseEnv

    class ResetFails(ToolUseEnv):
        def setup(self, task):
            if task.id == bad:
                raise RuntimeError("could not prepare the task")
            super().setup(task)

    ids = ResetFails(split="test").tasks.ids[:3]
    bad = ids[1]
    report = evaluate(lambda: ResetFails(split="test"), "oracle", tasks=ids, samples=2, ks=(1, 2), progress=False)
    m = report.metrics()
    assert m["infra_failures"] == 2 and m["termination_reasons"] == {"env_error": 2, "submitted": 4}
    assert m["pass@1"] == 1.0 and m["pass_at"]["1"]["dropped_tasks"] == [{"task_id": bad, "valid_samples": 0}]
    assert all("could not prepare the task" in t.metadata["error"] for t in report.trajectories if t.infra_failure)


# ----- environments made by an `agentgym serve` server ---------------------------------------


@pytest.fixture
def env_server() -> Iterator[str]:
    """An ``agentgym serve`` server on loopback, in a thread; its URL."""
    import threading

    from agentgym.server import EnvServer

    srv = EnvServer(("127.0.0.1", 0))
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_evaluating_through_a_server_gives_the_local_report(env_server: str) -> None:
    from agentgym.parsing import format_tool_call
    from agentgym.policies import ScriptedPolicy

    # The same turns on every task: a calculator call, then a (mostly wrong) answer.
    policy = ScriptedPolicy(
        [format_tool_call("calculator", {"expression": "6*7"}), format_tool_call("submit", {"answer": "42"})]
    )
    run = {"num_tasks": 5, "samples": 2, "ks": (1, 2), "seed": 7, "progress": False}
    local = evaluate(TOOLUSE, policy, **run)
    remote = evaluate(TOOLUSE, policy, server=env_server, **run)
    assert remote.metrics() == local.metrics() and remote.to_markdown() == local.to_markdown()
    assert [t.to_dict() for t in remote.trajectories] == [t.to_dict() for t in local.trajectories]
    assert remote.metrics()["valid_episodes"] == 10 and [t.num_turns for t in remote.trajectories] == [2] * 10


def test_eval_cli_with_server_runs_every_episode_on_the_server(env_server: str, tmp_path: Path) -> None:
    out = _cli(
        "eval", TOOLUSE, "--server", env_server, "--policy", "random", "--tasks", "3", "--out", "r", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (m["episodes"], m["infra_failures"], m["env"]) == (3, 0, TOOLUSE)
    # The oracle needs the task and its reference solution, which stay on the server: a clear
    # error per episode, counted as infrastructure failures, not a crash.
    out = _cli("eval", TOOLUSE, "--server", env_server, "--tasks", "2", "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    [t, _] = load_jsonl(tmp_path / "o" / "trajectories.jsonl")
    assert (t.termination_reason, t.infra_failure) == ("policy_error", True)
    assert "env.oracle_turns(task), which RemoteEnv does not expose" in t.metadata["error"]
    bad = _cli("eval", TOOLUSE, "--token", "x", cwd=tmp_path)
    assert bad.returncode == 2 and "--token is the bearer token of --server; add --server URL" in bad.stderr
