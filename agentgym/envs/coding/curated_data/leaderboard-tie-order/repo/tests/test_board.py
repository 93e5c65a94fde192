from leaderboard import Leaderboard
from leaderboard.clock import FakeClock


def test_higher_score_first():
    lb = Leaderboard(FakeClock())
    lb.submit("ann", 10)
    lb.submit("bob", 30)
    lb.submit("cy", 20)
    assert lb.top(3) == ["bob", "cy", "ann"]


def test_only_best_score_counts():
    lb = Leaderboard(FakeClock())
    lb.submit("ann", 50)
    lb.submit("ann", 10)
    lb.submit("bob", 40)
    assert lb.rank_of("ann") == 1
