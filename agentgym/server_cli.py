"""``agentgym serve``: the environment server's command (kept apart so the CLI loads it only when listed)."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    """``agentgym serve``: serve environments over HTTP until interrupted."""
    from agentgym.server import serve

    server = serve(args.host, args.port, args.env or None)
    print(
        f"serving {', '.join(args.env) if args.env else 'all environments'} on http://{args.host}:{server.server_port}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_commands(sub: Any) -> None:
    """Add ``serve`` to the ``agentgym`` parser."""
    p = sub.add_parser("serve", help="serve environments over HTTP (use them with agentgym.server.RemoteEnv)")
    p.add_argument("--env", action="append", default=[], help="environment id to serve (repeatable; default: all)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(fn=cmd_serve)
