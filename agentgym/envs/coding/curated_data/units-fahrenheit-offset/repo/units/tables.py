"""Each unit maps to (to_base, from_base) functions; bases are metre and degree Celsius."""

LENGTH = {
    "m": (lambda v: v, lambda v: v),
    "km": (lambda v: v * 1000, lambda v: v / 1000),
    "cm": (lambda v: v / 100, lambda v: v * 100),
    "in": (lambda v: v * 0.0254, lambda v: v / 0.0254),
    "ft": (lambda v: v * 0.3048, lambda v: v / 0.3048),
}

TEMPERATURE = {
    "C": (lambda v: v, lambda v: v),
    "K": (lambda v: v - 273.15, lambda v: v + 273.15),
    "F": (lambda v: (v - 32) * 5 / 9, lambda v: v * 9 / 5),
}
