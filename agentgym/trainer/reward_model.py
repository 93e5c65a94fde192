r"""Reward models (RLHF) and process reward models: the method, the model, and the rewards they give.

Training (``agentgym rm train``, :func:`agentgym.trainer.rm_train.train_reward_model`) and its
data formats (:mod:`agentgym.trainer.rm_data`) have their own modules.

The model. A sequence-scoring model is a causal LM trunk with a scalar head: transformers'
``AutoModelForSequenceClassification`` with ``num_labels=1`` (``Qwen2ForSequenceClassification``
for the tiny model), initialised from a causal LM spec (``tiny``, ``smollm2``, a path). The head
maps the last hidden state of every position to a number; the score of a transcript is the value
at its last token. A trained model is saved with ``save_pretrained`` and its tokenizer, so the
directory loads with ``AutoModelForSequenceClassification.from_pretrained`` (as TRL's
``RewardTrainer`` saves and reads them), with ``agentgym_rm.json`` beside it (objective,
``max_length``, metrics).

Rendering. A transcript (OpenAI chat messages, tool calls and tool messages included) is the
model's chat template on the whole conversation without a generation prompt
(:class:`Renderer`). Tool calls go to the template when it renders ``tool_calls``; otherwise
they are written into the assistant's text as Hermes ``<tool_call>`` markup, the text a model
of that template would have produced. Tool schemas go to ``tools=`` when the template renders
them (:meth:`agentgym.trainer.tokens.ChatTokens.present`, the view the policy had). Token ids
longer than ``max_length`` are cut from the LEFT: the end of the episode is what is scored.

Objectives (pure functions, tested against hand-computed values):

* pairwise, Bradley-Terry (Bradley & Terry 1952; as in Ouyang et al. 2022):
  ``L = -mean_i log sigmoid(r(x_c^i) - r(x_r^i) - m_i)``, with an optional margin ``m_i``
  (Touvron et al. 2023) and an optional centring term ``+ c * mean_i (r_c^i + r_r^i)^2``
  (Eisenstein et al. 2023, TRL's ``center_rewards_coefficient``), off by default;
* pointwise (process reward models): binary cross-entropy of ``sigmoid(s_t)`` against a label
  in [0, 1] for each assistant turn's prefix score ``s_t`` (Lightman et al. 2023; Monte-Carlo
  labels from the episode's outcome as in Math-Shepherd, Wang et al. 2024).

Metric: pair accuracy, the fraction of pairs whose chosen side scores higher (ties count 1/2,
so a constant model scores 0.5, not 0).

Process rewards. The score of turn ``t`` is the score of the transcript prefix ending after
turn ``t``'s tool results and feedback (everything before the next assistant message):
``s_t``, with ``s_0`` the score of the opening prompt alone and ``s_T`` equal to the outcome
reward model's score of the whole transcript. The position read for ``s_t`` is the last token
of that prefix's rendering: the template's close of the turn's last message (with ChatML the
newline after the ``<|im_end|>`` of its last tool result or feedback message), right before
the next ``<|im_start|>assistant``. It is the first position whose context holds the whole
turn and what came back from it, and nothing later; and it is the token a sequence classifier
reads when that prefix is scored on its own. Because attention is causal, the value there
depends on the prefix only, and the whole transcript's token ids start with each prefix's ids
(checked per transcript), so ONE forward pass over the whole transcript reads every ``s_t``
(:meth:`ProcessRewardModel.score_turns`). Mode ``delta`` gives ``r_t = s_t - s_{t-1}``,
potential-based shaping ``F = gamma * Phi(s') - Phi(s)`` with ``Phi = s`` and ``gamma = 1``
(Ng et al. 1999): an episode's rewards sum to ``s_T - s_0`` however many turns it has, so
adding turns cannot farm reward (a policy still gains by ending in a better-scored state).
With ``normalize="sigmoid"`` the differences are taken between normalized scores.

Deliberate deviations and limits:

* the score is read at the last token of the rendering (the template's close of the last
  message), where TRL reads the last non-pad token; the same position unless a transcript
  ends in the pad token;
* left truncation may start mid-message; a transcript longer than ``max_length`` has its
  prefixes scored one pass each (each cut on its own), not from one pass;
* ``threads`` of the reward objects defaults to 0 (torch's own setting): torch has one CPU pool
  per process, and a reward scored inside a trainer must not resize the trainer's;
* one optimizer (AdamW, constant learning rate, clipped gradient norm), full fine-tuning.

Not covered: LoRA, reward-model ensembles, resuming a run, mixed pairwise + pointwise
objectives, and PRM labels from several rollouts per step (Math-Shepherd's N > 1).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from agentgym.errors import RewardError
from agentgym.trainer.rm_data import Transcript, content_key

if TYPE_CHECKING:  # torch loads on first use: the reward objects are cheap to build
    from torch import Tensor

    from agentgym.trainer.tokens import ChatTokens

__all__ = [
    "ProcessRewardModel",
    "Renderer",
    "RewardModelReward",
    "bradley_terry_loss",
    "load_reward_model",
    "pair_accuracy",
    "pointwise_loss",
    "position_scores",
    "sequence_scores",
    "token_values",
]

Schemas = list[dict[str, Any]]
Msgs = Sequence[Mapping[str, Any]]
"""A transcript as the scorers take it: OpenAI chat messages (plain dicts or :class:`~agentgym.messages.Message`)."""
META_FILE = "agentgym_rm.json"
DEFAULT_MAX_LENGTH = 2048


# ----- losses and metrics ----------------------------------------------------------------------


def bradley_terry_loss(
    chosen: Tensor, rejected: Tensor, margin: Tensor | float | None = None, center_coef: float = 0.0
) -> Tensor:
    """The Bradley-Terry loss of reward pairs: ``-mean(log sigmoid(r_c - r_r - m)) + c * mean((r_c + r_r)^2)``.

    ``P(chosen > rejected) = sigmoid(r_c - r_r)`` (Bradley & Terry 1952); the loss is its negative
    log-likelihood (Ouyang et al. 2022). A margin ``m`` asks the chosen side to win by at least that
    much (Touvron et al. 2023); ``center_coef`` pulls rewards towards 0 (Eisenstein et al. 2023).
    Example: rewards (2, 0) chosen, (1, 1) rejected: ``(-log sigmoid(1) - log sigmoid(-1)) / 2 = 0.8133``.

    Args:
        chosen: (P,) rewards of the chosen sides.
        rejected: (P,) rewards of the rejected sides.
        margin: None, a float, or (P,) margins.
        center_coef: weight of the centring term (0: off).

    Returns:
        The mean loss, a scalar tensor.
    """
    import torch

    diff = chosen - rejected  # (P,)
    if margin is not None:
        diff = diff - margin
    loss = -torch.nn.functional.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    return loss


def pair_accuracy(chosen: Sequence[float] | Tensor, rejected: Sequence[float] | Tensor) -> float:
    """The fraction of pairs whose chosen side scores higher; a tie counts 1/2 (so a constant model gets 0.5).

    Example: chosen (2, 1, 0), rejected (1, 1, 3): ``(1 + 0.5 + 0) / 3 = 0.5``. NaN for no pairs.
    """
    c = np.asarray([float(x) for x in chosen], np.float64)
    r = np.asarray([float(x) for x in rejected], np.float64)
    if c.shape != r.shape:
        raise ValueError(f"{len(c)} chosen scores but {len(r)} rejected scores")
    if len(c) == 0:
        return math.nan
    return float(np.mean((c > r) + 0.5 * (c == r)))


def pointwise_loss(scores: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of ``sigmoid(scores)`` against ``labels`` in [0, 1], averaged.

    ``-mean(y log sigmoid(s) + (1 - y) log(1 - sigmoid(s)))``: each turn's prefix score is the
    logit of the probability that the episode succeeds from there (Lightman et al. 2023).
    """
    import torch

    return torch.nn.functional.binary_cross_entropy_with_logits(scores, labels)


# ----- rendering -------------------------------------------------------------------------------


def _call_text(call: dict[str, Any]) -> str:
    from agentgym.parsing import format_tool_call

    fn = call.get("function") or {}
    args = fn.get("arguments")
    try:
        parsed = json.loads(args) if isinstance(args, str) else (args or {})
    except json.JSONDecodeError:
        parsed = args
    return format_tool_call(str(fn.get("name", "")), parsed)


def _content_text(content: Any) -> str | None:
    if isinstance(content, list):  # OpenAI content parts: the text parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) or content is None else str(content)


class Renderer:
    """Transcripts -> token ids with a tokenizer's chat template (see the module docstring).

    Args:
        tokenizer: a transformers tokenizer with a chat template.
        max_length: the most tokens kept; longer renderings lose their beginning.
    """

    def __init__(self, tokenizer: Any, max_length: int = DEFAULT_MAX_LENGTH):
        from agentgym.trainer.tokens import ChatTokens

        if max_length < 2:
            raise ValueError(f"max_length={max_length}: must be at least 2")
        self.max_length = max_length
        self.chat: ChatTokens = ChatTokens(tokenizer, check=False)
        probe: Transcript = [
            {"role": "user", "content": "Hi."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "agentgym_probe_tool", "arguments": "{}"}}
                ],
            },
        ]
        try:
            self.native_calls = "agentgym_probe_tool" in self._render(probe, None)
        except Exception:  # a template that fails on tool_calls: they go into the text
            self.native_calls = False

    def _render(self, messages: Msgs, tools: Schemas | None) -> str:
        return self.chat.render(cast(Any, messages), False, tools)

    def messages(self, transcript: Msgs, tools: Schemas | None = None) -> tuple[Transcript, Any]:
        """The messages and ``tools=`` given to the template: calls as text unless it renders them."""
        out: Transcript = []
        for message in transcript:
            m = {**message, "content": _content_text(message.get("content"))}
            calls = m.pop("tool_calls", None)
            if calls and not self.native_calls:
                text = "\n".join(_call_text(c) for c in calls)
                m["content"] = f"{m['content']}\n{text}" if m.get("content") else text
            elif calls:
                m["tool_calls"] = calls
            out.append(m)
        shown, shown_tools = self.chat.present(cast(Any, out), tools)
        return cast(Transcript, shown), shown_tools

    def text(self, transcript: Msgs, tools: Schemas | None = None) -> str:
        """The template's rendering of the whole transcript, no generation prompt."""
        msgs, shown_tools = self.messages(transcript, tools)
        return self._render(msgs, shown_tools)

    def ids(self, transcript: Msgs, tools: Schemas | None = None) -> list[int]:
        """The rendering's token ids, the last ``max_length`` of them."""
        return self.chat.encode(self.text(transcript, tools))[-self.max_length :]

    def boundaries(self, transcript: Msgs) -> list[int]:
        """Message counts of the prefixes ``s_0 .. s_T`` are read from: the opening, then each turn with its results.

        Prefix ``t >= 1`` ends right before assistant turn ``t + 1`` (or at the transcript's end).
        """
        starts = [i for i, m in enumerate(transcript) if m.get("role") == "assistant"]
        return [*starts, len(transcript)] if starts else []

    def turn_positions(
        self, transcript: Msgs, tools: Schemas | None = None, *, fit: bool = True
    ) -> tuple[list[int], list[int]] | None:
        """``(ids, positions)``: the whole rendering and the last-token position of each prefix ``s_0 .. s_T``.

        None when one pass cannot read them: the rendering is longer than ``max_length`` (with
        ``fit``; ``fit=False`` returns the whole rendering however long), or a
        prefix's ids are not a prefix of the whole rendering's ids (a template or tokenizer that
        rewrites earlier text).
        """
        msgs, shown_tools = self.messages(transcript, tools)
        full = self.chat.encode(self._render(msgs, shown_tools))
        if fit and len(full) > self.max_length:
            return None
        positions = []
        for n in self.boundaries(transcript):
            prefix = self.chat.encode(self._render(msgs[:n], shown_tools)) if n else []
            if not prefix or full[: len(prefix)] != prefix:
                return None
            positions.append(len(prefix) - 1)
        return full, positions


# ----- model -----------------------------------------------------------------------------------


def load_reward_model(spec: str, *, seed: int = 0, device: str = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)``: a sequence-scoring model (scalar head) from a causal LM spec or a reward model dir.

    ``spec`` is anything :func:`agentgym.trainer.models.resolve` reads. A causal LM gets a new head,
    initialised from ``seed`` (no global RNG touched); a saved reward model keeps its head.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from agentgym.trainer.models import LOAD_LOCK, drop_quantization, resolve

    path = resolve(spec)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise ValueError(f"{path}: the tokenizer has no chat template; set tokenizer.chat_template (ChatML works)")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with LOAD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    drop_quantization(model.config)
    model.config.pad_token_id = tokenizer.pad_token_id
    if not hasattr(model, "score"):
        raise ValueError(f"model {spec!r}: {type(model).__name__} has no 'score' head; use a decoder-only causal LM")
    return model.to(device), tokenizer


def token_values(model: Any, ids: Tensor, mask: Tensor) -> Tensor:
    """The scalar head at every position: ``score(h_p)`` for the trunk's last hidden state ``h_p``.

    Args:
        model: a ``*ForSequenceClassification`` model with ``num_labels=1``.
        ids: (B, L) token ids, right-padded.
        mask: (B, L) 1 on real tokens.

    Returns:
        (B, L) float32 values; position ``p`` has seen tokens ``0..p`` only (causal attention).
    """
    trunk = getattr(model, model.base_model_prefix)
    hidden = trunk(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
    out: Tensor = model.score(hidden).squeeze(-1).float()  # (B, L)
    return out


def _pad(seqs: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Tensor, Tensor]:
    """(B, L) right-padded ids and their (B, L) attention mask."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def sequence_scores(model: Any, seqs: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    """(B,) the value at each sequence's last token (keeps the graph)."""
    import torch

    ids, mask = _pad(seqs, pad_id, next(model.parameters()).device)
    values = token_values(model, ids, mask)  # (B, L)
    last = mask.sum(-1) - 1  # (B,)
    return values[torch.arange(len(seqs), device=values.device), last]


def position_scores(
    model: Any, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad_id: int
) -> Tensor:
    """(N,) the values at ``positions[i]`` of each sequence ``i``, concatenated in order (keeps the graph)."""
    import torch

    ids, mask = _pad(seqs, pad_id, next(model.parameters()).device)
    values = token_values(model, ids, mask)  # (B, L)
    rows = torch.tensor([i for i, ps in enumerate(positions) for _ in ps], device=values.device)
    cols = torch.tensor([p for ps in positions for p in ps], device=values.device)
    return values[rows, cols]


# ----- rewards for environments ----------------------------------------------------------------


_SHARED: dict[tuple[str, str, int, float], tuple[Any, Renderer, threading.Lock]] = {}
_SHARED_LOCK = threading.Lock()


def _shared_model(path: str, device: str, max_length: int) -> tuple[Any, Renderer, threading.Lock]:
    """One loaded copy per reward model directory in a process, with the lock its users share.

    Every environment of a trainer builds its own reward objects from the same spec; they share the weights (one
    copy in memory, loaded once) and one lock around the model and its tokenizer (a fast tokenizer is not
    thread-safe). A directory rewritten since (a newer ``config.json``) loads again.
    """
    real = str(Path(path).resolve())
    key = (real, device, max_length, (Path(real) / "config.json").stat().st_mtime)
    with _SHARED_LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            model, tokenizer = load_reward_model(real, device=device)
            model.eval().requires_grad_(False)
            entry = _SHARED[key] = (model, Renderer(tokenizer, max_length), threading.Lock())
        return entry


class _LazyScorer:
    """A saved reward model, loaded on first use; thread-safe; an LRU cache of raw scores by content hash."""

    def __init__(
        self,
        path: str,
        *,
        name: str,
        normalize: str = "sigmoid",
        max_length: int | None = None,
        device: str = "cpu",
        threads: int = 0,
        batch_size: int = 8,
        cache_size: int = 4096,
    ):
        if normalize not in ("none", "sigmoid"):
            raise ValueError(f"normalize={normalize!r}: use 'none' or 'sigmoid'")
        if batch_size < 1 or cache_size < 0 or (max_length is not None and max_length < 2):
            raise ValueError("batch_size must be >= 1, cache_size >= 0 and max_length (when given) >= 2")
        self.path = str(path)
        self.name = name
        self.normalize = normalize
        self.max_length = max_length
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model: Any = None
        self._renderer: Renderer | None = None
        self._pad_id = 0
        self._load_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._stats: dict[str, float] = {"calls": 0, "cache_hits": 0, "scored": 0, "errors": 0, "load_seconds": 0.0}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only (an env holding this reward may be pickled): the copy loads again lazily."""
        state = {k: v for k, v in self.__dict__.items() if not k.endswith("_lock")}
        state.update(_model=None, _renderer=None, _cache=OrderedDict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load_lock, self._model_lock, self._state_lock = threading.Lock(), threading.Lock(), threading.Lock()

    @property
    def stats(self) -> dict[str, float]:
        """A snapshot of the counters.

        ``calls`` (transcripts asked for), ``cache_hits``, ``scored`` (transcripts run through the
        model), ``errors`` (failed loads and scorings) and ``load_seconds``.
        """
        with self._state_lock:
            return dict(self._stats)

    def _count(self, **increments: float) -> None:
        with self._state_lock:
            for k, v in increments.items():
                self._stats[k] += v

    def _fail(self, what: str, e: BaseException) -> RewardError:
        self._count(errors=1)
        return RewardError(f"{type(self).__name__} {self.name!r} ({self.path}): {what} ({type(e).__name__}: {e})")

    def _load(self) -> Renderer:
        """Load the model and tokenizer once (the first caller loads; the others wait)."""
        loaded = self._renderer
        if loaded is not None:
            return loaded
        with self._load_lock:
            loaded = self._renderer  # another thread may have loaded it while this one waited
            if loaded is not None:
                return loaded
            t0 = time.perf_counter()
            try:
                import torch

                from agentgym.trainer.models import check_spec

                check_spec(self.path)
                config = json.loads((Path(self.path) / "config.json").read_text())
                if not any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
                    raise ValueError("not a reward model (architectures has no *ForSequenceClassification)")
                meta_path = Path(self.path) / META_FILE
                meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
                if self.threads > 0:
                    torch.set_num_threads(self.threads)
                max_length = self.max_length or int(meta.get("max_length", DEFAULT_MAX_LENGTH))
                model, renderer, self._model_lock = _shared_model(self.path, self.device, max_length)
            except Exception as e:
                raise self._fail("cannot load the reward model", e) from e
            self._model, self._pad_id = model, int(renderer.chat.tokenizer.pad_token_id)
            self._count(load_seconds=time.perf_counter() - t0)
            self._renderer = renderer
            return renderer

    def _cached(self, keys: Sequence[str]) -> list[list[float] | None]:
        with self._state_lock:
            out: list[list[float] | None] = []
            for k in keys:
                hit = self._cache.get(k)
                if hit is not None:
                    self._cache.move_to_end(k)
                out.append(hit)
            self._stats["calls"] += len(keys)
            self._stats["cache_hits"] += sum(x is not None for x in out)
            return out

    def _store(self, key: str, value: list[float]) -> None:
        if self.cache_size == 0:
            return
        with self._state_lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _norm(self, raw: float) -> float:
        if self.normalize == "sigmoid":
            return 1.0 / (1.0 + math.exp(-raw)) if raw >= 0 else math.exp(raw) / (1.0 + math.exp(raw))
        return raw

    def _checked(self, values: Tensor) -> list[float]:
        out = [float(v) for v in values.detach().cpu()]
        if not all(math.isfinite(v) for v in out):
            raise ValueError(f"non-finite score {out}")
        return out


class RewardModelReward(_LazyScorer):
    """A trained reward model's score of the whole episode, an outcome reward (``fn(env) -> float``).

    Args:
        path: a directory written by :func:`train_reward_model` (or any ``*ForSequenceClassification``
            model with one label and a chat template).
        name: the component's name.
        normalize: ``sigmoid`` (a score in (0, 1): the Bradley-Terry probability of beating a reward
            of 0) or ``none`` (the raw score).
        max_length: tokens kept, from the left (None: the model's ``agentgym_rm.json``, else 2048).
        device: where the model runs.
        threads: torch CPU threads, set process-wide on load (0: leave torch's setting alone, the
            default, since a trainer in the same process shares the pool).
        batch_size: transcripts per forward pass in :meth:`score`.
        cache_size: transcripts whose scores are kept (least recently used dropped; 0: none).

    The model loads on the first call; a failure to load or score raises
    :class:`~agentgym.errors.RewardError` and is counted in :attr:`stats`.
    """

    source = "reward_model"

    def __init__(
        self,
        path: str,
        *,
        name: str = "reward_model",
        normalize: str = "sigmoid",
        max_length: int | None = None,
        device: str = "cpu",
        threads: int = 0,
        batch_size: int = 8,
        cache_size: int = 4096,
    ):
        super().__init__(
            path,
            name=name,
            normalize=normalize,
            max_length=max_length,
            device=device,
            threads=threads,
            batch_size=batch_size,
            cache_size=cache_size,
        )

    def __call__(self, env: Any) -> float:
        """The score of ``env.messages`` (with ``env.tool_schemas()``)."""
        return self.score([env.messages], env.tool_schemas())[0]

    def turn(self, env: Any, turn: Any) -> float:
        """As a process reward (``kind: process``): the score of the transcript so far, after ``turn``."""
        return self(env)

    def score(self, transcripts: Sequence[Msgs], tools: Schemas | None = None) -> list[float]:
        """The scores of whole transcripts, batched; cached ones are not recomputed.

        Raises:
            RewardError: the model cannot load, or a transcript cannot be scored.
        """
        import torch

        keys = [content_key(list(t), tools) for t in transcripts]
        found = self._cached(keys)
        todo = sorted({k: i for i, (k, f) in enumerate(zip(keys, found, strict=True)) if f is None}.values())
        if todo:
            renderer = self._load()
            try:
                scores: list[float] = []
                with self._model_lock, torch.no_grad():  # the tokenizer too: a fast tokenizer is not thread-safe
                    seqs = [renderer.ids(transcripts[i], tools) for i in todo]
                    for b in range(0, len(seqs), self.batch_size):
                        scores += self._checked(
                            sequence_scores(self._model, seqs[b : b + self.batch_size], self._pad_id)
                        )
            except Exception as e:
                raise self._fail("cannot score", e) from e
            self._count(scored=len(todo))
            for i, s in zip(todo, scores, strict=True):
                self._store(keys[i], [s])
            computed = dict(zip([keys[i] for i in todo], scores, strict=True))
            found = [f if f is not None else [computed[k]] for k, f in zip(keys, found, strict=True)]
        return [self._norm(f[0]) for f in found if f is not None]


class ProcessRewardModel(_LazyScorer):
    """A reward model's score of each turn's transcript prefix, a process reward (``fn(env, turn) -> float``).

    ``s_t`` is the score of the transcript up to the next assistant message (turn ``t``, its tool
    results and feedback), ``s_0`` that of the opening prompt; see the module docstring.

    Args:
        path: a reward model directory (see :class:`RewardModelReward`).
        name: the component's name.
        mode: ``score`` (``r_t = s_t``) or ``delta`` (``r_t = s_t - s_{t-1}``, potential-based shaping:
            an episode's rewards sum to ``s_T - s_0``, so extra turns earn nothing by themselves).
        normalize: as for :class:`RewardModelReward`; ``s_t`` is normalized before differences are taken.
        max_length: as for :class:`RewardModelReward`.
        device: as for :class:`RewardModelReward`.
        threads: as for :class:`RewardModelReward`.
        batch_size: as for :class:`RewardModelReward`.
        cache_size: as for :class:`RewardModelReward`.
    """

    source = "prm"

    def __init__(
        self,
        path: str,
        *,
        name: str = "prm",
        mode: str = "score",
        normalize: str = "sigmoid",
        max_length: int | None = None,
        device: str = "cpu",
        threads: int = 0,
        batch_size: int = 8,
        cache_size: int = 4096,
    ):
        if mode not in ("score", "delta"):
            raise ValueError(f"mode={mode!r}: use 'score' or 'delta'")
        super().__init__(
            path,
            name=name,
            normalize=normalize,
            max_length=max_length,
            device=device,
            threads=threads,
            batch_size=batch_size,
            cache_size=cache_size,
        )
        self.mode = mode

    def __call__(self, env: Any, turn: Any) -> float:
        """The reward of the turn just taken: from the prefix ``env.messages`` (ending with this turn's results)."""
        s = self.prefix_scores(env.messages, env.tool_schemas())
        return s[-1] if self.mode == "score" else s[-1] - s[-2]

    def prefix_scores(self, transcript: Msgs, tools: Schemas | None = None) -> list[float]:
        """``[s_0, s_1, ..., s_T]`` (normalized): the opening prompt's score, then each turn's prefix score.

        One forward pass over the whole transcript reads the value at the last token of each
        prefix's rendering: causal attention makes it exactly the prefix's own score. A
        transcript longer than ``max_length`` has each prefix scored on its own (left-truncated).

        Raises:
            RewardError: the model cannot load, or the transcript cannot be scored (e.g. it has
                no assistant turn or no opening message before the first one).
        """
        import torch

        key = content_key("prefixes", list(transcript), tools)
        hit = self._cached([key])[0]
        if hit is None:
            renderer = self._load()
            try:
                bounds = renderer.boundaries(transcript)
                if not bounds or bounds[0] == 0:
                    raise ValueError("a transcript needs an opening message and at least one assistant turn")
                with self._model_lock, torch.no_grad():  # the tokenizer too: a fast tokenizer is not thread-safe
                    one_pass = renderer.turn_positions(transcript, tools)
                    if one_pass is not None:
                        ids, positions = one_pass
                        hit = self._checked(position_scores(self._model, [ids], [positions], self._pad_id))
                    else:
                        seqs = [renderer.ids(transcript[:n], tools) for n in bounds]
                        hit = []
                        for b in range(0, len(seqs), self.batch_size):
                            hit += self._checked(
                                sequence_scores(self._model, seqs[b : b + self.batch_size], self._pad_id)
                            )
            except Exception as e:
                raise self._fail("cannot score the turns", e) from e
            self._count(scored=1)
            self._store(key, hit)
        return [self._norm(s) for s in hit]

    def score_turns(self, transcript: Msgs, tools: Schemas | None = None) -> list[float]:
        """The reward of every assistant turn (``s_1..s_T``, or their differences in ``delta`` mode), one pass."""
        s = self.prefix_scores(transcript, tools)
        return s[1:] if self.mode == "score" else [b - a for a, b in itertools.pairwise(s)]
