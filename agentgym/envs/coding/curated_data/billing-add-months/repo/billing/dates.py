from datetime import date


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later (or earlier, if negative)."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    return d.replace(year=year, month=month)
