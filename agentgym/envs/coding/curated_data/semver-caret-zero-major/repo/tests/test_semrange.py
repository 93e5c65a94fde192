from semrange import SemVer, parse_range


def test_caret_major():
    r = parse_range("^1.2.3")
    assert "1.2.3" in r and "1.9.0" in r
    assert "2.0.0" not in r and "1.2.2" not in r


def test_tilde():
    r = parse_range("~1.2.3")
    assert "1.2.9" in r and "1.3.0" not in r


def test_exact_and_minimum():
    assert "1.0.0" in parse_range("=1.0.0") and "1.0.1" not in parse_range("1.0.0")
    assert SemVer(9, 9, 9) in parse_range(">=1.0.0")
