from roman import from_roman, to_roman


def test_forty_and_ninety():
    assert to_roman(40) == "XL"
    assert to_roman(90) == "XC"


def test_four_and_nine_hundred():
    assert to_roman(400) == "CD"
    assert to_roman(900) == "CM"


def test_year():
    assert to_roman(1994) == "MCMXCIV"


def test_round_trip():
    assert all(from_roman(to_roman(i)) == i for i in range(1, 4000))


def test_thirty_eight():
    assert to_roman(38) == "XXXVIII"
