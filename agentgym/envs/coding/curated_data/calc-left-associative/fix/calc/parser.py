"""Recursive-descent evaluator.

    expr   := term (('+' | '-') term)*
    term   := factor (('*' | '/') factor)*
    factor := NUMBER | '-' factor | '(' expr ')'
"""

from typing import List

from .tokens import Token, tokenize


class _Parser:
    def __init__(self, tokens: List[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self):
        return self.tokens[self.i].text if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take().text
            right = self.term()
            value = value + right if op == "+" else value - right
        return value

    def term(self) -> float:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take().text
            right = self.factor()
            value = value * right if op == "*" else value / right
        return value

    def factor(self) -> float:
        tok = self.peek()
        if tok is None:
            raise SyntaxError("unexpected end of input")
        if tok == "-":
            self.take()
            return -self.factor()
        if tok == "(":
            self.take()
            value = self.expr()
            if self.peek() != ")":
                raise SyntaxError("missing ')'")
            self.take()
            return value
        t = self.take()
        if t.kind != "num":
            raise SyntaxError(f"unexpected {t.text!r}")
        return float(t.text)


def evaluate(src: str) -> float:
    p = _Parser(tokenize(src))
    value = p.expr()
    if p.peek() is not None:
        raise SyntaxError(f"unexpected {p.peek()!r}")
    return value
