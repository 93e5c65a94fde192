from typing import List


class CycleError(ValueError):
    def __init__(self, cycle: List[str]) -> None:
        super().__init__("dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle
