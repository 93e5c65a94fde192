"""`agentgym serve` + RemoteEnv give the same episode as a local env."""

from __future__ import annotations

import threading

import pytest

import agentgym
from agentgym.server import RemoteEnv, serve


@pytest.fixture
def server():
    srv = serve("127.0.0.1", 0, allowed=["agentgym/ToolUse-v0"])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_remote_episode_equals_local(server: str) -> None:
    local = agentgym.make("agentgym/ToolUse-v0")
    remote = RemoteEnv(server, "agentgym/ToolUse-v0")
    obs_l, info_l = local.reset(seed=4)
    obs_r, info_r = remote.reset(seed=4)
    assert (obs_l, info_l) == (obs_r, info_r)
    for action in [*local.oracle_turns(local.task)]:
        assert local.step(action) == tuple(remote.step(action))
    remote.close()
    remote.close()
    local.close()


def test_remote_errors_are_clear(server: str) -> None:
    with pytest.raises(RuntimeError, match="agentgym/Calculator-v0 is not served here"):
        RemoteEnv(server, "agentgym/Calculator-v0")
    remote = RemoteEnv(server, "agentgym/ToolUse-v0")
    with pytest.raises(RuntimeError, match="step\\(\\) called before reset"):
        remote.step("hi")
    remote.close()
