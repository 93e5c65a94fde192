def to_cents(amount: float) -> int:
    """Round a currency amount to whole cents (half a cent rounds up, as on paper invoices)."""
    return int(round(amount * 100))


def format_amount(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"
