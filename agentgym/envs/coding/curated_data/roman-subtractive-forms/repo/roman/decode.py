from .symbols import VALUES


def from_roman(s: str) -> int:
    if not s or any(ch not in VALUES for ch in s):
        raise ValueError(f"not a roman numeral: {s!r}")
    total = 0
    for i, ch in enumerate(s):
        v = VALUES[ch]
        if i + 1 < len(s) and VALUES[s[i + 1]] > v:
            total -= v
        else:
            total += v
    return total
