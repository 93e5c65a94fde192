from collections import defaultdict
from typing import Dict, List, Set


class DependencyGraph:
    def __init__(self) -> None:
        self.deps: Dict[str, Set[str]] = defaultdict(set)

    def add(self, package: str, *requires: str) -> "DependencyGraph":
        self.deps[package].update(requires)
        for r in requires:
            self.deps.setdefault(r, set())
        return self

    def requirements(self, package: str) -> List[str]:
        return sorted(self.deps.get(package, ()))
