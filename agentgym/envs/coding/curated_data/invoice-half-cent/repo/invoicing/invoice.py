from dataclasses import dataclass, field
from typing import List

from .money import format_amount, to_cents


@dataclass
class Line:
    description: str
    quantity: int
    unit_price: str  # decimal string, e.g. "19.99"

    def total_cents(self) -> int:
        return to_cents(self.quantity * float(self.unit_price))


@dataclass
class Invoice:
    lines: List[Line] = field(default_factory=list)
    tax_rate: str = "0"

    def subtotal_cents(self) -> int:
        return sum(line.total_cents() for line in self.lines)

    def tax_cents(self) -> int:
        return to_cents(self.subtotal_cents() / 100 * float(self.tax_rate))

    def total(self) -> str:
        return format_amount(self.subtotal_cents() + self.tax_cents())
