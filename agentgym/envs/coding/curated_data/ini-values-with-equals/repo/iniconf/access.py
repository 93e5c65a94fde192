from typing import Dict

Config = Dict[str, Dict[str, str]]

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


def get_bool(cfg: Config, section: str, key: str, default: bool = False) -> bool:
    value = cfg.get(section, {}).get(key)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"[{section}] {key}: not a boolean: {value!r}")


def get_int(cfg: Config, section: str, key: str, default: int = 0) -> int:
    value = cfg.get(section, {}).get(key)
    return default if value is None else int(value)
