"""Serve environments over HTTP (``agentgym serve``) and use them remotely (:class:`RemoteEnv`).

Useful when environments must run on other machines than the trainer (sandbox hosts)
or from another language. JSON over HTTP, stdlib only:

* ``POST /envs`` ``{"env_id", "kwargs"}`` -> ``{"session"}``
* ``POST /envs/<session>/reset`` ``{"seed", "options"}`` -> ``{"observation", "info"}``
* ``POST /envs/<session>/step`` ``{"action"}`` -> ``{"observation", "reward", "terminated", "truncated", "info"}``
* ``DELETE /envs/<session>`` closes it; ``GET /envs`` lists registered ids.

No authentication: bind it to loopback or a private network.
"""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gymnasium as gym

from agentgym.env import AgentEnv
from agentgym.messages import Action, Message
from agentgym.registry import list_envs, make
from agentgym.spaces import AssistantTurn, Chat


class EnvServer(ThreadingHTTPServer):
    """An HTTP server holding one environment per session; ``allowed`` limits which ids it makes."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], allowed: list[str] | None = None):
        self.sessions: dict[str, AgentEnv] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.allowed = allowed
        super().__init__(address, _Handler)

    def server_close(self) -> None:
        """Close every session's environment, then the socket."""
        for env in self.sessions.values():
            env.close()
        self.sessions.clear()
        super().server_close()


class _Handler(BaseHTTPRequestHandler):
    server: EnvServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        if not isinstance(body, dict):
            raise ValueError(f"the request body must be a JSON object, got {type(body).__name__}")
        return body

    def do_GET(self) -> None:
        if self.path == "/envs":
            return self._reply(200, {"envs": self.server.allowed or list_envs()})
        self._reply(404, {"error": f"no route GET {self.path}"})

    def do_DELETE(self) -> None:
        session = self.path.rstrip("/").split("/")[-1]
        env = self.server.sessions.pop(session, None)
        if env is not None:
            env.close()
        self._reply(200, {"closed": env is not None})

    def do_POST(self) -> None:
        try:
            body = self._body()
            parts = self.path.strip("/").split("/")
            if parts == ["envs"]:
                env_id = body["env_id"]
                if self.server.allowed is not None and env_id not in self.server.allowed:
                    return self._reply(403, {"error": f"{env_id} is not served here; served: {self.server.allowed}"})
                session = uuid.uuid4().hex
                self.server.sessions[session] = make(env_id, **body.get("kwargs", {}))
                self.server.locks[session] = threading.Lock()
                return self._reply(200, {"session": session})
            if len(parts) == 3 and parts[0] == "envs" and parts[1] in self.server.sessions:
                env, lock = self.server.sessions[parts[1]], self.server.locks[parts[1]]
                with lock:
                    if parts[2] == "reset":
                        obs, info = env.reset(seed=body.get("seed"), options=body.get("options"))
                        return self._reply(200, {"observation": obs, "info": info})
                    if parts[2] == "step":
                        obs, reward, term, trunc, info = env.step(body["action"])
                        return self._reply(
                            200,
                            {
                                "observation": obs,
                                "reward": reward,
                                "terminated": term,
                                "truncated": trunc,
                                "info": info,
                            },
                        )
            self._reply(404, {"error": f"no route POST {self.path} (unknown session?)"})
        except Exception as e:
            self._reply(400, {"error": f"{type(e).__name__}: {e}"})


def serve(host: str = "127.0.0.1", port: int = 8765, allowed: list[str] | None = None) -> EnvServer:
    """Create the server (call ``serve_forever()`` on it, or run it in a thread)."""
    return EnvServer((host, port), allowed)


class RemoteEnv(gym.Env[list[Message], Action]):
    """A Gymnasium env whose ``reset``/``step`` run on an ``agentgym serve`` server."""

    def __init__(self, url: str, env_id: str, timeout: float = 600.0, **kwargs: Any):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.observation_space = Chat()
        self.action_space = AssistantTurn()
        self.session = self._call("POST", "/envs", {"env_id": env_id, "kwargs": kwargs})["session"]
        self._closed = False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body or {}).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                reply: dict[str, Any] = json.loads(resp.read())
                return reply
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"agentgym server at {self.url}: {json.loads(e.read()).get('error')}") from None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Reset the remote environment; Gymnasium's ``reset``."""
        super().reset(seed=seed)
        out = self._call("POST", f"/envs/{self.session}/reset", {"seed": seed, "options": options})
        return out["observation"], out["info"]

    def step(self, action: Action) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Send one assistant turn to the remote environment; Gymnasium's ``step``."""
        out = self._call("POST", f"/envs/{self.session}/step", {"action": action})
        return out["observation"], out["reward"], out["terminated"], out["truncated"], out["info"]

    def close(self) -> None:
        """End the remote session (idempotent; a server already gone is not an error)."""
        if not self._closed:
            self._closed = True
            try:
                self._call("DELETE", f"/envs/{self.session}")
            except OSError:
                pass
