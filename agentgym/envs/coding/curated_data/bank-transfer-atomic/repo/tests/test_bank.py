import pytest

from bank import Bank, InsufficientFunds


def test_transfer():
    bank = Bank()
    bank.open("A", 100)
    bank.open("B", 0)
    bank.transfer("A", "B", 30)
    assert (bank.accounts["A"].balance, bank.accounts["B"].balance) == (70, 30)
    assert bank.journal == [("A", "B", 30)]


def test_insufficient_funds_changes_nothing():
    bank = Bank()
    bank.open("A", 10)
    bank.open("B", 0)
    with pytest.raises(InsufficientFunds):
        bank.transfer("A", "B", 50)
    assert bank.total() == 10 and bank.journal == []
