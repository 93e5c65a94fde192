from dataclasses import dataclass
from decimal import Decimal
from typing import Dict

from .cache import cached, invalidate


@dataclass
class Item:
    sku: str
    price: Decimal
    quantity: int


class Catalog:
    def __init__(self) -> None:
        self._items: Dict[str, Item] = {}

    def add(self, sku: str, price: str, quantity: int = 0) -> None:
        self._items[sku] = Item(sku, Decimal(price), quantity)
        invalidate(self, "total_value", "most_valuable")

    def remove(self, sku: str) -> None:
        del self._items[sku]
        invalidate(self, "total_value", "most_valuable")

    def update_price(self, sku: str, price: str) -> None:
        self._items[sku].price = Decimal(price)

    def restock(self, sku: str, quantity: int) -> None:
        self._items[sku].quantity += quantity
        invalidate(self, "total_value", "most_valuable")

    @cached
    def total_value(self) -> Decimal:
        return sum((i.price * i.quantity for i in self._items.values()), Decimal("0"))

    @cached
    def most_valuable(self) -> str:
        return max(self._items.values(), key=lambda i: i.price * i.quantity).sku
