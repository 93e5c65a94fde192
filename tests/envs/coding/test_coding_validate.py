"""Task validation on every coding task: the oracle scores 1 and doing nothing scores 0, on both sandboxes."""

from __future__ import annotations

import importlib.util

import pytest
from coding_helpers import BACKENDS, require, require_backend

from agentgym.validate import validate

pytestmark = pytest.mark.slow


def _require_curated() -> None:
    require(
        importlib.util.find_spec("agentgym.envs.coding.curated") is not None,
        "the curated task set (agentgym/envs/coding/curated.py) is not in this checkout",
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("source", "minimum"), [("humaneval", 164), ("curated", 30)])
def test_code_repair_oracle_one_noop_zero(backend: str, source: str, minimum: int) -> None:
    require_backend(backend)
    if source == "curated":
        _require_curated()
    report = validate(
        "agentgym/CodeRepair-v0", env_kwargs={"source": source, "sandbox": backend}, num_workers=2, progress=False
    )
    assert len(report.checks) >= minimum
    assert report.ok, report.summary()


def test_humaneval_single_turn_oracle_one_noop_zero() -> None:
    require_backend("local")
    report = validate("agentgym/HumanEval-v0", env_kwargs={"sandbox": "local"}, num_workers=2, progress=False)
    assert len(report.checks) == 164
    assert report.ok, report.summary()
