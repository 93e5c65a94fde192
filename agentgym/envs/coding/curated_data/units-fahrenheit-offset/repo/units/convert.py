from .tables import LENGTH, TEMPERATURE

_KINDS = (LENGTH, TEMPERATURE)


class UnknownUnit(ValueError):
    pass


def convert(value: float, src: str, dst: str) -> float:
    for table in _KINDS:
        if src in table and dst in table:
            to_base, _ = table[src]
            _, from_base = table[dst]
            return round(from_base(to_base(value)), 9)
    known = sorted(u for t in _KINDS for u in t)
    raise UnknownUnit(f"cannot convert {src!r} to {dst!r}; known units: {', '.join(known)}")
