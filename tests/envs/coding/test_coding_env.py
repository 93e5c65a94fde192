"""CodeRepair-v0 and HumanEval-v0: tools, rewards, lifecycle (local sandbox; the red team covers Docker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from coding_helpers import CORE, FIXED, calc_tasks, call, require_backend

import agentgym
from agentgym.envs.coding import CodeRepairEnv, HumanEvalEnv, load_humaneval
from agentgym.envs.coding.humaneval import completion_to_module, extract_code
from agentgym.policies import ScriptedPolicy, make_policy
from agentgym.rollout import run_episode
from agentgym.sandboxes import LocalSandbox


@pytest.fixture
def env() -> Iterator[CodeRepairEnv]:
    require_backend("local")
    e = CodeRepairEnv(tasks=calc_tasks(), sandbox="local", grade_timeout=30)
    e.reset(options={"task_id": "calc-add"})
    yield e
    e.close()


def tool_results(traj) -> list[str]:
    return [m["content"] for m in traj.messages if m["role"] == "tool"]


def test_read_file_numbers_lines_and_ranges(env: CodeRepairEnv) -> None:
    assert env.read_file("calc/core.py", 2, 2) == "2|     return a - b\n[calc/core.py: lines 2-2 of 6]"
    assert env.read_file("calc/core.py").splitlines()[0] == "1| def add(a, b):"
    with pytest.raises(ValueError, match=r"past the end of calc/core\.py"):
        env.read_file("calc/core.py", 99)
    with pytest.raises(FileNotFoundError, match=r"nope\.py does not exist; use list_files"):
        env.read_file("nope.py")


def test_edit_file_requires_a_unique_exact_match(env: CodeRepairEnv) -> None:
    with pytest.raises(ValueError, match=r"old text not found in calc/core\.py"):
        env.edit_file("calc/core.py", "return a-b", "x")
    with pytest.raises(ValueError, match=r"occurs 2 times in calc/core.py \(lines 1, 5\)"):
        env.edit_file("calc/core.py", "(a, b)", "(x, y)")
    assert env.edit_file("calc/core.py", "a - b", "a + b") == "Edited calc/core.py at line 2."
    assert env.workspace.read_file("calc/core.py").decode() == FIXED


def test_syntax_errors_are_reported_at_once(env: CodeRepairEnv) -> None:
    out = env.edit_file("calc/core.py", "return a - b", "return a +")
    assert "Warning: calc/core.py no longer parses" in out and "calc/core.py:2:" in out
    env.reject_syntax_errors = True
    out = env.write_file("calc/core.py", "def broken(:\n")
    assert out.startswith("Error: not written")
    assert "return a +" in env.workspace.read_file("calc/core.py").decode()


def test_writing_a_test_file_says_it_is_not_graded(env: CodeRepairEnv) -> None:
    assert "test files are restored" in env.write_file("tests/test_core.py", "def test_mul():\n    pass\n")


def test_search_list_and_symbols(env: CodeRepairEnv) -> None:
    assert env.search("a - b") == "calc/core.py:2:     return a - b"
    assert "calc/__init__.py:1:" in env.search(r"import \w+", regex=True)
    with pytest.raises(ValueError, match="invalid regular expression"):
        env.search("(", regex=True)
    assert env.list_files() == "README.md\ncalc/__init__.py\ncalc/core.py\ntests/test_core.py"
    assert env.list_symbols("calc/core.py") == "def add(a, b)  [lines 1-2]\ndef mul(a, b)  [lines 5-6]"
    assert env.show_symbol("calc/core.py", "mul") == "5| def mul(a, b):\n6|     return a * b"
    with pytest.raises(ValueError, match=r"no symbol 'nope' in calc/core\.py; its symbols are: add, mul"):
        env.show_symbol("calc/core.py", "nope")


def test_nested_symbols_by_qualified_name(env: CodeRepairEnv) -> None:
    env.write_file("calc/shapes.py", "class Box:\n    def area(self):\n        return 1\n\nSIZE = 3\n")
    assert env.show_symbol("calc/shapes.py", "Box.area") == "2|     def area(self):\n3|         return 1"
    assert "  def area(self)  [lines 2-3]" in env.list_symbols("calc/shapes.py")
    assert "SIZE = ...  [lines 5-5]" in env.list_symbols("calc/shapes.py")


def test_run_tests_output_is_deterministic(env: CodeRepairEnv) -> None:
    out = env.run_tests()
    assert "1 passed in <time>" in out
    env.write_file("tests/test_core.py", "def test_fail():\n    assert object() is None\n")
    out = env.run_tests("tests/test_core.py::test_fail")
    assert "0x<addr>" in out and "1 failed" in out


def test_oracle_scores_one_and_noop_zero(env: CodeRepairEnv) -> None:
    assert run_episode(env, make_policy("oracle"), task_id="calc-add").outcome_reward == 1.0
    traj = run_episode(env, make_policy("noop"), task_id="calc-add")
    assert traj.outcome_reward == 0.0
    assert traj.steps[-1].info["reward_components"]["f2p_fraction"] == 0.0
    assert traj.steps[-1].info["reward_components"]["p2p_fraction"] == 1.0


def test_fraction_reward_mode() -> None:
    require_backend("local")
    env = CodeRepairEnv(tasks=calc_tasks(), reward_mode="fraction")
    try:
        half = CORE.replace("return a - b", "return a + b if a > 0 else 0")
        traj = run_episode(env, ScriptedPolicy([call("write_file", path="calc/core.py", content=half), call("submit")]))
        comps = traj.steps[-1].info["reward_components"]
        assert traj.outcome_reward == 0.5 and comps["resolved"] == 0.0 and comps["graded"] == 0.5
    finally:
        env.close()


def test_process_rewards() -> None:
    require_backend("local")
    env = CodeRepairEnv(
        tasks=calc_tasks(), process_rewards={"test_progress": 1.0, "parseable_edits": 0.1, "step_cost": 0.01}
    )
    try:
        turns = [
            call("run_tests", target="tests/test_core.py"),
            call(
                "write_file",
                path="tests/test_core.py",
                content="def test_a():\n    assert 0\n\n\ndef test_b():\n    pass\n",
            ),
            call("run_tests"),
            call("edit_file", path="calc/core.py", old="return a - b", new="return (a"),
            call("submit"),
        ]
        traj = run_episode(env, ScriptedPolicy(turns))
        comps = [s.reward_components for s in traj.steps]
        assert [c["test_progress"] for c in comps] == [0.0, 0.0, -0.5, 0.0, 0.0]
        assert [c["parseable_edits"] for c in comps] == [0.0, 1.0, 0.0, -1.0, 0.0]
        assert traj.steps[2].reward == pytest.approx(-0.5 - 0.01)
    finally:
        env.close()


def test_sandbox_failure_is_an_infrastructure_failure(env: CodeRepairEnv) -> None:
    env.workspace.close()
    _obs, _reward, _terminated, truncated, info = env.step(call("list_files"))
    assert truncated and info["termination_reason"] == "infra_error" and info["infra_failure"]
    assert "SandboxError" in info["infra_error"]


def test_custom_sandbox_factory_and_close_is_idempotent() -> None:
    require_backend("local")
    made: list[LocalSandbox] = []

    def factory(files_dir):
        made.append(LocalSandbox(files=files_dir))
        return made[-1]

    env = CodeRepairEnv(tasks=calc_tasks(), sandbox=factory)
    assert run_episode(env, make_policy("oracle")).outcome_reward == 1.0
    env.close()
    env.close()
    assert len(made) == 2  # the agent's workspace and a fresh one for grading
    with pytest.raises(Exception, match="closed"):
        made[0].exec(["true"])


def test_tasks_in_the_shared_format_from_jsonl(tmp_path) -> None:
    require_backend("local")
    path = tmp_path / "calc.jsonl"
    calc_tasks().to_jsonl(path)
    env = agentgym.make("agentgym/CodeRepair-v0", source=str(path), split="all")
    try:
        assert env.tasks.ids == ["calc-add"]
    finally:
        env.close()


def test_humaneval_tasks() -> None:
    tasks = load_humaneval()
    assert len(tasks) == 164
    task = tasks["HumanEval/0"]
    assert task.verifier["fail_to_pass"] == ["tests/test_check.py::test_check"]
    assert "tests/test_check.py" not in task.setup["files"]
    assert task.metadata["source"] == "humaneval"


def test_completion_formats() -> None:
    prompt = 'from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    """Sum."""\n'
    body = "    return sum(xs)\n"
    assert completion_to_module(prompt, "f", body) == prompt + body
    fenced = "Here:\n```python\ndef f(xs):\n    return sum(xs)\n```\nDone."
    assert completion_to_module(prompt, "f", fenced) == "from typing import List\n\ndef f(xs):\n    return sum(xs)\n"
    assert extract_code("```py\na = 1\n```\ntext\n```\nb = 2\n```") == "a = 1\nb = 2\n"


def test_humaneval_single_turn() -> None:
    require_backend("local")
    env = HumanEvalEnv(split="all")
    try:
        obs, _info = env.reset(options={"task_id": "HumanEval/2"})
        assert "def truncate_number" in obs[-1]["content"]
        assert run_episode(env, make_policy("oracle"), task_id="HumanEval/2").outcome_reward == 1.0
        assert run_episode(env, make_policy("noop"), task_id="HumanEval/2").outcome_reward == 0.0
        traj = run_episode(env, ScriptedPolicy(["```python\n    return number % 1.0\n```"]), task_id="HumanEval/2")
        assert traj.outcome_reward == 1.0 and traj.termination_reason == "final_answer" and len(traj.steps) == 1
        traj = run_episode(env, ScriptedPolicy(["<<< not python"]), task_id="HumanEval/2")
        assert traj.outcome_reward == 0.0 and env.last_grade.log == "the completion does not parse"
    finally:
        env.close()


def test_default_source_is_curated_when_available() -> None:
    from agentgym.envs.coding.env import load_source

    try:
        from agentgym.envs.coding.curated import load_curated
    except ImportError:
        assert load_source("curated").name == "humaneval"
    else:
        assert load_source("curated").ids == load_curated().ids


def test_the_repositorys_own_conftest_and_src_layout_still_work() -> None:
    require_backend("local")
    from agentgym.envs.coding import make_task
    from agentgym.tasks import TaskSet

    task = make_task(
        "src-layout",
        "fix double",
        files={
            "src/pkg/__init__.py": "def double(x):\n    return x\n",
            "tests/conftest.py": "import pytest\n\n\n@pytest.fixture\ndef numbers():\n    return [1, 2, 3]\n",
            "tests/test_pkg.py": "from pkg import double\n\n\ndef test_zero():\n    assert double(0) == 0\n",
        },
        fail_to_pass=["tests/test_hidden.py::test_double"],
        pass_to_pass=["tests/test_pkg.py::test_zero"],
        hidden_tests={
            "tests/test_hidden.py": "from pkg import double\n\n\ndef test_double(numbers):\n"
            "    assert [double(n) for n in numbers] == [2, 4, 6]\n"
        },
        solution={"src/pkg/__init__.py": "def double(x):\n    return 2 * x\n"},
        source="test",
    )
    env = CodeRepairEnv(tasks=TaskSet([task]))
    try:
        assert run_episode(env, make_policy("oracle"), task_id="src-layout").outcome_reward == 1.0
        assert run_episode(env, make_policy("noop"), task_id="src-layout").outcome_reward == 0.0
        assert env.last_grade.pass_to_pass == {"tests/test_pkg.py::test_zero": "passed"}
    finally:
        env.close()


def test_garbage_arguments_are_model_errors_not_infrastructure_failures(env: CodeRepairEnv) -> None:
    turns = [
        '<tool_call>{"name": "write_file", "arguments": {"path": "\\ud800.py", "content": "x"}}</tool_call>',
        call("write_file", path="x" * 300, content="x"),
        call("read_file", path="calc"),
        '<tool_call>{"name": "search", "arguments": {"pattern": "\\udc80"}}</tool_call>',
        call("edit_file", path="calc/core.py", old="", new="x"),
    ]
    for i, turn in enumerate(turns):
        obs, _reward, _terminated, truncated, info = env.step(turn)
        assert not truncated and not info.get("infra_failure"), obs
        assert obs[0]["content"].startswith("Error") or i == 3, obs


class _DyingWorkspace:
    """The real workspace sandbox, except that listing it fails the way a killed helper does."""

    def __init__(self, real) -> None:
        self.real = real
        self.killed = 0

    def kill_processes(self) -> int:
        self.killed += 1
        return self.real.kill_processes()

    def exec(self, *args, **kwargs):
        from agentgym.sandboxes import SandboxError

        raise SandboxError("the helper died")

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def test_workspace_death_after_agent_code_scores_zero_not_infra(env: CodeRepairEnv) -> None:
    from agentgym.sandboxes import SandboxError

    dying = _DyingWorkspace(env.workspace)
    grade = env.grader.grade_workspace(env.task, dying, agent_ran=True)
    assert dying.killed == 1 and not grade.trusted and grade.graded == 0.0
    assert any("workspace sandbox failed after the agent's code ran" in a for a in grade.anomalies)
    with pytest.raises(SandboxError):  # nothing the agent ran is in there: a real infrastructure failure
        env.grader.grade_workspace(env.task, dying, agent_ran=False)


def test_tools_end_the_episode_when_the_sandbox_dies_after_run_tests(env: CodeRepairEnv) -> None:
    env.run_tests()
    env._workspace = _DyingWorkspace(env.workspace)
    with pytest.raises(RuntimeError, match="counts as unresolved"):
        env.list_files()
    assert env.sandbox_killed and env._end_reason == "sandbox_killed"
    env._workspace = env._workspace.real
