from .accounts import Account, AccountFrozen, InsufficientFunds
from .ledger import Bank

__all__ = ["Account", "AccountFrozen", "InsufficientFunds", "Bank"]
