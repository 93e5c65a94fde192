from .dates import add_months
from .schedule import renewal_dates

__all__ = ["add_months", "renewal_dates"]
