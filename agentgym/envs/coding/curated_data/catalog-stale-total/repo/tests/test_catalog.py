from decimal import Decimal

from catalog import Catalog


def make():
    c = Catalog()
    c.add("apple", "0.50", 10)
    c.add("pear", "0.80", 5)
    return c


def test_total_value():
    assert make().total_value() == Decimal("9.00")


def test_total_after_restock_and_remove():
    c = make()
    assert c.total_value() == Decimal("9.00")
    c.restock("pear", 5)
    assert c.total_value() == Decimal("13.00")
    c.remove("apple")
    assert c.total_value() == Decimal("8.00")


def test_most_valuable():
    assert make().most_valuable() == "apple"
