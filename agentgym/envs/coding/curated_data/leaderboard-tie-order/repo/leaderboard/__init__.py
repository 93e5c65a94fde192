from .board import Leaderboard, Entry

__all__ = ["Leaderboard", "Entry"]
