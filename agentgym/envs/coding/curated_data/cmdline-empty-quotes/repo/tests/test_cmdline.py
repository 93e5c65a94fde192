import pytest

from cmdline import LexError, parse_command, split


def test_plain_words():
    assert split("git  commit -m msg") == ["git", "commit", "-m", "msg"]


def test_quotes_group_words():
    assert split('echo "hello world" \'a b\'') == ["echo", "hello world", "a b"]


def test_escapes():
    assert split(r'say \"hi\" "a \"b\""') == ["say", '"hi"', 'a "b"']


def test_unterminated_quote():
    with pytest.raises(LexError):
        split('echo "oops')


def test_parse_command_options():
    cmd = parse_command("deploy app --env=prod --force")
    assert cmd.name == "deploy" and cmd.args == ["app"]
    assert cmd.options == {"env": "prod", "force": "true"}
