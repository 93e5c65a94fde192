from decimal import Decimal

from catalog import Catalog


def test_total_reflects_price_change():
    c = Catalog()
    c.add("apple", "0.50", 10)
    assert c.total_value() == Decimal("5.00")
    c.update_price("apple", "0.70")
    assert c.total_value() == Decimal("7.00")


def test_most_valuable_reflects_price_change():
    c = Catalog()
    c.add("apple", "0.50", 10)
    c.add("pear", "0.80", 5)
    assert c.most_valuable() == "apple"
    c.update_price("pear", "2.00")
    assert c.most_valuable() == "pear"


def test_price_change_before_first_query():
    c = Catalog()
    c.add("fig", "1.00", 3)
    c.update_price("fig", "2.00")
    assert c.total_value() == Decimal("6.00")
