"""Fixtures that run every sandbox test against both backends (local bwrap, Docker)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sandbox_helpers import Factory, require_bwrap, require_docker

from agentgym.sandboxes import LocalSandbox, Sandbox

BACKENDS = ["local", pytest.param("docker", marks=pytest.mark.docker)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        require_docker()
    else:
        require_bwrap()
    return request.param


@pytest.fixture
def make(backend: str) -> Iterator[Factory]:
    """``make(files=..., config=...)`` creates a sandbox of the backend; all are closed after the test."""
    made: list[Sandbox] = []

    def factory(**kwargs: Any) -> Sandbox:
        if backend == "docker":
            from agentgym.sandboxes import DockerSandbox

            sb: Sandbox = DockerSandbox(**kwargs)
        else:
            sb = LocalSandbox(**kwargs)
        made.append(sb)
        return sb

    yield factory
    for sb in made:
        sb.close()


@pytest.fixture
def sandbox(make: Factory) -> Sandbox:
    return make()
