from dataclasses import dataclass, field
from decimal import Decimal
from typing import List

from .money import format_amount, to_cents


@dataclass
class Line:
    description: str
    quantity: int
    unit_price: str  # decimal string, e.g. "19.99"

    def total_cents(self) -> int:
        return to_cents(self.quantity * Decimal(self.unit_price))


@dataclass
class Invoice:
    lines: List[Line] = field(default_factory=list)
    tax_rate: str = "0"

    def subtotal_cents(self) -> int:
        return sum(line.total_cents() for line in self.lines)

    def tax_cents(self) -> int:
        return to_cents(Decimal(self.subtotal_cents()) / 100 * Decimal(self.tax_rate))

    def total(self) -> str:
        return format_amount(self.subtotal_cents() + self.tax_cents())
