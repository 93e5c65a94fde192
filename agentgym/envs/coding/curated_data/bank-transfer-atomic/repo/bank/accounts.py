class InsufficientFunds(Exception):
    pass


class AccountFrozen(Exception):
    pass


class Account:
    def __init__(self, number: str, balance: int = 0) -> None:
        self.number = number
        self.balance = balance  # cents
        self.frozen = False

    def deposit(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("deposit must be positive")
        if self.frozen:
            raise AccountFrozen(self.number)
        self.balance += amount

    def withdraw(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("withdrawal must be positive")
        if self.frozen:
            raise AccountFrozen(self.number)
        if amount > self.balance:
            raise InsufficientFunds(f"{self.number}: balance {self.balance} < {amount}")
        self.balance -= amount
