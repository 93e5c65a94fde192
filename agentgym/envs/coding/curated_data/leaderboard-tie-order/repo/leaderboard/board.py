from dataclasses import dataclass
from typing import List

from .clock import Clock


@dataclass(frozen=True)
class Entry:
    player: str
    score: int
    at: float  # when the score was reached


class Leaderboard:
    """Higher scores rank first; on a tie, whoever reached the score first ranks higher."""

    def __init__(self, clock=None) -> None:
        self._clock = clock or Clock()
        self._best: dict = {}

    def submit(self, player: str, score: int) -> None:
        old = self._best.get(player)
        if old is None or score > old.score:
            self._best[player] = Entry(player, score, self._clock.now())

    def ranking(self) -> List[Entry]:
        return sorted(self._best.values(), key=lambda e: (e.score, e.at), reverse=True)

    def top(self, n: int) -> List[str]:
        return [e.player for e in self.ranking()[:n]]

    def rank_of(self, player: str) -> int:
        return [e.player for e in self.ranking()].index(player) + 1
