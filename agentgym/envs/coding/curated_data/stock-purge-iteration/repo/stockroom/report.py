from .stock import Stock


def low_stock_report(stock: Stock, threshold: int = 5) -> str:
    lines = [f"{sku}: {qty}" for sku, qty in sorted(stock.levels.items()) if qty < threshold]
    return "\n".join(lines) if lines else "all stocked"
