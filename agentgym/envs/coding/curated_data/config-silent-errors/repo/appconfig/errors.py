class ConfigError(Exception):
    """The configuration exists but cannot be used."""
