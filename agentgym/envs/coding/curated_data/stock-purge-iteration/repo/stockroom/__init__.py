from .stock import Stock
from .report import low_stock_report

__all__ = ["Stock", "low_stock_report"]
