import re

_SKU = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")


def normalize_sku(raw: str) -> str:
    """Canonical SKU: trimmed, upper case, '_' and spaces turned into '-'."""
    sku = re.sub(r"[\s_]+", "-", raw.strip()).upper()
    if not _SKU.match(sku):
        raise ValueError(f"invalid SKU {raw!r}")
    return sku
