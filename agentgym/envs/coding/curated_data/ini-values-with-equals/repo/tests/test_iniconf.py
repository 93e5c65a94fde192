import pytest

from iniconf import ParseError, get_bool, get_int, parse_ini

TEXT = """
# comment
[server]
Port = 8080
debug = yes

[paths]
root = /srv/app
"""


def test_parse():
    cfg = parse_ini(TEXT)
    assert cfg == {"server": {"port": "8080", "debug": "yes"}, "paths": {"root": "/srv/app"}}


def test_accessors():
    cfg = parse_ini(TEXT)
    assert get_int(cfg, "server", "port") == 8080
    assert get_bool(cfg, "server", "debug") is True
    assert get_bool(cfg, "server", "missing", True) is True


def test_errors():
    with pytest.raises(ParseError):
        parse_ini("key = 1")
    with pytest.raises(ParseError):
        parse_ini("[s]\njunk")
