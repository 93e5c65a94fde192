DEFAULTS = {"debug": False, "workers": 4, "log_level": "info"}
