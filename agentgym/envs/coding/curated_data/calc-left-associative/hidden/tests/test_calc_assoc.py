from calc import evaluate


def test_subtraction_is_left_associative():
    assert evaluate("10 - 4 - 3") == 3


def test_division_is_left_associative():
    assert evaluate("100 / 10 / 5") == 2


def test_mixed_chain():
    assert evaluate("8 - 2 + 1") == 7
    assert evaluate("2 * 6 / 3 * 2") == 8


def test_addition_chain_unchanged():
    assert evaluate("1 + 2 + 3") == 6
