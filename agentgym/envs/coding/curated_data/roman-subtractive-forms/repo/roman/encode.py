from .symbols import TABLE


def to_roman(n: int) -> str:
    if not 0 < n < 4000:
        raise ValueError("roman numerals cover 1..3999")
    out = []
    for value, numeral in TABLE:
        count, n = divmod(n, value)
        out.append(numeral * count)
    return "".join(out)
