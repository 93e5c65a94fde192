"""Serve environments over HTTP (``agentgym serve``) and use them remotely (:class:`RemoteEnv`).

Useful when environments must run on other machines than the trainer (sandbox hosts)
or from another language. JSON over HTTP/1.1 (keep-alive), on :mod:`agentgym._http`:

* ``POST /envs`` ``{"env_id", "kwargs"}`` -> ``{"session", "env_id", "tools"}``
* ``POST /envs/<session>/reset`` ``{"seed", "options"}`` -> ``{"observation", "info"}``
* ``POST /envs/<session>/step`` ``{"action"}`` -> ``{"observation", "reward", "terminated", "truncated", "info"}``
* ``POST /envs/<session>/finish`` ``{"reason"}`` -> ``{"info"}`` (``AgentEnv.finish``: ends the episode)
* ``GET /envs/<session>/tasks`` -> ``{"task_ids"}`` (the split the session draws from)
* ``DELETE /envs/<session>`` -> ``{"closed"}`` (idempotent: an unknown session gives ``false``)
* ``GET /envs`` -> ``{"envs", "allowed_kwargs", "allowed_options"}``; ``GET /healthz`` (no token needed)

Security model: a bearer token (``Authorization: Bearer ...``) is required unless the server is
bound to loopback. Clients choose only the served ids and, for the constructor, the
``allowed_kwargs`` (default :data:`CLIENT_KWARGS`: knobs such as ``split`` and ``max_turns``),
with JSON scalars or flat lists or objects of them as values: a client cannot name code (``module:function``
task sources), paths, sandboxes or parser objects. Reset options are limited the same way
(``task_id``, ``tool_format``). Sessions are capped (``max_sessions``; 503 with ``Retry-After``
when full), expire after ``session_ttl`` idle seconds, have unguessable ids, and serve one
request at a time. The body, header, timeout and connection limits are :class:`~agentgym._http.Limits`.
Not covered: TLS (put a TLS-terminating proxy in front on an untrusted network), rate limiting
per client, and what a served environment's own tools may do on the host.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import secrets
import select
import socket
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from agentgym._http import HTTPError, JSONHandler, JSONServer, Limits, Route, is_loopback
from agentgym.env import AgentEnv
from agentgym.messages import Action, Message
from agentgym.parsing import PARSERS
from agentgym.registry import list_envs, make
from agentgym.spaces import AssistantTurn, Chat

TOKEN_ENV = "AGENTGYM_SERVE_TOKEN"
log = logging.getLogger("agentgym.server")

CLIENT_KWARGS = frozenset(
    {
        # AgentEnv
        "split",
        "max_turns",
        "time_limit",
        "max_tool_output",
        "tools_in_prompt",
        "grade_on_truncation",
        "parser",  # a registered parser's name (a string; objects cannot travel as JSON)
        "process_rewards",  # {component: weight}: shapes only the rewards this client receives
        # ToolUse family
        "kinds",
        "tools",
        "answer_in_text",
        "compact_tools",
        "end_on_text",
        # CodeRepair, HumanEval, Terminal
        "reward_mode",
        "reject_syntax_errors",
        "file_tools",
    }
)
"""Constructor arguments a client may pass by default. Left out on purpose: task sources
(``tasks``, ``source``: ``module:function`` or paths), ``sandbox``/``sandbox_options``, timeouts
(``tool_timeout``, ``test_timeout``, ...), sizes (``per_kind``, ``pool_size``) and
``integrity_scan``; the operator may allow more (``allowed_kwargs``)."""

CLIENT_OPTIONS = frozenset({"task_id", "tool_format"})
"""Reset options a client may pass by default."""

_MAX_STRING = 4096
_MAX_LIST = 1024


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= _MAX_STRING
    return value is None or isinstance(value, bool | int)


def _check_values(what: str, values: dict[str, Any], allowed: frozenset[str], widen: str) -> None:
    """Raise 400 unless every key is allowed and every value a JSON scalar or a flat list of them.

    Known keys are also checked for type and range (:data:`_CLIENT_TYPES`), so that a bad value
    is the client's 400 here, never a server fault on a later step.
    """
    bad = sorted(k for k in values if k not in allowed)
    if bad:
        raise HTTPError(
            400,
            f"{what} not allowed from clients: {', '.join(bad)}; allowed: {', '.join(sorted(allowed))} "
            f"(the server's operator can allow more with {widen})",
        )
    for key, value in values.items():
        ok = _is_scalar(value) or (
            isinstance(value, list | dict)
            and len(value) <= _MAX_LIST
            and all(_is_scalar(v) for v in (value.values() if isinstance(value, dict) else value))
            and all(len(k) <= _MAX_STRING for k in value if isinstance(value, dict))
        )
        if not ok:
            raise HTTPError(
                400,
                f"{what} {key!r} must be a JSON scalar (string up to {_MAX_STRING} characters, number, bool, null) "
                f"or a flat list or object of up to {_MAX_LIST} of them, got {json.dumps(value)[:200]}",
            )
        check = _CLIENT_TYPES.get(key)
        if check is not None and value is not None and not check[0](value):
            raise HTTPError(400, f"{what} {key!r} must be {check[1]}, got {json.dumps(value)[:200]}")


def _int_in(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number_in(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


def _names(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 64 and all(isinstance(x, str) for x in v) and len(set(v)) == len(v)


def _weights(v: Any) -> bool:
    return isinstance(v, dict) and all(_number_in(-1e6, 1e6)(w) for w in v.values())


_BOOL = (lambda v: isinstance(v, bool), "true or false")
_CLIENT_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "split": (lambda v: v in ("train", "test", "all"), '"train", "test" or "all"'),
    "max_turns": (_int_in(1, 1000), "an integer from 1 to 1000"),
    "time_limit": (_number_in(0.001, 86_400), "seconds, a number from 0.001 to 86400"),
    "max_tool_output": (_int_in(1, 1_000_000), "an integer from 1 to 1000000 (characters)"),
    "parser": (lambda v: isinstance(v, str) and v in PARSERS, f"a parser name: {', '.join(sorted(PARSERS))}"),
    "tool_format": (lambda v: isinstance(v, str) and v in PARSERS, f"a parser name: {', '.join(sorted(PARSERS))}"),
    "task_id": (lambda v: isinstance(v, str | int) and not isinstance(v, bool), "a task id (string)"),
    "process_rewards": (_weights, "an object of {component: weight} with |weight| <= 1e6"),
    "kinds": (_names, "a list of up to 64 distinct names"),
    "tools": (_names, "a list of up to 64 distinct tool names"),
    "reward_mode": (lambda v: v in ("binary", "fraction"), '"binary" or "fraction"'),
    **dict.fromkeys(
        (
            "tools_in_prompt",
            "grade_on_truncation",
            "answer_in_text",
            "compact_tools",
            "end_on_text",
            "reject_syntax_errors",
            "file_tools",
        ),
        _BOOL,
    ),
}
"""Type and range of each known client value (checked whoever allowed the key)."""


@dataclass
class _Session:
    env: AgentEnv
    env_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    running: bool = False  # an episode is in progress (reset done, not ended)
    closed: bool = False


class EnvServer(JSONServer):
    """An HTTP server holding one environment per session; see the module docstring for the rules."""

    def __init__(
        self,
        address: tuple[str, int],
        allowed: list[str] | None = None,
        *,
        token: str | None = None,
        max_sessions: int = 64,
        session_ttl: float = 900.0,
        allowed_kwargs: Iterable[str] | None = None,
        allowed_options: Iterable[str] | None = None,
        limits: Limits | None = None,
    ):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if session_ttl <= 0:
            raise ValueError(f"session_ttl must be positive (seconds), got {session_ttl}")
        self.allowed = list(allowed) if allowed else None
        self.max_sessions = max_sessions
        self.session_ttl = session_ttl
        self.allowed_kwargs = frozenset(CLIENT_KWARGS if allowed_kwargs is None else allowed_kwargs)
        self.allowed_options = frozenset(CLIENT_OPTIONS if allowed_options is None else allowed_options)
        self.sessions: dict[str, _Session] = {}
        self._expired: OrderedDict[str, str] = OrderedDict()  # recently ended sessions -> why, for clear 404s
        self._pending = 0  # sessions being constructed (they count against the cap)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        super().__init__(address, _Handler, token=token, limits=limits)
        self._reaper = threading.Thread(target=self._reap_loop, name="agentgym-serve-reaper", daemon=True)
        self._reaper.start()

    # ----- sessions ----------------------------------------------------------------

    def served(self) -> list[str]:
        """The environment ids clients may make."""
        return self.allowed or list_envs()

    def _forget(self, session_id: str, why: str) -> None:
        self._expired[session_id] = why
        while len(self._expired) > 4096:
            self._expired.popitem(last=False)

    def session(self, session_id: str) -> _Session:
        """The live session, or 404 saying whether it expired, was closed or never existed."""
        with self._lock:
            s = self.sessions.get(session_id)
            why = self._expired.get(session_id)
        if s is None:
            if why is not None:
                raise HTTPError(404, f"session {session_id} {why}; create a new one (POST /envs)")
            raise HTTPError(404, f"no session {session_id}; create one (POST /envs)")
        return s

    def reap(self) -> int:
        """Close the sessions idle for more than ``session_ttl`` (busy ones are skipped); how many were closed."""
        now = time.monotonic()
        victims = []
        with self._lock:
            for sid, s in list(self.sessions.items()):
                if now - s.last_used > self.session_ttl and s.lock.acquire(blocking=False):
                    del self.sessions[sid]
                    self._forget(sid, f"expired after {self.session_ttl:g} s idle")
                    victims.append(s)
        for s in victims:
            try:
                s.closed = True
                s.env.close()
            except Exception:
                log.exception("closing an expired %s session failed", s.env_id)
            finally:
                s.lock.release()
        return len(victims)

    def _reap_loop(self) -> None:
        interval = max(0.05, min(self.session_ttl / 4, 30.0))
        while not self._stop.wait(interval):
            self.reap()

    def server_close(self) -> None:
        """Stop listening, then close every session's environment."""
        self._stop.set()
        super().server_close()
        with self._lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for s in sessions:
            got = s.lock.acquire(timeout=5.0)  # let a running step finish
            try:
                s.closed = True
                s.env.close()
            except Exception:
                log.exception("closing a %s session failed", s.env_id)
            finally:
                if got:
                    s.lock.release()


class _Handler(JSONHandler):
    server: EnvServer
    routes = (
        Route("GET", "/healthz", "on_healthz", public=True),
        Route("GET", "/envs", "on_list_envs"),
        Route("POST", "/envs", "on_create"),
        Route("POST", "/envs/{sid}/reset", "on_reset"),
        Route("POST", "/envs/{sid}/step", "on_step"),
        Route("POST", "/envs/{sid}/finish", "on_finish"),
        Route("GET", "/envs/{sid}/tasks", "on_tasks"),
        Route("DELETE", "/envs/{sid}", "on_delete"),
    )

    def on_healthz(self, body: None) -> Any:
        return {"status": "ok"}

    def on_list_envs(self, body: None) -> Any:
        srv = self.server
        return {
            "envs": srv.served(),
            "allowed_kwargs": sorted(srv.allowed_kwargs),
            "allowed_options": sorted(srv.allowed_options),
        }

    def on_create(self, body: dict[str, Any]) -> Any:
        srv = self.server
        env_id, kwargs = body.get("env_id"), body.get("kwargs") or {}
        if not isinstance(env_id, str) or not env_id:
            raise HTTPError(400, 'missing "env_id": send {"env_id": "agentgym/Name-v0", "kwargs": {...}}')
        if not isinstance(kwargs, dict):
            raise HTTPError(400, f'"kwargs" must be a JSON object, got {type(kwargs).__name__}')
        served = srv.served()
        full = env_id if "/" in env_id else f"agentgym/{env_id}"
        if full not in served:
            raise HTTPError(403, f"{env_id} is not served here; served: {', '.join(served)}")
        _check_values("constructor arguments", kwargs, srv.allowed_kwargs, "--allow-kwarg NAME")
        with srv._lock:
            if len(srv.sessions) + srv._pending >= srv.max_sessions:
                raise HTTPError(
                    503,
                    f"the server holds its maximum of {srv.max_sessions} sessions; close unused ones "
                    f"(DELETE /envs/<session>) or retry later",
                    {"Retry-After": "5"},
                )
            srv._pending += 1
        try:
            try:
                env = make(full, **kwargs)
            except (TypeError, ValueError) as e:  # arguments the constructor refused
                raise HTTPError(400, f"cannot make {full} with {kwargs}: {type(e).__name__}: {e}") from None
            sid = secrets.token_urlsafe(24)
            with srv._lock:
                srv.sessions[sid] = _Session(env, full)
        finally:
            with srv._lock:
                srv._pending -= 1
        return {"session": sid, "env_id": full, "tools": env.tool_schemas()}

    def _locked(self, sid: str) -> _Session:
        """The session with its lock held (the caller releases it)."""
        s = self.server.session(sid)
        s.lock.acquire()
        if s.closed:  # closed or reaped while this request waited for the lock
            s.lock.release()
            why = self.server._expired.get(sid, "was closed")
            raise HTTPError(404, f"session {sid} {why} while this request waited; create a new one (POST /envs)")
        s.last_used = time.monotonic()
        return s

    def _release(self, s: _Session) -> None:
        s.last_used = time.monotonic()
        s.lock.release()

    def on_reset(self, body: dict[str, Any], sid: str) -> Any:
        seed, options = body.get("seed"), body.get("options") or {}
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise HTTPError(400, f'"seed" must be a non-negative integer or null, got {seed!r}')
        if not isinstance(options, dict):
            raise HTTPError(400, f'"options" must be a JSON object or null, got {type(options).__name__}')
        _check_values("reset options", options, self.server.allowed_options, "allowed_options=")
        s = self._locked(sid)
        try:
            task_id = options.get("task_id")
            if task_id is not None and str(task_id) not in s.env.task_set:
                raise HTTPError(400, f"no task {task_id!r} in {s.env_id}; GET /envs/{sid}/tasks lists them")
            s.running = False
            obs, info = s.env.reset(seed=seed, options=options or None)
            s.running = True
            return {"observation": obs, "info": info}
        finally:
            self._release(s)

    def on_step(self, body: dict[str, Any], sid: str) -> Any:
        if "action" not in body:
            raise HTTPError(400, 'missing "action": send {"action": "<assistant text>" or an assistant message}')
        action = body["action"]
        if not isinstance(action, str | dict):
            raise HTTPError(
                400, f'"action" must be a string or an assistant message object, got {type(action).__name__}'
            )
        s = self._locked(sid)
        try:
            if not s.running:
                raise HTTPError(409, "no running episode in this session: reset it first (POST .../reset)")
            obs, reward, terminated, truncated, info = s.env.step(action)
            if terminated or truncated:
                s.running = False
            return {
                "observation": obs,
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "info": info,
            }
        finally:
            self._release(s)

    def on_finish(self, body: dict[str, Any], sid: str) -> Any:
        reason = body.get("reason", "stopped")
        if not isinstance(reason, str) or not reason or len(reason) > 200:
            raise HTTPError(400, f'"reason" must be a non-empty string of up to 200 characters, got {reason!r}')
        s = self._locked(sid)
        try:
            if not s.running:
                raise HTTPError(409, "no running episode to finish in this session: reset it first")
            s.running = False
            return {"info": s.env.finish(reason)}
        finally:
            self._release(s)

    def on_tasks(self, body: None, sid: str) -> Any:
        s = self._locked(sid)
        try:
            return {"task_ids": s.env.tasks.ids}
        finally:
            self._release(s)

    def on_delete(self, body: None, sid: str) -> Any:
        srv = self.server
        try:
            s = self._locked(sid)
        except HTTPError:
            return {"closed": False}
        try:
            with srv._lock:
                srv.sessions.pop(sid, None)
                srv._forget(sid, "was closed")
            s.closed = True
            s.env.close()
        finally:
            s.lock.release()
        return {"closed": True}


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    allowed: list[str] | None = None,
    *,
    token: str | None = None,
    max_sessions: int = 64,
    session_ttl: float = 900.0,
    allowed_kwargs: Iterable[str] | None = None,
    allowed_options: Iterable[str] | None = None,
    limits: Limits | None = None,
) -> EnvServer:
    """Create the server (call ``serve_forever()`` on it, or run it in a thread).

    Args:
        host: the address to listen on (loopback by default).
        port: the port (0: any free port, see ``server_port``).
        allowed: the environment ids served (default: every registered one).
        token: the bearer token clients must send (default: ``$AGENTGYM_SERVE_TOKEN``); required
            unless ``host`` is loopback.
        max_sessions: sessions held at once; more are refused with 503 and ``Retry-After``.
        session_ttl: seconds a session may sit idle before it is closed.
        allowed_kwargs: constructor arguments clients may pass (default :data:`CLIENT_KWARGS`).
        allowed_options: reset options clients may pass (default :data:`CLIENT_OPTIONS`).
        limits: body, header, timeout and connection limits.
    """
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ValueError(
            f"serving on {host or 'every interface'!r} without a token would let anyone on the network run "
            f"environments: pass a token (agentgym serve --token TOKEN, or set {TOKEN_ENV}; make one with "
            f"python -c 'import secrets; print(secrets.token_urlsafe(32))'), or bind to 127.0.0.1"
        )
    return EnvServer(
        (host, port),
        allowed,
        token=token,
        max_sessions=max_sessions,
        session_ttl=session_ttl,
        allowed_kwargs=allowed_kwargs,
        allowed_options=allowed_options,
        limits=limits,
    )


class RemoteEnv(gym.Env[list[Message], Action]):
    """A Gymnasium env whose ``reset``/``step`` run on an ``agentgym serve`` server.

    ``messages`` is rebuilt from what ``reset``/``step`` return (reset's observation, then per
    step ``info["assistant_message"]`` and the observation), as for a local ``AgentEnv``.
    One keep-alive connection per instance, used by one call at a time (thread-safe). Calls
    that are safe to repeat (listing tasks, a seeded reset, close) are retried once the
    connection was reset; a step is never sent twice.
    """

    def __init__(
        self,
        url: str,
        env_id: str,
        *,
        token: str | None = None,
        timeout: float = 600.0,
        retries: int = 2,
        **kwargs: Any,
    ):
        """Open a session for ``env_id`` on the server at ``url``; ``kwargs`` go to the env's constructor.

        The token defaults to ``$AGENTGYM_SERVE_TOKEN``; ``timeout`` bounds each call (seconds).
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"RemoteEnv needs an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self._host, self._port, self._https = parts.hostname, parts.port, parts.scheme == "https"
        self._prefix = parts.path.rstrip("/")
        self.token = token or os.environ.get(TOKEN_ENV) or None
        self.timeout = timeout
        self.retries = retries
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._closed = True  # until the session exists
        self._messages: list[Message] = []
        self._task_ids: list[str] | None = None
        self.observation_space = Chat()
        try:
            out = self._call("POST", "/envs", {"env_id": env_id, "kwargs": kwargs})
        except BaseException:
            self._drop()
            raise
        self.session: str = out["session"]
        self.env_id: str = out.get("env_id", env_id)
        self._closed = False
        tools = out.get("tools") or []
        names = [t["function"]["name"] for t in tools]
        args = sorted({p for t in tools for p in t["function"].get("parameters", {}).get("properties", {})})
        self.action_space = AssistantTurn(names, args)

    # ----- transport ---------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:  # the server closed the idle connection (or sent junk): start afresh
                conn.close()
                conn = None
        if conn is None or conn.sock is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            conn.connect()
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return conn

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, idempotent: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        attempts = 1 + (self.retries if idempotent else 0)
        with self._lock:
            for attempt in range(attempts):
                try:
                    conn = self._connection()
                    conn.request(method, self._prefix + path, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                    status = resp.status
                    if resp.will_close:
                        conn.close()
                    break
                except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
                    self._drop()
                    if attempt + 1 >= attempts:
                        why = "" if idempotent else " (not retried: the call is not safe to repeat)"
                        raise ConnectionError(
                            f"agentgym server at {self.url}: {method} {path} failed: {type(e).__name__}: {e}{why}"
                        ) from e
                    time.sleep(0.1 * 2**attempt)
                except TimeoutError as e:  # the call may still be running there: not retried
                    self._drop()
                    raise TimeoutError(
                        f"agentgym server at {self.url}: {method} {path} got no reply within {self.timeout:g} s "
                        "(RemoteEnv(timeout=...) waits longer)"
                    ) from e
                except OSError as e:
                    self._drop()
                    raise ConnectionError(
                        f"agentgym server at {self.url}: {method} {path} failed: {type(e).__name__}: {e}; "
                        "is `agentgym serve` running there?"
                    ) from e
        try:
            reply = json.loads(raw) if raw else {}
        except ValueError:
            reply = {"error": raw[:200].decode(errors="replace")}
        if status >= 400:
            message = reply.get("error") if isinstance(reply, dict) else None
            hint = f" (pass token= or set {TOKEN_ENV})" if status == 401 else ""
            raise RuntimeError(f"agentgym server at {self.url}: {method} {path} -> {status}: {message}{hint}")
        return reply

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ----- Gymnasium API -----------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The whole transcript of the current episode (rebuilt from reset and step returns)."""
        return list(self._messages)

    @property
    def task_ids(self) -> list[str]:
        """The ids of the tasks the session draws from (its split)."""
        if self._task_ids is None:
            self._task_ids = list(self._call("GET", f"/envs/{self.session}/tasks", idempotent=True)["task_ids"])
        return list(self._task_ids)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """Reset the remote environment; Gymnasium's ``reset``."""
        super().reset(seed=seed)
        repeatable = seed is not None or bool(options and options.get("task_id") is not None)
        out = self._call(
            "POST", f"/envs/{self.session}/reset", {"seed": seed, "options": options}, idempotent=repeatable
        )
        self._messages = list(out["observation"])
        return out["observation"], out["info"]

    def step(self, action: Action) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """Send one assistant turn to the remote environment; Gymnasium's ``step``."""
        out = self._call("POST", f"/envs/{self.session}/step", {"action": action})
        info = out["info"]
        said = info.get("assistant_message")
        if isinstance(said, dict):
            self._messages.append(said)  # type: ignore[arg-type]  # a Message from the server's JSON
        self._messages.extend(out["observation"])
        return out["observation"], out["reward"], out["terminated"], out["truncated"], info

    def finish(self, reason: str = "stopped") -> dict[str, Any]:
        """End the running episode from outside (``AgentEnv.finish``); the final info keys."""
        info: dict[str, Any] = self._call("POST", f"/envs/{self.session}/finish", {"reason": reason})["info"]
        return info

    def close(self) -> None:
        """End the remote session (idempotent; a server already gone is not an error)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call("DELETE", f"/envs/{self.session}", idempotent=True)
        except (OSError, RuntimeError):
            pass
        finally:
            with self._lock:
                self._drop()
