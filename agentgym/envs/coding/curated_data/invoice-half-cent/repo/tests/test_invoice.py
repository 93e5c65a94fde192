from invoicing import Invoice, Line, to_cents


def test_simple_total():
    inv = Invoice([Line("widget", 2, "19.99"), Line("gadget", 1, "5.00")])
    assert inv.total() == "44.98"


def test_tax():
    inv = Invoice([Line("a", 1, "100.00")], tax_rate="0.2")
    assert inv.total() == "120.00"


def test_to_cents_plain():
    assert to_cents(1.2) == 120
