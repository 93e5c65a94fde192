from datetime import date
from typing import List

from .dates import add_months


def renewal_dates(start: date, count: int, every_months: int = 1) -> List[date]:
    """The next ``count`` renewal dates of a subscription that started on ``start``.

    Renewals are computed from the start date (not from the previous renewal), so a
    subscription started on the 31st renews on the 31st whenever the month has one.
    """
    return [add_months(start, every_months * k) for k in range(1, count + 1)]
