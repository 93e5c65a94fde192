from versions import latest, parse, satisfies_minimum


def test_multi_digit_components():
    assert parse("1.10.0") > parse("1.9.0")
    assert parse("10.0") > parse("9.1")


def test_latest_multi_digit():
    assert latest(["0.9.0", "0.10.0", "0.2.0"]) == "0.10.0"


def test_minimum_multi_digit():
    assert satisfies_minimum("3.10", "3.9")
    assert not satisfies_minimum("3.9", "3.10")


def test_leading_zero_component():
    assert parse("1.02") == parse("1.2")
