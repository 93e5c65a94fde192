from .errors import CycleError
from .graph import DependencyGraph
from .order import install_order

__all__ = ["CycleError", "DependencyGraph", "install_order"]
