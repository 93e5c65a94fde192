"""GRPO for whole multi-turn episodes of agentgym environments (torch; CPU, or GPU with vLLM).

    from agentgym.trainer import GRPOConfig, train
    train(GRPOConfig(env="agentgym/Calculator-v0", model="tiny", steps=10))

``train`` is imported lazily, so ``agentgym train --help`` (and the core CLI) never import torch.
"""

from typing import TYPE_CHECKING, Any

from agentgym.trainer.config import GRPOConfig

if TYPE_CHECKING:  # the type checker sees the real signatures; at run time they load on first use
    from agentgym.trainer.loop import Trainer, train

__all__ = ["GRPOConfig", "Trainer", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "Trainer"):
        from agentgym.trainer import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'agentgym.trainer' has no attribute {name!r}")
