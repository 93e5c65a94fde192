"""Tasks, rubrics, trajectories, rollouts, validation and evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import agentgym
from agentgym import Rubric, Task, TaskSet, TokenSegment, Trajectory, load_jsonl, save_jsonl, stable_split
from agentgym.evaluation import evaluate, pass_at_k
from agentgym.testing import run_cli
from agentgym.validate import validate

TOOLUSE = "agentgym/ToolUse-v0"


def test_stable_split_is_deterministic_and_roughly_sized() -> None:
    ids = [f"t{i}" for i in range(2000)]
    splits = [stable_split(i, 0.2) for i in ids]
    assert splits == [stable_split(i, 0.2) for i in ids]
    assert 0.17 < splits.count("test") / len(ids) < 0.23
    # Adding tasks never moves an existing one to the other split.
    ts = TaskSet([Task(i, "p") for i in ids[:100]])
    bigger = TaskSet([Task(i, "p") for i in ids])
    assert set(ts.split("test").ids) <= set(bigger.split("test").ids)


def test_pinned_split_wins_and_bad_input_is_explained(tmp_path: Path) -> None:
    ts = TaskSet([Task("a", "p", split="test"), Task("b", "p", split="train")])
    assert ts.split("test").ids == ["a"]
    with pytest.raises(ValueError, match="duplicate task id 'a'"):
        TaskSet([Task("a", "p"), Task("a", "q")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": "p"}\n{"prompt": "no id"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a valid task"):
        TaskSet.from_jsonl(bad)


def test_taskset_jsonl_round_trip(tmp_path: Path) -> None:
    ts = agentgym.make(TOOLUSE).task_set
    ts.to_jsonl(tmp_path / "t.jsonl")
    back = TaskSet.from_jsonl(tmp_path / "t.jsonl")
    assert [t.to_dict() for t in back] == [json.loads(json.dumps(t.to_dict())) for t in ts]
    assert back.split("test").ids == ts.split("test").ids


def test_tooluse_has_hundreds_of_tasks_and_a_held_out_split() -> None:
    env = agentgym.make(TOOLUSE)
    assert len(env.task_set) >= 400
    test_ids = set(env.task_set.split("test").ids)
    assert 0 < len(test_ids) < len(env.task_set)
    assert not test_ids & set(env.tasks.ids)  # the default (train) split never sees held-out tasks
    env.close()


def test_rubric_weights_metrics_and_components() -> None:
    env = agentgym.make(TOOLUSE, process_rewards={"step_cost": 0.1, "well_formed": 0.5})
    env.reset(options={"task_id": "arithmetic-0000"})
    _, r1, _, _, info = env.step('<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>')
    assert info["reward_components"] == {"well_formed": 1.0, "tool_errors": 0.0, "step_cost": -1.0}
    assert r1 == pytest.approx(0.5 - 0.1)
    _, r2, _term, _, info = env.step("no call")
    assert info["reward_components"]["well_formed"] == 0.0 and r2 == pytest.approx(-0.1)
    with pytest.raises(ValueError, match=r"unknown reward components \['nope'\]"):
        Rubric().add("a", lambda e: 0).set_weights({"nope": 1})
    env.close()


def test_max_turns_truncates_with_reason_and_grades() -> None:
    env = agentgym.make(TOOLUSE, max_turns=2)
    env.reset(seed=1)
    env.step("thinking")
    _, reward, term, trunc, info = env.step("still thinking")
    assert (term, trunc, info["termination_reason"], info["outcome_reward"], reward) == (
        False,
        True,
        "max_turns",
        0.0,
        0.0,
    )
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step("more")
    env.close()


def test_messages_rebuild_from_what_reset_and_step_return_and_finish_grades() -> None:
    """A caller holding only reset/step results (remote, Ray) rebuilds ``env.messages`` exactly."""
    env = agentgym.make(TOOLUSE)
    obs, info = env.reset(seed=0, options={"task_id": "chain-0003", "tool_format": "json"})
    assert type(env.parser).__name__ == "JSONParser"
    rebuilt = list(obs)
    turns = env.oracle_turns(env.task)
    for action in turns[:-1]:
        obs, _r, term, trunc, info = env.step(action)
        rebuilt += [info["assistant_message"], *obs]
        assert not (term or trunc)
    assert rebuilt == env.messages and rebuilt[-1] is not env.messages[-1]
    done = env.finish("token_budget")
    assert done["termination_reason"] == "token_budget" and done["outcome_reward"] == 0.0
    assert set(done) >= {"infra_failure", "reward_components"}
    with pytest.raises(RuntimeError, match="running episode"):
        env.finish()
    env.close()


def test_infrastructure_failure_is_told_apart() -> None:
    env = agentgym.make(TOOLUSE)
    env.reset(seed=0)

    def broken(**kwargs):
        raise agentgym.InfrastructureError("sandbox died")

    env._tools["lookup"] = agentgym.Tool("lookup", "x", {"type": "object"}, broken)
    _, _reward, term, trunc, info = env.step('<tool_call>{"name": "lookup", "arguments": {"key": "a"}}</tool_call>')
    assert (term, trunc, info["termination_reason"], info["infra_failure"]) == (False, True, "infra_error", True)
    assert info["outcome_reward"] is None
    assert "sandbox died" in env.messages[-1]["content"]
    env.close()


def _trajectory_with_everything() -> Trajectory:
    [t] = agentgym.collect(TOOLUSE, "oracle", tasks=["chain-0003"], progress=False)
    t.segments = [
        TokenSegment([1, 2, 3], False, None, "prompt", 0),
        TokenSegment([7, 8], True, [-0.1234567890123, -2.5e-08], "sampled", 1),
        TokenSegment([9], False, None, "env", 1),
    ]
    t.metadata["unicode"] = "naïve — ☃ \u0000"
    return t


def test_trajectory_jsonl_round_trip_is_exact(tmp_path: Path) -> None:
    t = _trajectory_with_everything()
    save_jsonl([t, t], tmp_path / "t.jsonl")
    back = load_jsonl(tmp_path / "t.jsonl")
    assert back == [t, t]
    assert back[0].segments[1].logprobs == [-0.1234567890123, -2.5e-08]
    assert back[0].to_json() == t.to_json()
    assert back[0].reward == t.reward == 1.0 and back[0].num_turns == 4


def test_segment_rejects_mismatched_logprobs() -> None:
    with pytest.raises(ValueError, match="2 ids but 1 logprobs"):
        TokenSegment([1, 2], True, [0.0])


def test_collect_groups_order_and_threads_agree() -> None:
    single = agentgym.collect(TOOLUSE, "random", num_tasks=4, group_size=3, num_workers=1, seed=5, progress=False)
    threaded = agentgym.collect(TOOLUSE, "random", num_tasks=4, group_size=3, num_workers=3, seed=5, progress=False)
    assert len(single) == 12
    assert [t.group_id for t in single] == [t.group_id for t in threaded]
    assert [t.messages for t in single] == [t.messages for t in threaded]
    groups = {}
    for t in single:
        groups.setdefault(t.group_id, set()).add(t.task_id)
    assert len(groups) == 4 and all(len(v) == 1 for v in groups.values())
    # Episodes within a group differ (own seeds), so GRPO has something to compare.
    first = [t for t in single if t.group_id == single[0].group_id]
    assert len({t.seed for t in first}) == 3


def test_policy_crash_is_an_infra_failure_not_an_exception() -> None:
    class Crashy:
        name = "crashy"

        def act(self, ctx):
            raise ConnectionError("model server down")

    [t] = agentgym.collect(TOOLUSE, Crashy(), num_tasks=1, progress=False)
    assert (t.infra_failure, t.termination_reason) == (True, "policy_error")
    assert "model server down" in t.metadata["error"]


def test_validate_tooluse_all_tasks() -> None:
    report = validate(TOOLUSE, num_workers=2, progress=False)
    assert report.ok, report.summary()
    assert len(report.checks) == len(agentgym.make(TOOLUSE).task_set)


def test_validate_reports_broken_tasks() -> None:
    import copy

    from agentgym.envs.tooluse import ToolUseEnv, build_tasks

    tasks = copy.deepcopy(list(build_tasks(("arithmetic",), 4)))
    tasks[1].verifier = {"answer": "-1"}  # a wrong answer key: the reference solution no longer scores
    report = validate(
        lambda: ToolUseEnv(tasks=TaskSet(tasks), split="all"), task_ids=[t.id for t in tasks], progress=False
    )
    assert [c.task_id for c in report.broken] == [tasks[1].id]
    assert "oracle scored 0.0 (expected 1" in report.broken[0].problems[0]


def test_pass_at_k_matches_hand_computed() -> None:
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)


def test_evaluate_writes_markdown_and_png(tmp_path: Path) -> None:
    report = evaluate(TOOLUSE, "oracle", num_tasks=6, samples=2, ks=(1, 2), progress=False)
    assert (report.pass_at(1)["value"], report.pass_at(2)["value"], report.pass_at(2)["dropped"]) == (1.0, 1.0, 0)
    out = report.save(tmp_path)
    assert "| pass@1 | 1.000 |" in (out / "summary.md").read_text()
    assert (out / "rewards.png").read_bytes()[:4] == b"\x89PNG"
    assert len(load_jsonl(out / "trajectories.jsonl")) == 12


def test_cli_list_describe_run_validate(tmp_path: Path) -> None:
    out = run_cli("list")
    assert out.returncode == 0 and "agentgym/ToolUse-v0" in out.stdout
    out = run_cli("describe", "ToolUse-v0")
    assert out.returncode == 0, out.stderr
    assert "calculator(expression: string)" in out.stdout and "correct [outcome, verifier, weight 1]" in out.stdout
    out = run_cli("run", "ToolUse-v0", "--policy", "oracle", "--episodes", "2", "--out", str(tmp_path / "r.jsonl"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("outcome 1.0") == 2 and "[tool (submit)] Answer submitted." in out.stdout
    assert len(load_jsonl(tmp_path / "r.jsonl")) == 2
    out = run_cli("tasks", "validate", "Calculator-v0", "--limit", "20")
    assert out.returncode == 0 and "20 tasks checked, 0 broken" in out.stdout
    ids = agentgym.make("Calculator-v0").tasks.ids[:2]
    out = run_cli("tasks", "validate", "Calculator-v0", "--task", ids[0], "--task", ids[1])
    assert out.returncode == 0 and "2 tasks checked, 0 broken" in out.stdout
    out = run_cli("run", "ToolUse-v0", "--policy", "bogus")
    assert out.returncode != 0 and "unknown policy 'bogus'" in out.stderr


def test_core_imports_stay_light() -> None:
    """The core never imports torch (nor the docker SDK or playwright) just by being imported."""
    code = (
        "import sys, agentgym, agentgym.cli; agentgym.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'docker', 'playwright', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_oracle_given_as_an_iterator_is_read_after_each_step() -> None:
    """An oracle that yields turns reads the state the previous turn produced (browser pages need this)."""
    from agentgym.policies import OraclePolicy
    from agentgym.rollout import run_episode

    env = agentgym.make(TOOLUSE)
    seen: list[int] = []
    listed = env.unwrapped.oracle_turns

    def lazy(task: Task):
        for turn in listed(task):
            seen.append(len(env.unwrapped.messages))  # read when the turn is asked for, not before
            yield turn

    env.unwrapped.oracle_turns = lazy
    traj = run_episode(env, OraclePolicy(), task_id="chain-0003", seed=0)
    assert traj.success and len(seen) == traj.num_turns >= 2
    assert seen == sorted(set(seen)), "each turn must be drawn after the previous one was stepped"
    env.close()
