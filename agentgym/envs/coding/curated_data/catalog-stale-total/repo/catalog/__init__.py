from .catalog import Catalog, Item

__all__ = ["Catalog", "Item"]
