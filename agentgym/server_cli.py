"""``agentgym serve``: the environment server's command (kept apart so the CLI loads it only when listed)."""

from __future__ import annotations

import argparse
import os
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    """``agentgym serve``: serve environments over HTTP until interrupted."""
    import agentgym
    from agentgym._http import serve_until_interrupted
    from agentgym.server import CLIENT_KWARGS, TOKEN_ENV, serve

    known = agentgym.list_envs()
    envs = [e if "/" in e else f"agentgym/{e}" for e in args.env]
    unknown = [e for e in envs if e not in known]
    if unknown:
        raise ValueError(f"unknown environment {', '.join(unknown)}; registered: {', '.join(known)}")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    server = serve(
        args.host,
        args.port,
        envs or None,
        token=token,
        max_sessions=args.max_sessions,
        session_ttl=args.session_ttl,
        allowed_kwargs=CLIENT_KWARGS | set(args.allow_kwarg),
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    auth = "on (clients send 'Authorization: Bearer <token>')" if token else "off (loopback only)"
    print(
        f"serving {', '.join(envs) if envs else 'all environments'} on http://{host}:{server.server_port}\n"
        f"auth: {auth}; at most {args.max_sessions} sessions, closed after {args.session_ttl:g} s idle",
        flush=True,
    )
    return serve_until_interrupted(server)


def add_commands(sub: Any) -> None:
    """Add ``serve`` to the ``agentgym`` parser."""
    p = sub.add_parser(
        "serve",
        help="serve environments over HTTP (use them with agentgym.server.RemoteEnv)",
        description="Serve environments over HTTP/JSON. Off loopback a bearer token is required.",
    )
    p.add_argument("--env", action="append", default=[], help="environment id to serve (repeatable; default: all)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--token",
        help="bearer token clients must send (default: $AGENTGYM_SERVE_TOKEN); "
        "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    )
    p.add_argument("--max-sessions", type=int, default=64, help="sessions held at once (default 64)")
    p.add_argument("--session-ttl", type=float, default=900.0, help="seconds idle before a session is closed")
    p.add_argument(
        "--allow-kwarg",
        action="append",
        default=[],
        metavar="NAME",
        help="also let clients pass this constructor argument (repeatable; JSON scalars or lists only)",
    )
    p.set_defaults(fn=cmd_serve)
