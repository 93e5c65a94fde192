from typing import Dict


class ParseError(ValueError):
    pass


def parse_ini(text: str) -> Dict[str, Dict[str, str]]:
    """Sections of ``key = value`` lines; ``#`` and ``;`` start comment lines."""
    data: Dict[str, Dict[str, str]] = {}
    section = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            data.setdefault(section, {})
            continue
        if section is None:
            raise ParseError(f"line {n}: key outside of a section")
        if "=" not in line:
            raise ParseError(f"line {n}: expected key = value")
        key, value = line.split("=", 1)
        data[section][key.strip().lower()] = value.strip()
    return data
