from dataclasses import dataclass, field
from typing import Dict, List

from .lexer import split


@dataclass
class Command:
    name: str
    args: List[str] = field(default_factory=list)
    options: Dict[str, str] = field(default_factory=dict)


def parse_command(line: str) -> Command:
    """``name [--key=value | --flag | arg]...``; a flag gets the value ``"true"``."""
    words = split(line)
    if not words:
        raise ValueError("empty command")
    cmd = Command(words[0])
    for word in words[1:]:
        if word.startswith("--"):
            key, sep, value = word[2:].partition("=")
            cmd.options[key] = value if sep else "true"
        else:
            cmd.args.append(word)
    return cmd
