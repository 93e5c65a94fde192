from typing import Dict

from .sku import normalize_sku


class Inventory:
    def __init__(self) -> None:
        self._qty: Dict[str, int] = {}

    def receive(self, sku: str, qty: int) -> None:
        if qty <= 0:
            raise ValueError("quantity must be positive")
        key = normalize_sku(sku)
        self._qty[key] = self._qty.get(key, 0) + qty

    def ship(self, sku: str, qty: int) -> None:
        key = normalize_sku(sku)
        have = self._qty.get(key, 0)
        if qty > have:
            raise ValueError(f"cannot ship {qty} x {key}: only {have} in stock")
        self._qty[key] = have - qty

    def quantity(self, sku: str) -> int:
        return self._qty.get(normalize_sku(sku), 0)

    def skus(self):
        return sorted(k for k, v in self._qty.items() if v > 0)
