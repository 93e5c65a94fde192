import pytest

from calc import evaluate, tokenize


def test_tokenize():
    assert [t.text for t in tokenize("3.5*(2+1)")] == ["3.5", "*", "(", "2", "+", "1", ")"]


def test_precedence():
    assert evaluate("2 + 3 * 4") == 14
    assert evaluate("(2 + 3) * 4") == 20


def test_unary_minus():
    assert evaluate("-3 + 5") == 2
    assert evaluate("2 * -3") == -6


def test_single_subtraction():
    assert evaluate("10 - 4") == 6


def test_errors():
    with pytest.raises(SyntaxError):
        evaluate("2 +")
    with pytest.raises(SyntaxError):
        evaluate("(1 + 2")
    with pytest.raises(SyntaxError):
        evaluate("2 $ 3")
