from iniconf import parse_ini


def test_value_containing_equals_sign():
    cfg = parse_ini("[db]\nurl = postgres://h/db?sslmode=require\n")
    assert cfg["db"]["url"] == "postgres://h/db?sslmode=require"


def test_base64_padding_kept():
    cfg = parse_ini("[auth]\ntoken = dGVzdA==\n")
    assert cfg["auth"]["token"] == "dGVzdA=="


def test_empty_value():
    assert parse_ini("[a]\nkey =\n") == {"a": {"key": ""}}
