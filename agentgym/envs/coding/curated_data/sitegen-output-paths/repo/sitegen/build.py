from typing import Dict, Iterable

from .paths import output_path


def plan_build(sources: Iterable[str], src_root: str, out_root: str) -> Dict[str, str]:
    """Map each source file to its output file; refuse outputs that collide."""
    plan: Dict[str, str] = {}
    seen: Dict[str, str] = {}
    for src in sorted(sources):
        out = output_path(src, src_root, out_root)
        if out in seen:
            raise ValueError(f"{src} and {seen[out]} both build {out}")
        seen[out] = src
        plan[src] = out
    return plan
