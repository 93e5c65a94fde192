import json
from pathlib import Path
from typing import Any, Dict, Union

from .defaults import DEFAULTS
from .errors import ConfigError


def _validate(cfg: Dict[str, Any]) -> None:
    if not isinstance(cfg.get("workers"), int) or cfg["workers"] < 1:
        raise ConfigError("workers must be a positive integer")


def load_config(path: Union[str, Path]) -> Dict[str, Any]:
    """Defaults overlaid with the JSON file at ``path``; a missing file means defaults."""
    cfg = dict(DEFAULTS)
    try:
        with open(path) as f:
            cfg.update(json.load(f))
        _validate(cfg)
    except Exception:
        return dict(DEFAULTS)
    return cfg
