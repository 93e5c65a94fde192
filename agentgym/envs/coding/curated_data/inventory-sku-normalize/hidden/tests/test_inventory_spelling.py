import pytest

from warehouse import Inventory


def test_receive_with_other_spelling_is_found():
    inv = Inventory()
    inv.receive("ab_12", 5)
    assert inv.quantity("AB-12") == 5


def test_spellings_accumulate():
    inv = Inventory()
    inv.receive("ab-12", 2)
    inv.receive(" AB 12 ", 3)
    assert inv.quantity("Ab-12") == 5
    assert inv.skus() == ["AB-12"]


def test_ship_after_lowercase_receive():
    inv = Inventory()
    inv.receive("x-1", 4)
    inv.ship("X-1", 4)
    assert inv.skus() == []


def test_receive_rejects_invalid_sku():
    with pytest.raises(ValueError):
        Inventory().receive("a/b", 1)
