from .errors import ConfigError
from .loader import load_config

__all__ = ["ConfigError", "load_config"]
