"""HF transformers engine: a hand-written batched sampling loop with a KV cache.

Why not ``model.generate``: its scores are post-processed in ways that are awkward to map
back to the distribution actually sampled; here the logprob of each token is read from the
very ``log_softmax`` it was drawn from. Prompts are left-padded (attention mask and
position ids from lengths); identical prompts (the G episodes of a group on turn 1) are
prefilled once and their cache rows copied; finished rows leave the batch.

Seeds: with one seed per call (``SamplingParams.seed``) the rows draw from one generator, so a
row's sample depends on the batch it shares. With per-prompt seeds (``SamplingParams.seeds``)
each row draws from its own generator: a prompt's sample is a function of its seed, whatever
batch it lands in (what overlapped rollouts need; up to floating-point differences of batched
kernels, which can move a log-prob in its last bits).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import DynamicCache

from agentgym.trainer.engines.base import Completion, SamplingParams


class HFEngine:
    """Samples with the training model itself (no weight copy), batched, on its device."""

    def __init__(self, model: Any, tokenizer: Any, max_batch: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def sync_weights(self, model: Any) -> None:
        """Sample with ``model`` from now on."""
        self.model = model

    def _cache_kw(self, cache: DynamicCache) -> dict[str, Any]:
        """The model's KV-cache keyword: ``cache=`` (transformers >= 5.24) or ``past_key_values=`` (older).

        transformers 5.24 renamed the ``forward`` keyword and deprecated the old name for removal
        in 5.40; the name is read from the signature of the underlying model's ``forward`` (a
        PEFT wrapper forwards ``**kwargs``, so its own signature says nothing).
        """
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return {cache_keyword(base): cache}

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """Sample one completion per prompt, ``max_batch`` prompts at a time."""
        limits = params.limits(len(prompts))
        seeds = params.prompt_seeds(len(prompts))
        out: list[Completion] = []
        for start in range(0, len(prompts), self.max_batch):
            chunk = slice(start, start + self.max_batch)
            out += self._generate(
                prompts[chunk], limits[chunk], params, params.seed + start, seeds[chunk] if seeds else None
            )
        return out

    @torch.no_grad()
    def _generate(
        self,
        prompts: Sequence[Sequence[int]],
        limits: list[int],
        params: SamplingParams,
        seed: int,
        seeds: list[int] | None,
    ) -> list[Completion]:
        model = self.model
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        stop = torch.tensor(sorted(params.stop_ids) or [-1], device=device)
        gen = torch.Generator(device=device).manual_seed(seed)
        # per-prompt streams: prompt i's draws never depend on which other prompts share the batch
        gens = [torch.Generator(device=device).manual_seed(s % 2**64) for s in seeds] if seeds else None

        unique: dict[tuple[int, ...], int] = {}
        rows = [unique.setdefault(tuple(p), len(unique)) for p in prompts]
        uniq = list(unique)
        width = max(len(p) for p in uniq)
        ids = torch.full((len(uniq), width), self.pad_id, dtype=torch.long, device=device)  # (U, L)
        mask = torch.zeros((len(uniq), width), dtype=torch.long, device=device)  # (U, L)
        for i, p in enumerate(uniq):
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p) :] = 1
        position = (mask.cumsum(-1) - 1).clamp(min=0)  # (U, L)
        cache = DynamicCache()
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position,
            **self._cache_kw(cache),
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]  # (U, V)
        select = torch.tensor(rows, device=device)
        cache.batch_select_indices(select)
        logits, mask, position = logits[select], mask[select], position[select, -1:]  # (B, V), (B, L), (B, 1)

        n = len(prompts)
        alive = list(range(n))  # batch row -> prompt index
        sampled: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        finish = ["length"] * n
        while alive:
            logits = logits.float()
            if params.temperature > 0:
                scaled = logits / params.temperature
                if params.top_k > 0:
                    kth = torch.topk(scaled, min(params.top_k, scaled.shape[-1]), dim=-1).values[:, -1:]
                    scaled = scaled.masked_fill(scaled < kth, float("-inf"))
                logp_all = torch.log_softmax(scaled, dim=-1)  # (B, V)
                probs = logp_all.exp()  # (B, V)
                if gens is None:
                    token = torch.multinomial(probs, 1, generator=gen).squeeze(-1)  # (B,)
                else:
                    token = torch.cat(
                        [torch.multinomial(probs[r], 1, generator=gens[i]) for r, i in enumerate(alive)]
                    )  # (B,)
            else:
                logp_all = torch.log_softmax(logits, dim=-1)
                token = logp_all.argmax(-1)
            token_logp = logp_all.gather(-1, token[:, None]).squeeze(-1)  # (B,)
            is_stop = torch.isin(token, stop)
            keep = []
            for row, (i, t, lp, s) in enumerate(
                zip(alive, token.tolist(), token_logp.tolist(), is_stop.tolist(), strict=True)
            ):
                sampled[i].append(t)
                logps[i].append(lp)
                if s:
                    finish[i] = "stop"
                elif len(sampled[i]) < limits[i]:
                    keep.append(row)
            if not keep:
                break
            if len(keep) < len(alive):
                k = torch.tensor(keep, device=device)
                cache.batch_select_indices(k)
                token, mask, position = token[k], mask[k], position[k]
                alive = [alive[r] for r in keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            position = position + 1
            logits = model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=position,
                **self._cache_kw(cache),
                use_cache=True,
            ).logits[:, -1]
        if was_training:
            model.train()
        return [Completion(s, lp, f) for s, lp, f in zip(sampled, logps, finish, strict=True)]


def cache_keyword(model: Any) -> str:
    """``cache`` when ``model.forward`` takes it (transformers >= 5.24), else ``past_key_values``."""
    return _cache_keyword(type(model).forward)


@functools.cache
def _cache_keyword(forward: Callable[..., Any]) -> str:
    params = inspect.signature(forward).parameters
    return "cache" if "cache" in params else "past_key_values"
