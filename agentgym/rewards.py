"""Rewards: a :class:`Rubric` of named, weighted reward functions.

Two kinds:

* ``outcome`` functions run once, when the episode ends (the sparse task reward);
* ``process`` functions run after every turn (shaped, per-turn signals).

A function with weight 0 is a *metric*: computed and reported, never added. Every
component's raw value is reported in ``info["reward_components"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

if TYPE_CHECKING:
    from agentgym.env import AgentEnv, TurnRecord

Kind = Literal["outcome", "process"]
_F = TypeVar("_F", bound=Callable[..., float])


@dataclass
class RewardFunc:
    """One named, weighted reward function of a :class:`Rubric`."""

    name: str
    fn: Callable[..., float]
    """outcome: ``fn(env) -> float``; process: ``fn(env, turn) -> float``."""
    weight: float = 1.0
    kind: Kind = "outcome"


@dataclass
class Rubric:
    """The reward functions of an environment; the reward is their weighted sum."""

    funcs: list[RewardFunc] = field(default_factory=list)

    def add(self, name: str, fn: Callable[..., float], *, weight: float = 1.0, kind: Kind = "outcome") -> Rubric:
        """Add a reward function under a unique ``name``; returns the rubric, so calls chain."""
        if any(f.name == name for f in self.funcs):
            raise ValueError(f"reward {name!r} is already in the rubric; names must be unique")
        if kind not in ("outcome", "process"):
            raise ValueError(f"kind must be 'outcome' or 'process', got {kind!r}")
        self.funcs.append(RewardFunc(name, fn, float(weight), kind))
        return self

    @overload
    def outcome(self, fn: _F, *, weight: float = 1.0, name: str | None = None) -> _F: ...
    @overload
    def outcome(self, fn: None = None, *, weight: float = 1.0, name: str | None = None) -> Callable[[_F], _F]: ...
    def outcome(self, fn: _F | None = None, *, weight: float = 1.0, name: str | None = None) -> Any:
        """Decorator form of ``add(..., kind="outcome")``, with or without arguments."""
        return self._decorator("outcome", fn, weight, name)

    @overload
    def process(self, fn: _F, *, weight: float = 0.0, name: str | None = None) -> _F: ...
    @overload
    def process(self, fn: None = None, *, weight: float = 0.0, name: str | None = None) -> Callable[[_F], _F]: ...
    def process(self, fn: _F | None = None, *, weight: float = 0.0, name: str | None = None) -> Any:
        """Decorator form of ``add(..., kind="process")``; weight 0 (a metric) unless set."""
        return self._decorator("process", fn, weight, name)

    def _decorator(self, kind: Kind, fn: _F | None, weight: float, name: str | None) -> Any:
        def wrap(f: _F) -> _F:
            self.add(name or f.__name__, f, weight=weight, kind=kind)
            return f

        return wrap(fn) if fn else wrap

    def set_weights(self, weights: dict[str, float]) -> None:
        """Change the weights of the named components (unknown names are an error)."""
        names = {f.name for f in self.funcs}
        unknown = set(weights) - names
        if unknown:
            raise ValueError(f"unknown reward components {sorted(unknown)}; this rubric has {sorted(names)}")
        for f in self.funcs:
            if f.name in weights:
                f.weight = float(weights[f.name])

    def names(self, kind: Kind | None = None) -> list[str]:
        """The component names, of one ``kind`` or all."""
        return [f.name for f in self.funcs if kind is None or f.kind == kind]

    def weights(self) -> dict[str, float]:
        """The weight of each component, by name."""
        return {f.name: f.weight for f in self.funcs}

    def _score(self, kind: Kind, *args: Any) -> tuple[float, dict[str, float]]:
        total = 0.0
        components: dict[str, float] = {}
        for f in self.funcs:
            if f.kind != kind:
                continue
            value = float(f.fn(*args))
            if not math.isfinite(value):
                raise ValueError(f"reward {f.name!r} returned {value}; reward functions must return finite numbers")
            components[f.name] = value
            total += f.weight * value
        return total, components

    def score_turn(self, env: AgentEnv, turn: TurnRecord) -> tuple[float, dict[str, float]]:
        """The weighted process reward of one turn, and each process component's raw value."""
        return self._score("process", env, turn)

    def score_outcome(self, env: AgentEnv) -> tuple[float, dict[str, float]]:
        """The weighted outcome reward of the episode, and each outcome component's raw value."""
        return self._score("outcome", env)

    def describe(self) -> list[dict[str, Any]]:
        """Name, kind, weight and the first docstring line of each component."""
        return [
            {"name": f.name, "kind": f.kind, "weight": f.weight, "doc": (f.fn.__doc__ or "").strip().split("\n")[0]}
            for f in self.funcs
        ]


# Common process rewards, usable by any environment.


def well_formed_calls(env: AgentEnv, turn: TurnRecord) -> float:
    """1 when the turn made at least one tool call and none was malformed, else 0."""
    return 1.0 if turn.n_calls > 0 and not turn.errors.get("malformed") else 0.0


def tool_errors(env: AgentEnv, turn: TurnRecord) -> float:
    """Minus the number of tool errors this turn (malformed, unknown tool, bad args, ...)."""
    return float(-sum(turn.errors.values()))


def step_cost(env: AgentEnv, turn: TurnRecord) -> float:
    """-1 per turn; weight it small to prefer short episodes."""
    return -1.0
