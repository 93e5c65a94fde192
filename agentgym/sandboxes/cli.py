"""``agentgym sandbox ...`` subcommands; the main CLI calls :func:`add_commands`."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sandbox`` command (``build-image``, ``gc``) to an argparse subparsers object."""
    from .image import DEFAULT_IMAGE

    sandbox: argparse.ArgumentParser = subparsers.add_parser("sandbox", help="manage sandbox images and containers")
    sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = sub.add_parser("build-image", help="build the base image with debootstrap + docker import")
    build.add_argument("--name", default=DEFAULT_IMAGE, help="image name:tag (default %(default)s)")
    build.add_argument("--force", action="store_true", help="rebuild even when the image exists")
    build.set_defaults(fn=_build_image)
    gc = sub.add_parser("gc", help="remove sandbox containers left by dead runs")
    gc.add_argument("--all", action="store_true", help="remove every agentgym sandbox container, live runs too")
    gc.set_defaults(fn=_gc)
    return sandbox


def _build_image(args: argparse.Namespace) -> int:
    from .image import build_image

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(build_image(args.name, force=args.force))
    return 0


def _gc(args: argparse.Namespace) -> int:
    from .docker import gc

    removed = gc(all_runs=args.all)
    print(f"removed {len(removed)} container(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m agentgym.sandboxes.cli sandbox gc``."""
    parser = argparse.ArgumentParser(prog="agentgym")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
