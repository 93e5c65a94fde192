from .version import Version, parse
from .select import latest, satisfies_minimum

__all__ = ["Version", "parse", "latest", "satisfies_minimum"]
