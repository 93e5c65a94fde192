from .inventory import Inventory
from .sku import normalize_sku

__all__ = ["Inventory", "normalize_sku"]
