"""The function grader every function-grading test file uses, on each sandbox backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from coding_helpers import BACKENDS, require_backend

from agentgym.envs.coding.function_grading import FunctionGrader
from agentgym.envs.coding.sandboxing import SandboxProvider


@pytest.fixture(scope="module", params=BACKENDS)
def grader(request: pytest.FixtureRequest) -> Iterator[FunctionGrader]:
    """A function grader on a fresh provider of the backend (one per test module)."""
    require_backend(request.param)
    provider = SandboxProvider(request.param)
    yield FunctionGrader(provider, timeout=12.0, call_timeout=3.0, max_result_bytes=1 << 20)
    provider.close()
