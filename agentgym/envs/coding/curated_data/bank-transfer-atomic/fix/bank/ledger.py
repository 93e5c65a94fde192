from typing import Dict, List, Tuple

from .accounts import Account


class Bank:
    def __init__(self) -> None:
        self.accounts: Dict[str, Account] = {}
        self.journal: List[Tuple[str, str, int]] = []

    def open(self, number: str, balance: int = 0) -> Account:
        acc = self.accounts[number] = Account(number, balance)
        return acc

    def transfer(self, src: str, dst: str, amount: int) -> None:
        """Move ``amount`` cents from ``src`` to ``dst``: all or nothing."""
        a, b = self.accounts[src], self.accounts[dst]
        a.withdraw(amount)
        try:
            b.deposit(amount)
        except Exception:
            a.balance += amount  # undo the withdrawal
            raise
        self.journal.append((src, dst, amount))

    def total(self) -> int:
        return sum(a.balance for a in self.accounts.values())
