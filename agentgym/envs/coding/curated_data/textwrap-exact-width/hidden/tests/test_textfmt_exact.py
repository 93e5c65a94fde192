from textfmt import justify, wrap


def test_line_of_exactly_width_fits():
    assert wrap("hello world", 11) == ["hello world"]


def test_exact_fit_in_the_middle():
    assert wrap("aa bb cc dd", 5) == ["aa bb", "cc dd"]


def test_justify_uses_full_width():
    assert justify("a bb ccc dddd", 8) == ["a bb ccc", "dddd"]


def test_wrapped_lines_never_exceed_width():
    text = "lorem ipsum dolor sit amet consectetur adipiscing elit"
    for w in range(5, 30):
        assert all(len(line) <= w for line in wrap(text, w) if " " in line)
        assert " ".join(wrap(text, w)) == text
