import pytest

from bank import AccountFrozen, Bank


def test_transfer_to_frozen_account_keeps_money():
    bank = Bank()
    bank.open("A", 100)
    bank.open("B", 0).frozen = True
    with pytest.raises(AccountFrozen):
        bank.transfer("A", "B", 40)
    assert bank.accounts["A"].balance == 100
    assert bank.total() == 100
    assert bank.journal == []


def test_transfer_from_frozen_account():
    bank = Bank()
    bank.open("A", 100).frozen = True
    bank.open("B", 0)
    with pytest.raises(AccountFrozen):
        bank.transfer("A", "B", 40)
    assert bank.total() == 100


def test_unfrozen_later_works():
    bank = Bank()
    bank.open("A", 100)
    b = bank.open("B", 0)
    b.frozen = True
    with pytest.raises(AccountFrozen):
        bank.transfer("A", "B", 40)
    b.frozen = False
    bank.transfer("A", "B", 40)
    assert (bank.accounts["A"].balance, b.balance) == (60, 40)
