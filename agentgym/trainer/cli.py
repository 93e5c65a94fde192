"""``agentgym train``: flags generated one-to-one from :class:`GRPOConfig` (field docstrings are the help).

Wire into the main CLI with ``add_commands(subparsers)``; ``python -m agentgym.trainer.cli``
runs it stand-alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any

from agentgym.trainer.config import GRPOConfig, field_docs


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type = GRPOConfig) -> None:
    """One flag per field of config dataclass ``cls`` (GRPOConfig, SFTConfig, DPOConfig, ...).

    For example ``--eps-high 0.28``, ``--lora-rank 8``, ``--no-progress``, ``--env-kwargs '{...}'``;
    each field's docstring is its help.
    """
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default: Any = None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        help_text = f"{docs.get(f.name, '')} (default: {default!r})"
        hint = hints[f.name]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is bool:
            parser.add_argument(
                _flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        elif origin is typing.Literal:
            parser.add_argument(_flag(f.name), dest=f.name, choices=list(args), default=default, help=help_text)
        elif origin in (dict, list) or hint in (dict, list):
            parser.add_argument(
                _flag(f.name), dest=f.name, type=json.loads, default=default, metavar="JSON", help=help_text
            )
        elif origin is tuple:
            parser.add_argument(
                _flag(f.name), dest=f.name, type=float, nargs=len(args), default=default, help=help_text
            )
        else:
            kinds = [a for a in (args or (hint,)) if a is not type(None)]
            conv: Any = kinds[0] if kinds and kinds[0] in (int, float, str) else str
            parser.add_argument(_flag(f.name), dest=f.name, type=conv, default=default, help=help_text)


def config_fields(args: argparse.Namespace, cls: type = GRPOConfig) -> dict[str, Any]:
    """The field values of config class ``cls`` that the flags of :func:`add_config_arguments` hold."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}


def config_from_args(args: argparse.Namespace) -> GRPOConfig:
    """The GRPOConfig the flags of :func:`add_config_arguments` describe."""
    return GRPOConfig(**config_fields(args))


def check_config(config: GRPOConfig) -> None:
    """Fail fast, before any model is loaded, on an unknown environment or model spec."""
    import agentgym
    from agentgym.trainer.models import check_spec

    full = config.env if "/" in config.env else f"agentgym/{config.env}"
    envs = agentgym.list_envs()
    if full not in envs:
        raise ValueError(
            f"unknown environment {config.env!r}; registered: {', '.join(e.split('/', 1)[1] for e in envs)}"
        )
    check_spec(config.model)


def run_train(args: argparse.Namespace) -> int:
    """``agentgym train``: check the config, train, and print held-out success before and after."""
    from agentgym.trainer.loop import train

    config = config_from_args(args)
    check_config(config)
    summary = train(config)
    evals = summary["evals"]
    if evals:
        first, last = evals[0], evals[-1]
        print(
            f"held-out success: {first['success']:.3f} (step {first['step']}) -> "
            f"{last['success']:.3f} (step {last['step']}) on {last['tasks']} tasks"
        )
    print(f"metrics: {summary['metrics']}")
    return 0


DELEGATED: dict[str, tuple[str, str]] = {
    "sft": (
        "agentgym.trainer.sft",
        "supervised fine-tuning on whole episodes (oracle or own successful rollouts, expert-iteration rounds)",
    ),
    "dpo": ("agentgym.trainer.dpo", "DPO on pairs of same-task episodes against a frozen reference"),
    "rm": (
        "agentgym.trainer.rm_train",
        "reward models: `agentgym rm train` fits a scalar-head model on preference pairs (or a PRM on per-turn labels)",
    ),
    "export": (
        "agentgym.trainer.export",
        "export trajectories for other trainers (TRL SFT / preference records, verl-style token rows)",
    ),
}
"""Commands whose module imports torch or datasets: ``agentgym --help`` lists them without importing
it; :func:`delegated_parser` builds their parser (the module's ``add_arguments``) only when one runs."""


def delegated_parser(name: str) -> argparse.ArgumentParser:
    """The parser of delegated command ``name``; the parsed namespace's ``fn`` is the module's ``run``."""
    import importlib

    module_name, help_text = DELEGATED[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"agentgym {name}", description=help_text)
    module.add_arguments(parser)
    parser.set_defaults(fn=module.run, command=name)
    return parser


def add_commands(subparsers: Any) -> None:
    """Add ``train`` (and the names of the delegated commands) to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "train",
        help="train a model with GRPO on an environment",
        description="GRPO on whole multi-turn episodes. Every flag is a GRPOConfig field.",
    )
    add_config_arguments(parser)
    parser.set_defaults(fn=run_train)
    for name, (_, help_text) in DELEGATED.items():
        subparsers.add_parser(name, help=help_text, add_help=False)  # parsed by delegated_parser(name)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone ``python -m agentgym.trainer.cli train ...`` (same parser and error handling as ``agentgym``)."""
    from agentgym.cli import main as agentgym_main

    return agentgym_main(argv)


if __name__ == "__main__":
    sys.exit(main())
