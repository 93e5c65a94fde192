import json

import pytest

from appconfig import ConfigError, load_config


def test_malformed_json_is_reported(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"workers": 8,}')
    with pytest.raises(ConfigError, match="c.json"):
        load_config(p)


def test_invalid_value_is_reported(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"workers": 0}))
    with pytest.raises(ConfigError, match="workers"):
        load_config(p)


def test_missing_file_still_gives_defaults(tmp_path):
    assert load_config(tmp_path / "absent.json")["workers"] == 4
