import json

from appconfig import load_config


def test_missing_file_gives_defaults(tmp_path):
    assert load_config(tmp_path / "nope.json") == {"debug": False, "workers": 4, "log_level": "info"}


def test_overrides(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"debug": True, "workers": 8}))
    assert load_config(p) == {"debug": True, "workers": 8, "log_level": "info"}
