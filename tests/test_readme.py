"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_run() -> None:
    blocks = _blocks()
    assert len(blocks) >= 3
    namespaces = []
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
        namespaces.append(namespace)
    [env] = [ns["env"] for ns in namespaces if "Capitals" in ns]
    env.reset(options={"task_id": "Kenya"})
    _, reward, terminated, _, _ = env.step('<tool_call>{"name": "submit", "arguments": {"answer": "Nairobi"}}</tool_call>')
    assert (reward, terminated) == (1.0, True)
    env.close()
    del gym.registry["agentgym/Capitals-v0"]
