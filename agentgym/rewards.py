"""Rewards: a :class:`Rubric` of named, weighted reward functions.

Two kinds:

* ``outcome`` functions run once, when the episode ends (the sparse task reward);
* ``process`` functions run after every turn (shaped, per-turn signals).

A function with weight 0 is a *metric*: computed and reported, never added. Every
component's raw value is reported in ``info["reward_components"]``.

Each component also has a **source**, saying where its number comes from:

* ``verifier``: the task's own check (unit tests, a checker, page state); the default for outcome
  functions. Only these decide an episode's ``success`` (``info["verifier_reward"]``);
* ``process``: hand-written per-turn shaping; the default for process functions;
* ``judge``: a model asked to score against written criteria (:mod:`agentgym.judges`, RLAIF);
* ``reward_model`` / ``prm``: a learned scorer of episodes / of turns
  (:mod:`agentgym.trainer.reward_model`, RLHF).

A reward object declares its source with a ``source`` class attribute. Judge and learned scores are
thus always reported as their own components and never counted as the verifier's: a judge's
generous score can raise the training reward it is weighted into, but not the success rate.

Learned and AI rewards attach to any environment without subclassing, as JSON specs
(``agentgym.make(id, rewards=[{"type": "judge", "policy": "hf:...", "criteria": "..."}])``, see
:func:`make_reward`). A reward that cannot score raises :class:`agentgym.errors.RewardError`;
the environment then ends the episode with ``termination_reason="reward_error"`` and the trainer
masks it (counted, never scored with a made-up number).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

if TYPE_CHECKING:
    from agentgym.env import AgentEnv, TurnRecord
    from agentgym.trajectory import Trajectory

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
    source: str = ""
    """Where the number comes from: ``verifier``, ``process``, ``judge``, ``reward_model``, ``prm``, ... (see the
    module docstring); empty: taken from ``fn``'s ``source`` attribute, else ``verifier`` (outcome) / ``process``."""

    def __post_init__(self) -> None:
        if not self.source:
            owner = getattr(self.fn, "__self__", None)  # a bound method such as ``judge.turn``
            self.source = str(
                getattr(self.fn, "source", None)
                or getattr(owner, "source", None)
                or ("verifier" if self.kind == "outcome" else "process")
            )


@dataclass
class Rubric:
    """The reward functions of an environment; the reward is their weighted sum."""

    funcs: list[RewardFunc] = field(default_factory=list)

    def add(
        self,
        name: str,
        fn: Callable[..., float],
        *,
        weight: float = 1.0,
        kind: Kind = "outcome",
        source: str = "",
    ) -> Rubric:
        """Add a reward function under a unique ``name``; returns the rubric, so calls chain.

        ``source`` defaults to ``fn``'s own ``source`` attribute (judges, reward models), else
        ``verifier`` for outcome and ``process`` for process functions.
        """
        return self.add_func(RewardFunc(name, fn, float(weight), kind, source))

    def add_func(self, func: RewardFunc) -> Rubric:
        """Add a :class:`RewardFunc` (e.g. from :func:`make_reward`); its name must be new."""
        if any(f.name == func.name for f in self.funcs):
            raise ValueError(f"reward {func.name!r} is already in the rubric; names must be unique")
        if func.kind not in ("outcome", "process"):
            raise ValueError(f"kind must be 'outcome' or 'process', got {func.kind!r}")
        self.funcs.append(func)
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

    def verifier_reward(self, components: Mapping[str, float]) -> float:
        """The weighted sum of the ``verifier`` outcome components among ``components``: what ``success`` reads."""
        return sum(
            f.weight * float(components[f.name])
            for f in self.funcs
            if f.kind == "outcome" and f.source == "verifier" and f.name in components
        )

    def describe(self) -> list[dict[str, Any]]:
        """Name, kind, weight, source and the first docstring line of each component."""
        return [
            {"name": f.name, "kind": f.kind, "weight": f.weight, "source": f.source, "doc": _doc(f.fn)}
            for f in self.funcs
        ]


def _doc(fn: Callable[..., Any]) -> str:
    """The first line of the docstring of ``fn`` (a callable object's is its class's)."""
    return (getattr(fn, "__doc__", None) or "").strip().split("\n")[0]


# Learned and AI rewards as JSON specs (any environment's ``rewards=``).

REWARD_TYPES: dict[str, str | Callable[..., Any]] = {
    "judge": "agentgym.judges:Judge",
    "reward_model": "agentgym.trainer.reward_model:RewardModelReward",
    "prm": "agentgym.trainer.reward_model:ProcessRewardModel",
}
"""Spec ``type`` -> the factory (``"module:attr"``, imported on first use, or a callable)."""

GROUP_REWARD_TYPES: dict[str, str | Callable[..., Any]] = {"rank_judge": "agentgym.judges:RankJudge"}
"""Rewards that score the G episodes of a GRPO group together (``score_group``); the trainer applies them."""

_DEFAULT_KIND: dict[str, Kind] = {"prm": "process"}


def register_reward_type(name: str, factory: str | Callable[..., Any], kind: Kind = "outcome") -> None:
    """Make ``{"type": name, ...}`` specs build ``factory(**rest)``; ``kind`` is the default kind of such specs."""
    REWARD_TYPES[name] = factory
    if kind != "outcome":
        _DEFAULT_KIND[name] = kind


def make_reward(spec: RewardFunc | Mapping[str, Any]) -> RewardFunc:
    """A :class:`RewardFunc` from a JSON spec, e.g. ``{"type": "judge", "policy": "hf:ckpt", "criteria": "..."}``.

    Keys: ``type`` (a key of :data:`REWARD_TYPES`), ``name`` (default: the type), ``weight`` (default 1),
    ``kind`` (``outcome``, or ``process`` to score every turn; default: ``process`` for ``prm``, else
    ``outcome``); every other key is a keyword argument of the type's constructor. A process judge
    scores with its ``turn`` method. Only code that already ships with agentgym (or that the caller
    registered with :func:`register_reward_type`) can be named: a spec never imports a module it names.
    """
    if isinstance(spec, RewardFunc):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"a reward spec is a dict such as {{'type': 'judge', ...}} or a RewardFunc, got {spec!r}")
    rest = dict(spec)
    rtype = rest.pop("type", None)
    if rtype in GROUP_REWARD_TYPES:
        raise ValueError(
            f"reward spec {dict(spec)!r}: a {rtype} scores the episodes of a GRPO group together, not one episode; "
            "give it to the trainer (GRPOConfig.group_rewards, `agentgym train --group-rewards JSON`), not to an env"
        )
    if rtype not in REWARD_TYPES:
        raise ValueError(f"reward spec {dict(spec)!r}: 'type' must be one of {sorted(REWARD_TYPES)}")
    name = str(rest.pop("name", rtype))
    weight = float(rest.pop("weight", 1.0))
    kind = rest.pop("kind", _DEFAULT_KIND.get(rtype, "outcome"))
    if kind not in ("outcome", "process"):
        raise ValueError(f"reward spec {name!r}: kind must be 'outcome' or 'process', got {kind!r}")
    obj = _build(REWARD_TYPES[rtype], rtype, name, rest)
    fn = obj.turn if kind == "process" and hasattr(obj, "turn") else obj
    return RewardFunc(name, fn, weight, kind)


def make_group_reward(spec: Mapping[str, Any] | Any) -> tuple[str, float, Any]:
    """``(name, weight, scorer)`` from a group-reward spec such as ``{"type": "rank_judge", "policy": ..., ...}``.

    ``scorer.score_group(transcripts, task_prompt) -> list[float]`` scores the episodes of one group together;
    an object with ``score_group`` is taken as it is (name from its ``name`` attribute).
    """
    if hasattr(spec, "score_group"):
        return str(getattr(spec, "name", "group_reward")), float(getattr(spec, "weight", 1.0)), spec
    rest = dict(spec)
    rtype = rest.pop("type", None)
    if rtype not in GROUP_REWARD_TYPES:
        raise ValueError(f"group reward spec {dict(spec)!r}: 'type' must be one of {sorted(GROUP_REWARD_TYPES)}")
    name = str(rest.pop("name", rtype))
    weight = float(rest.pop("weight", 1.0))
    return name, weight, _build(GROUP_REWARD_TYPES[rtype], rtype, name, {"name": name, **rest})


def _build(factory: str | Callable[..., Any], rtype: str, name: str, kwargs: dict[str, Any]) -> Any:
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except ImportError as e:
            if not module.startswith("agentgym.trainer"):
                raise
            raise ImportError(
                f"reward type {rtype!r} needs the training extra: pip install 'agentgym[train]' ({e})"
            ) from e
    assert callable(factory)
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise ValueError(f"reward spec {name!r} ({rtype}): {e}") from e


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


def apply_group_rewards(
    trajs: Sequence[Trajectory], group_rewards: Sequence[tuple[str, float, Any]], max_workers: int = 4
) -> dict[str, int]:
    """Score the episodes of each group together and add each score to its episode's outcome, as its own component.

    ``group_rewards``: ``(name, weight, scorer)`` triples from :func:`make_group_reward`; ``scorer.score_group(
    transcripts, task_prompt)`` returns one score per episode. Groups are the episodes sharing ``group_id`` (else
    ``task_id``); only graded episodes (not infrastructure failures, ``outcome_reward`` set) take part, and a group
    needs two of them. Each episode's last step gets the component (``reward_components[name]``), its reward and
    ``outcome_reward`` grow by ``weight * score``; the verifier's reward (and so ``success``) is unchanged. A scorer
    raising :class:`~agentgym.errors.RewardError` marks its group's episodes as ``reward_error`` failures (masked by
    the trainer), never scored with a made-up number. Groups are scored ``max_workers`` at a time.

    Returns:
        Counts: ``groups`` scored, ``errors`` (groups whose scorer failed) and ``episodes`` given a score.
    """
    from concurrent.futures import ThreadPoolExecutor

    from agentgym.errors import RewardError

    groups: dict[str, list[Trajectory]] = {}
    for t in trajs:
        if not t.infra_failure and t.outcome_reward is not None and t.steps:
            groups.setdefault(t.group_id or t.task_id, []).append(t)
    todo = [
        (name, weight, scorer, members)
        for members in groups.values()
        if len(members) >= 2
        for name, weight, scorer in group_rewards
    ]

    def run(item: tuple[str, float, Any, list[Trajectory]]) -> list[float] | RewardError:
        name, _, scorer, members = item
        prompt = next((str(m.get("content") or "") for m in members[0].messages if m.get("role") == "user"), "")
        try:
            scores = [float(s) for s in scorer.score_group([t.messages for t in members], prompt)]
        except RewardError as e:
            return e
        if len(scores) != len(members) or not all(math.isfinite(s) for s in scores):
            return RewardError(f"group reward {name!r} returned {scores!r} for {len(members)} episodes")
        return scores

    counts = {"groups": 0, "errors": 0, "episodes": 0}
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="agentgym-group-reward") as pool:
        results = list(pool.map(run, todo))
    for (name, weight, _, members), result in zip(todo, results, strict=True):
        if isinstance(result, RewardError):
            counts["errors"] += 1
            for t in members:
                t.infra_failure = True
                t.termination_reason = "reward_error"
                t.steps[-1].info.update(
                    infra_failure=True,
                    termination_reason="reward_error",
                    infra_error=f"{type(result).__name__}: {result}",
                )
            continue
        counts["groups"] += 1
        for t, score in zip(members, result, strict=True):
            if t.infra_failure:  # an earlier group reward of this group failed
                continue
            last = t.steps[-1]
            last.reward_components[name] = score
            last.info.setdefault("reward_components", {})[name] = score
            last.reward += weight * score
            t.outcome_reward = float(t.outcome_reward or 0.0) + weight * score
            last.info["outcome_reward"] = t.outcome_reward
            counts["episodes"] += 1
    return counts
