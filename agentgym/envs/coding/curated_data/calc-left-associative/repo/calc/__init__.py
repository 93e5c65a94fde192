from .tokens import tokenize, Token
from .parser import evaluate

__all__ = ["tokenize", "Token", "evaluate"]
