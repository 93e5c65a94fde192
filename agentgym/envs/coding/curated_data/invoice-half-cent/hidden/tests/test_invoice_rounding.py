from invoicing import Invoice, Line


def test_half_cent_rounds_up():
    assert Line("x", 1, "0.125").total_cents() == 13


def test_half_cent_rounds_up_for_odd_cents():
    assert Line("x", 1, "1.005").total_cents() == 101


def test_quantity_times_price_exact():
    assert Line("x", 3, "1.115").total_cents() == 335


def test_tax_half_cent():
    inv = Invoice([Line("a", 1, "0.25")], tax_rate="0.1")
    assert inv.tax_cents() == 3
    assert inv.total() == "0.28"


def test_plain_amounts_unchanged():
    assert Invoice([Line("a", 2, "19.99")]).total() == "39.98"
