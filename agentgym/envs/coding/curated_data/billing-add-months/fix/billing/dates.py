import calendar
from datetime import date


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later (or earlier, if negative), clamped to the month's last day."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)
