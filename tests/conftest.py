"""Shared test configuration.

In CI (CI=true) nothing the project needs may be skipped: see ``agentgym.testing.require``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from agentgym.testing import require


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The one local Ray cluster of the test session (loopback only; starting one costs seconds).

    Yields :class:`agentgym.distributed.RayCluster` (``.address`` lets a subprocess join it);
    skips with the install hint where Ray is missing (fails in CI).
    """
    require(importlib.util.find_spec("ray") is not None, "Ray is not installed: pip install 'agentgym[distributed]'")
    from agentgym.distributed import ray_init

    with ray_init(num_cpus=2) as cluster:  # before anything imports ray: ray_init keeps it on loopback
        yield cluster
