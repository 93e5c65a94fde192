from typing import List


def wrap(text: str, width: int) -> List[str]:
    """Greedy word wrap; lines are at most ``width`` characters (longer words get their own line)."""
    if width < 1:
        raise ValueError("width must be positive")
    lines: List[str] = []
    line = ""
    for word in text.split():
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines
