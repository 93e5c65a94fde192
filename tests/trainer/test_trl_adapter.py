"""TRL's GRPOTrainer on ToolUse through ``environment_factory``: tool methods, rewards, and real training steps."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import agentgym
from agentgym.trainer import trl_adapter
from agentgym.trajectory import Trajectory

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
ENV = "agentgym/ToolUse-v0"
# trl 1.16's configs set the alias transformers 5.24 deprecates (not our call): TRL's warning, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore:`[a-z_]*gradient_checkpointing[a-z_]*` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def env_cls() -> type[trl_adapter.AgentGymEnvironment]:
    return trl_adapter.environment_class(ENV)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return trl_adapter.prompt_rows(ENV, num_tasks=4)


@pytest.fixture(scope="module")
def oracle(rows: list[dict[str, Any]]) -> dict[str, Trajectory]:
    trajs = agentgym.collect(ENV, "oracle", tasks=[r["task_id"] for r in rows], progress=False)
    return {t.task_id: t for t in trajs}


def _calls(t: Trajectory) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for m in t.messages
        for c in m.get("tool_calls") or []
    ]


def test_tool_methods_render_the_env_schemas(env_cls: type[trl_adapter.AgentGymEnvironment]) -> None:
    from transformers.utils import get_json_schema

    env = agentgym.make(ENV)
    try:
        schemas = {s["function"]["name"]: s["function"] for s in env.tool_schemas()}
    finally:
        env.close()
    assert set(schemas) == {"calculator", "lookup", "convert", "submit"}
    for name, schema in schemas.items():
        got = get_json_schema(getattr(env_cls, name))["function"]
        assert got["name"] == name and got["description"] == schema["description"]
        want = schema["parameters"]
        assert got["parameters"]["required"] == want["required"]
        assert {k: (v["type"], v["description"]) for k, v in got["parameters"]["properties"].items()} == {
            k: (v["type"], v["description"]) for k, v in want["properties"].items()
        }
    with pytest.raises(ValueError, match="not a Python identifier"):
        trl_adapter.tool_method({"function": {"name": "ok", "parameters": {"properties": {"a-b": {"type": "string"}}}}})
    with pytest.raises(ValueError, match="rename the tool"):
        trl_adapter.tool_method({"function": {"name": "reset", "parameters": {}}})


def test_oracle_calls_earn_the_episode_reward(
    env_cls: type[trl_adapter.AgentGymEnvironment], rows: list[dict[str, Any]], oracle: dict[str, Trajectory]
) -> None:
    env = env_cls()
    for row in rows:
        assert env.reset(**row) is None  # the row's prompt is the opening: nothing to append
        assert env.agentgym_env.task.id == row["task_id"]
        t = oracle[row["task_id"]]
        results = [getattr(env, name)(**args) for name, args in _calls(t)]
        assert results == [m["content"] for m in t.messages if m["role"] == "tool"]
        assert env.get_reward() == t.reward == 1.0
        assert env.submit(answer="0").startswith("Error: the episode is over (submitted)")
        assert env.get_reward() == 1.0
    # a wrong answer, and an episode the model left without submitting (graded as a truncation)
    env.reset(**rows[0])
    assert env.submit(answer="-1") == "Answer submitted."
    assert env.get_reward() == 0.0
    env.reset(**rows[0])
    assert env.lookup(key="nope").startswith("Error")
    assert env.get_reward() == 0.0
    # a bad argument is the env's usual tool error, not an exception
    env.reset(**rows[0])
    assert env.calculator(expression=None).startswith("Error")
    with pytest.raises(ValueError, match="prompt_dataset"):
        env.reset(task_id=rows[1]["task_id"], prompt=rows[0]["prompt"])


def test_placeholder_rows_draw_seeded_tasks(env_cls: type[trl_adapter.AgentGymEnvironment]) -> None:
    placeholder = [{"role": "user", "content": ""}]
    first, second = env_cls(), env_cls()
    text = first.reset(prompt=placeholder)
    assert isinstance(text, str) and first.agentgym_env.task.prompt in text
    assert "<tools>" not in text  # the chat template describes the tools
    second.reset(prompt=placeholder)
    drawn = [first.agentgym_env.task.id]
    for _ in range(5):
        first.reset(prompt=placeholder)
        drawn.append(first.agentgym_env.task.id)
    assert len(set(drawn)) > 1
    assert second._index == first._index + 1  # instances are seeded apart: parallel rollouts differ


@pytest.fixture
def grpo(tiny_dir: Path, tmp_path: Path, env_cls: type[trl_adapter.AgentGymEnvironment]) -> Any:
    """``grpo(**config)``: a GRPOTrainer of the tiny model (Qwen2.5 tool template), 2 ToolUse tasks x 2 rollouts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen2_5_chat_template

    def make(**config: Any) -> Any:
        tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
        tokenizer.chat_template = qwen2_5_chat_template
        args = GRPOConfig(
            output_dir=str(tmp_path / "grpo"),
            max_steps=1,
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=config.pop("max_completion_length", 24),
            report_to="none",
            use_cpu=True,
            save_strategy="no",
            logging_steps=1,
            temperature=1.0,
            **config,
        )
        return GRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_dir),
            args=args,
            processing_class=tokenizer,
            train_dataset=trl_adapter.prompt_dataset(ENV, num_tasks=2),
            environment_factory=env_cls,
        )

    return make


def _changed(model: Any, before: dict[str, Any]) -> bool:
    return any(not (p.detach() == before[n]).all() for n, p in model.named_parameters())


def test_grpo_trainer_step_on_tooluse(grpo: Any) -> None:
    trainer = grpo()
    assert trainer.reward_func_names == ["ToolUseEnvTRL"]  # get_reward is the only reward source
    trainer.train()
    assert trainer.state.global_step == 1
    log = next(h for h in trainer.state.log_history if "reward" in h)
    # the random tiny model never submits a right answer: every rollout is graded 0 by the env
    assert log["rewards/ToolUseEnvTRL/mean"] == 0.0
    tasks = {e.agentgym_env.task.id for e in trainer.environments}
    assert tasks <= {r["task_id"] for r in trl_adapter.prompt_rows(ENV, num_tasks=2)}


def test_grpo_trainer_tool_loop_scores_scripted_turns(grpo: Any, oracle: dict[str, Trajectory]) -> None:
    """TRL's own tool loop with scripted turns in place of sampling: right and wrong episodes, rewards 1 and 0.

    Per task, the first generation plays the oracle's calls and the second submits a wrong answer.
    Every turn is text the model could have sampled, tokenized; TRL parses the calls, runs them
    through the adapter, renders the results and scores with ``get_reward``.
    """
    trainer = grpo(max_completion_length=400)
    tok = trainer.processing_class
    prompts = {t.messages[1]["content"]: t for t in oracle.values()}
    first_turns: Counter[str] = Counter()

    def call_text(name: str, args: dict[str, Any]) -> str:
        return f'<tool_call>\n{{"name": "{name}", "arguments": {json.dumps(args)}}}\n</tool_call><|im_end|>'

    def turn(context: str) -> str:
        task = next(t for p, t in prompts.items() if p in context)
        done = context.count("<tool_response>")
        if done == 0:
            first_turns[task.task_id] += 1
            if first_turns[task.task_id] % 2 == 0:
                return call_text("submit", {"answer": "-1"})
        if re.search(r"<tool_response>\nAnswer submitted\.\n</tool_response>", context):
            return "Done.<|im_end|>"
        name, args = _calls(task)[done]
        return call_text(name, args)

    def scripted(prompt_ids: list[list[int]], *args: Any, **kwargs: Any) -> tuple[list[list[int]], None]:
        texts = [turn(tok.decode(ids, skip_special_tokens=False)) for ids in prompt_ids]
        return [tok.encode(t, add_special_tokens=False) for t in texts], None

    trainer._generate_single_turn = scripted
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    log = next(h for h in trainer.state.log_history if "reward" in h)
    assert log["rewards/ToolUseEnvTRL/mean"] == pytest.approx(0.5)  # 2 right, 2 wrong
    assert log["reward_std"] > 0
    calls = sum(len(_calls(oracle[t])) for t in first_turns) + len(first_turns)  # oracle calls + one wrong submit each
    assert log["tools/call_frequency"] == pytest.approx(calls / 4)
    assert log["tools/failure_frequency"] == 0.0
    rewards = sorted(e.get_reward() for e in trainer.environments)
    assert rewards == [0.0, 0.0, 1.0, 1.0]
    assert _changed(trainer.model, before)  # non-zero advantages moved the weights
