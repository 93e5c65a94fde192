from typing import List

from .errors import CycleError
from .graph import DependencyGraph


def install_order(graph: DependencyGraph, target: str) -> List[str]:
    """Packages to install for ``target``, every package after its requirements."""
    order: List[str] = []
    done = set()

    def visit(pkg: str, path: List[str]) -> None:
        if pkg in done:
            return
        if pkg in path:
            raise CycleError(path[path.index(pkg):] + [pkg])
        for req in graph.requirements(pkg):
            visit(req, path + [pkg])
        done.add(pkg)
        order.append(pkg)

    visit(target, [])
    return order
