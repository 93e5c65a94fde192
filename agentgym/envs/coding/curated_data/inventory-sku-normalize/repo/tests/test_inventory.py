import pytest

from warehouse import Inventory, normalize_sku


def test_normalize():
    assert normalize_sku(" ab_12 ") == "AB-12"
    with pytest.raises(ValueError):
        normalize_sku("a/b")


def test_receive_and_ship_canonical():
    inv = Inventory()
    inv.receive("AB-12", 5)
    inv.ship("ab-12", 2)
    assert inv.quantity("AB-12") == 3


def test_cannot_oversell():
    inv = Inventory()
    inv.receive("X-1", 1)
    with pytest.raises(ValueError):
        inv.ship("X-1", 2)
