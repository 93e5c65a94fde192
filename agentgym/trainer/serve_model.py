"""``agentgym serve-model PATH``: an OpenAI-compatible chat server that records the exact tokens.

Routes (JSON over HTTP, on :mod:`agentgym._http`: bearer token, body and header caps, socket
timeouts, keep-alive):

* ``POST /v1/chat/completions``: the OpenAI request (``messages``, ``tools``, ``tool_choice``
  ``auto``/``none``, ``temperature``, ``max_tokens``/``max_completion_tokens``, ``seed``,
  ``stop``, ``logprobs``, ``n=1``; ``top_k`` as an extension). The reply is OpenAI's
  ``chat.completion`` (calls parsed into ``message.tool_calls``, finish reason ``tool_calls``,
  ``stop`` or ``length``) plus ``prompt_token_ids``, ``choices[0].token_ids`` and ``agentgym``:
  ``{"episode_id", "context", "new_context", "turn", "segments"}``, the token segments this
  request added (the openai client shows extension fields in ``model_extra``).
* ``GET /v1/agentgym/episodes/<id>`` (``DELETE`` forgets it): the episode's token segments,
  one list per context (:class:`agentgym.trainer.openai_records.EpisodeRecord`). An episode is
  named by the client: header ``X-Agentgym-Episode`` or the ``user`` field. A harness outside
  agentgym reads them with :func:`agentgym.trainer.openai_records.fetch_segments`; agentgym's
  ``openai:`` policy puts them in its trajectories itself.
* ``GET /v1/models``; ``GET /health`` (no token).

One model, one engine (:class:`agentgym.trainer.engines.hf.HFEngine`); requests are served one
at a time (a lock around rendering, sampling and recording). How prompts stay token-exact
across turns is in :mod:`agentgym.trainer.openai_records`.
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from typing import Any, ClassVar

from agentgym._http import JSONHandler, JSONServer, Limits, Reply, Route, is_loopback, serve_until_interrupted
from agentgym.trainer.openai_records import (
    EPISODE_HEADER,
    ChatRequest,
    EpisodeStore,
    RequestError,
    abandon_turn,
    completion_body,
    finish_turn,
    parse_request,
    prepare_turn,
    reply_message,
    token_logprobs,
)
from agentgym.trajectory import TokenSegment

__all__ = ["ModelService", "add_commands", "serve_model"]


class ModelService:
    """The model, its chat template and the episode records behind the server (no HTTP here).

    Args:
        path: a model spec (``tiny``, ``smollm2``, a model directory or hub id).
        name: the model name the server reports (default: ``path``).
        max_tokens: the most new tokens of one reply (a request may ask for fewer).
        temperature: the default when a request gives none.
        tools: how tools are shown (``auto``, ``template``, ``block``; see :class:`ChatTokens`).
        parser: the tool-call format to read (default: the model family's).
        device: ``auto``, ``cpu`` or ``cuda``.
        threads: torch CPU threads.
        store: where episode records are kept (default: 1024 episodes, one hour idle).
    """

    def __init__(
        self,
        path: str,
        *,
        name: str | None = None,
        max_tokens: int = 512,
        temperature: float = 1.0,
        tools: str = "auto",
        parser: str | None = None,
        device: str = "auto",
        threads: int | None = None,
        store: EpisodeStore | None = None,
    ):
        import torch

        from agentgym.trainer.engines import make_engine
        from agentgym.trainer.models import load_model
        from agentgym.trainer.tokens import ChatTokens

        if threads:
            torch.set_num_threads(threads)
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.model, tokenizer = load_model(path, device=dev)
        self.tokenizer: Any = tokenizer
        self.chat = ChatTokens(self.tokenizer, tools=tools, parser=parser)
        self.engine = make_engine("hf", self.model, self.tokenizer)
        self.name = name or path
        self.max_tokens, self.temperature = max_tokens, temperature
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self.store = store or EpisodeStore()
        self.created = int(time.time())
        self._lock = threading.Lock()

    def models(self) -> dict[str, Any]:
        """The ``/v1/models`` list (this one model)."""
        return {
            "object": "list",
            "data": [{"id": self.name, "object": "model", "created": self.created, "owned_by": "agentgym"}],
        }

    def complete(self, body: dict[str, Any], episode_header: str | None = None) -> dict[str, Any]:
        """Answer one chat-completions body (:class:`RequestError` for a bad one)."""
        request = parse_request(body, episode_header)
        with self._lock:
            return self._complete(request)

    def _complete(self, request: ChatRequest) -> dict[str, Any]:
        import jinja2

        from agentgym.trainer.tokens import TemplateError

        try:
            turn = prepare_turn(self.chat, self.store, request)
        except (TemplateError, jinja2.TemplateError) as e:  # e.g. a template's raise_exception on odd roles
            raise RequestError(f"the chat template cannot render these messages: {e}", "messages") from e
        prompt = turn.context.tokens.ids()
        try:
            ids, logprobs, text, finish = self._sample(prompt, request)
        except BaseException:
            abandon_turn(turn)
            raise
        turn_no = sum(1 for m in request.messages if m.get("role") == "assistant")
        reply = reply_message(self.chat, text, request.parse_calls and bool(request.tools), turn_no)
        if reply.get("tool_calls") and finish == "stop":
            finish = "tool_calls"
        sampled = finish_turn(self.store, turn, request, ids, logprobs, text, reply)
        extras = {
            "episode_id": request.episode,
            "context": turn.index,
            "new_context": turn.new_context,
            "turn": sampled.turn,
            "segments": [_segment(s) for s in [*turn.new_segments, sampled]],
        }
        return completion_body(
            model=self.name,
            reply=reply,
            finish_reason=finish,
            prompt_ids=prompt,
            ids=ids,
            logprobs=token_logprobs(self.tokenizer, ids, logprobs) if request.logprobs else None,
            extras=extras,
        )

    def _sample(self, prompt: list[int], request: ChatRequest) -> tuple[list[int], list[float], str, str]:
        """``(ids, logprobs, text, finish_reason)`` of one completion of ``prompt``."""
        from agentgym.trainer.engines import SamplingParams

        limit = min(request.max_tokens or self.max_tokens, self.max_tokens)
        if self.context_length:
            room = self.context_length - len(prompt)
            if room <= 0:
                raise RequestError(
                    f"the prompt is {len(prompt)} tokens; the model's context is {self.context_length}", "messages"
                )
            limit = min(limit, room)
        stop_ids = set(self.chat.stop_ids)
        for s in request.stop:  # a stop string that is one token stops the engine itself
            one = self.chat.encode(s)
            if len(one) == 1:
                stop_ids.add(one[0])
        params = SamplingParams(
            max_tokens=limit,
            temperature=self.temperature if request.temperature is None else float(request.temperature),
            top_k=request.top_k or 0,
            seed=request.seed if request.seed is not None else secrets.randbits(31),
            stop_ids=tuple(sorted(stop_ids)),
        )
        (c,) = self.engine.generate([prompt], params)
        ids, logprobs, finish = list(c.ids), list(c.logprobs), c.finish_reason
        text = self._text(ids, stop_ids)
        cut = cut_at_stop(self.tokenizer, ids, text, request.stop, stop_ids) if request.stop else None
        if cut is not None:
            ids, logprobs, text, finish = ids[: cut[0]], logprobs[: cut[0]], cut[1], "stop"
        return ids, logprobs, text, finish

    def _text(self, ids: list[int], stop_ids: set[int]) -> str:
        """The reply text: the ids decoded, a trailing stop token left out."""
        kept = ids[:-1] if ids and ids[-1] in stop_ids else ids
        text: str = self.tokenizer.decode(kept, skip_special_tokens=False)
        return text

    def episode(self, episode: str) -> dict[str, Any]:
        """The recorded segments of ``episode`` (:class:`RequestError` 404 when unknown or expired)."""
        record = self.store.get(episode)
        if record is None:
            raise RequestError(f"no episode {episode!r} (never seen, or expired)", "episode", status=404)
        with self._lock:
            return record.to_dict()

    def forget(self, episode: str) -> dict[str, Any]:
        """Drop the records of ``episode``."""
        record = self.store.pop(episode)
        return {"id": episode, "deleted": record is not None}


def cut_at_stop(
    tokenizer: Any, ids: list[int], text: str, stops: list[str], stop_ids: set[int]
) -> tuple[int, str] | None:
    """``(kept ids, text)`` when a stop string occurs in ``text``: the ids up to the token completing it.

    The text is cut before the stop string (OpenAI's rule); the ids keep the token in which it
    completes, since that is what the model sampled (a token may hold text past the stop).
    """
    hits = [(text.find(s), s) for s in stops if s in text]
    if not hits:
        return None
    start, stop = min(hits)
    end = start + len(stop)
    for k in range(1, len(ids) + 1):
        prefix = ids[:k]
        if prefix[-1] in stop_ids:
            prefix = prefix[:-1]
        if len(tokenizer.decode(prefix, skip_special_tokens=False)) >= end:
            return k, text[:start]
    return len(ids), text[:start]


def _segment(s: TokenSegment) -> dict[str, Any]:
    return {"ids": s.ids, "trainable": s.trainable, "logprobs": s.logprobs, "kind": s.kind, "turn": s.turn}


class ModelHandler(JSONHandler):
    """The HTTP routes of :class:`ModelService` (the service is ``server.service``)."""

    server: ModelServer
    routes: ClassVar[tuple[Route, ...]] = (
        Route("POST", "/v1/chat/completions", "on_chat_completions"),
        Route("GET", "/v1/models", "on_list_models"),
        Route("GET", "/v1/agentgym/episodes/{episode}", "on_get_episode"),
        Route("DELETE", "/v1/agentgym/episodes/{episode}", "on_delete_episode"),
        Route("GET", "/health", "on_health", public=True),
    )

    def on_chat_completions(self, body: dict[str, Any]) -> Any:
        """``POST /v1/chat/completions``."""
        try:
            return self.server.service.complete(body, self.headers.get(EPISODE_HEADER))
        except RequestError as e:
            return Reply(e.status, e.body())

    def on_list_models(self, body: None) -> Any:
        """``GET /v1/models``."""
        return self.server.service.models()

    def on_get_episode(self, body: None, episode: str) -> Any:
        """``GET /v1/agentgym/episodes/<id>``."""
        try:
            return self.server.service.episode(episode)
        except RequestError as e:
            return Reply(e.status, e.body())

    def on_delete_episode(self, body: None, episode: str) -> Any:
        """``DELETE /v1/agentgym/episodes/<id>``."""
        return self.server.service.forget(episode)

    def on_health(self, body: None) -> Any:
        """``GET /health``: 200 when the model is loaded."""
        return {"status": "ok", "model": self.server.service.name}


class ModelServer(JSONServer):
    """A :class:`JSONServer` serving one :class:`ModelService`."""

    def __init__(
        self, address: tuple[str, int], service: ModelService, token: str | None = None, limits: Limits | None = None
    ):
        self.service = service
        super().__init__(address, ModelHandler, token=token, limits=limits or Limits(max_body=32 << 20))


def serve_model(
    service: ModelService, host: str = "127.0.0.1", port: int = 8000, token: str | None = None
) -> ModelServer:
    """A server for ``service`` bound to ``host:port`` (port 0: any free one); call ``serve_forever``.

    Raises:
        ValueError: a non-loopback ``host`` without a token.
    """
    if not token and not is_loopback(host):
        raise ValueError(
            f"serve-model on {host} (not loopback) needs a token: pass --token or set AGENTGYM_SERVE_TOKEN; "
            "clients send it as their API key"
        )
    return ModelServer((host, port), service, token=token)


def cmd_serve_model(args: argparse.Namespace) -> int:
    """``agentgym serve-model PATH``: serve the model until interrupted."""
    import os

    token = args.token or os.environ.get("AGENTGYM_SERVE_TOKEN") or None
    if not token and not is_loopback(args.host):
        raise ValueError(
            f"serve-model on {args.host} (not loopback) needs a token: pass --token or set AGENTGYM_SERVE_TOKEN"
        )
    from agentgym.trainer.models import check_spec

    check_spec(args.path)
    service = ModelService(
        args.path,
        name=args.name,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        tools=args.tools,
        parser=args.parser,
        device=args.device,
        threads=args.threads,
        store=EpisodeStore(args.max_episodes, args.episode_ttl, max_tokens=args.max_episode_tokens),
    )
    server = serve_model(service, args.host, args.port, token)
    url = f"http://{args.host}:{server.server_port}/v1"
    print(
        f"serving {service.name} at {url} (policy: openai:{url}#{service.name}; episodes: {url}/agentgym/episodes)",
        flush=True,
    )
    return serve_until_interrupted(server)


def add_commands(sub: Any) -> None:
    """Add ``serve-model`` to the ``agentgym`` parser."""
    p = sub.add_parser(
        "serve-model",
        help="serve a model over an OpenAI-compatible API, recording exact token ids and logprobs per episode",
    )
    p.add_argument("path", help="model: tiny, smollm2, a model directory or a hub id")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others need --token)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--token", default=None, help="bearer token clients must send (default: $AGENTGYM_SERVE_TOKEN)")
    p.add_argument("--name", default=None, help="model name reported by /v1/models (default: PATH)")
    p.add_argument("--max-tokens", type=int, default=512, help="most new tokens per reply (default 512)")
    p.add_argument("--temperature", type=float, default=1.0, help="temperature when a request gives none")
    p.add_argument("--tools", choices=["auto", "template", "block"], default="auto", help="how tools are shown")
    p.add_argument("--parser", default=None, help="tool-call format (default: the model family's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-episodes", type=int, default=1024, help="episode records kept (least recent dropped)")
    p.add_argument(
        "--max-episode-tokens",
        type=int,
        default=20_000_000,
        help="token ids kept over all episode records (least recent dropped; about 60 bytes each)",
    )
    p.add_argument("--episode-ttl", type=float, default=3600.0, help="seconds an idle episode record is kept")
    p.set_defaults(fn=cmd_serve_model)
