from csvlite import parse_line, to_records


def test_doubled_quote_is_a_literal_quote():
    assert parse_line('"say ""hi""",x') == ['say "hi"', "x"]


def test_field_that_is_only_a_quote():
    assert parse_line('"""",b') == ['"', "b"]


def test_empty_quoted_field():
    assert parse_line('"",b') == ["", "b"]


def test_records_with_escaped_quotes():
    rows = to_records(['title,rating\n', '"The ""Best"" Film",5\n'])
    assert rows == [{"title": 'The "Best" Film', "rating": "5"}]
