from decimal import ROUND_HALF_UP, Decimal
from typing import Union


def to_cents(amount: Union[Decimal, float, str]) -> int:
    """Round a currency amount to whole cents (half a cent rounds up, as on paper invoices)."""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def format_amount(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"
