"""Registering and making environments, on top of Gymnasium's registry.

Ids look like ``agentgym/Name-v0``; ``gymnasium.make`` works on them once ``agentgym``
is imported (or use ``gymnasium.make("agentgym:agentgym/Name-v0")``). Third-party
packages add environments through the ``agentgym.envs`` entry-point group; an entry
point may name a zero-argument function that calls :func:`register`, or an
:class:`~agentgym.env.AgentEnv` subclass with an ``env_id`` class attribute.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from agentgym.env import AgentEnv

NAMESPACE = "agentgym"
ENTRY_POINT_GROUP = "agentgym.envs"
_plugins = {"loaded": False}  # entry points are read once per process unless forced


def _full_id(env_id: str) -> str:
    return env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"


def register(
    env_id: str,
    entry_point: str | Callable[..., gym.Env],
    *,
    kwargs: dict[str, Any] | None = None,
    nondeterministic: bool = False,
    override: bool = False,
) -> str:
    """Register an environment class (or ``"module:Class"``) under ``agentgym/Name-vN``.

    Returns the full id. Registering an id twice is an error unless ``override=True``
    (bump the version instead when behaviour changes).
    """
    full = _full_id(env_id)
    if not full.startswith(f"{NAMESPACE}/"):
        raise ValueError(f"agentgym ids live in the {NAMESPACE!r} namespace; got {env_id!r}")
    if full in gym.registry and not override:
        if gym.registry[full].entry_point == entry_point:
            return full
        raise ValueError(
            f"{full} is already registered (entry point {gym.registry[full].entry_point!r}); "
            "bump the version, e.g. -v1, or pass override=True"
        )
    if full in gym.registry:
        del gym.registry[full]
    gym.register(
        id=full,
        entry_point=entry_point,
        kwargs=kwargs or {},
        nondeterministic=nondeterministic,
        disable_env_checker=True,
        order_enforce=False,
    )
    return full


def load_plugins(force: bool = False) -> list[str]:
    """Load environments from installed packages' ``agentgym.envs`` entry points."""
    if _plugins["loaded"] and not force:
        return []
    _plugins["loaded"] = True
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:
            warnings.warn(f"agentgym plugin {ep.name!r} ({ep.value}) failed to load: {e}", RuntimeWarning, stacklevel=2)
            continue
        env_id = getattr(obj, "env_id", None)
        if isinstance(obj, type) and env_id:
            register(env_id, obj)
        elif callable(obj):
            obj()
        loaded.append(ep.name)
    return loaded


def list_envs() -> list[str]:
    """Ids of every registered agentgym environment, built-in and plugin."""
    load_plugins()
    return sorted(k for k in gym.registry if k.startswith(f"{NAMESPACE}/"))


def make(env_id: str, **kwargs: Any) -> AgentEnv:
    """Create an environment by id (``Name-v0`` or ``agentgym/Name-v0``).

    Returns the bare :class:`~agentgym.env.AgentEnv` (no Gymnasium wrappers), so
    ``env.messages`` and the other attributes are at hand.
    """
    load_plugins()
    full = _full_id(env_id)
    if full not in gym.registry:
        raise gym.error.NameNotFound(f"no environment {full!r}; registered: {', '.join(list_envs()) or '(none)'}")
    env = gym.make(full, **kwargs).unwrapped
    if not isinstance(env, AgentEnv):
        raise TypeError(f"{full} builds a {type(env).__name__}, not an AgentEnv; register only AgentEnv subclasses")
    return env


def env_class(env_id: str) -> type[AgentEnv]:
    """The class behind an id (without instantiating it)."""
    load_plugins()
    spec = gym.spec(_full_id(env_id))
    ep = spec.entry_point
    if not callable(ep):
        module, _, attr = str(ep).partition(":")
        ep = getattr(importlib.import_module(module), attr)
    if not (isinstance(ep, type) and issubclass(ep, AgentEnv)):
        raise TypeError(f"{spec.id} is registered with {ep!r}, not an AgentEnv subclass; register the class itself")
    return ep


def spec_kwargs(env_id: str) -> dict[str, Any]:
    """The keyword arguments an id was registered with."""
    return dict(gym.spec(_full_id(env_id)).kwargs)
