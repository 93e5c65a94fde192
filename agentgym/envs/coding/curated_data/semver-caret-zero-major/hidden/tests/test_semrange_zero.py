from semrange import parse_range


def test_caret_zero_major_locks_minor():
    r = parse_range("^0.2.3")
    assert "0.2.3" in r and "0.2.9" in r
    assert "0.3.0" not in r


def test_caret_zero_minor_locks_patch():
    r = parse_range("^0.0.3")
    assert "0.0.3" in r
    assert "0.0.4" not in r


def test_caret_one_unchanged():
    assert "1.5.0" in parse_range("^1.0.0")
