from typing import Dict, List


class Stock:
    def __init__(self, levels: Dict[str, int] = None) -> None:
        self.levels: Dict[str, int] = dict(levels or {})

    def take(self, sku: str, qty: int) -> None:
        have = self.levels.get(sku, 0)
        if qty > have:
            raise ValueError(f"only {have} of {sku} left")
        self.levels[sku] = have - qty

    def purge_empty(self) -> List[str]:
        """Forget SKUs with no stock left; returns the purged SKUs in order."""
        purged = [sku for sku, qty in self.levels.items() if qty == 0]
        for sku in purged:
            del self.levels[sku]
        return purged
