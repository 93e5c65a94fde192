from cmdline import parse_command, split


def test_empty_double_quoted_word_is_kept():
    assert split('set name ""') == ["set", "name", ""]


def test_empty_single_quoted_word_is_kept():
    assert split("grep '' file.txt") == ["grep", "", "file.txt"]


def test_empty_argument_reaches_the_command():
    cmd = parse_command('rename old "" --dry-run')
    assert cmd.args == ["old", ""]


def test_quote_adjacent_to_text():
    assert split('pre"fix"ed') == ["prefixed"]
