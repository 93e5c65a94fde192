from leaderboard import Leaderboard
from leaderboard.clock import FakeClock


def test_tie_goes_to_earlier_player():
    lb = Leaderboard(FakeClock())
    lb.submit("early", 100)
    lb.submit("late", 100)
    assert lb.top(2) == ["early", "late"]


def test_tie_order_among_many():
    lb = Leaderboard(FakeClock())
    for name in ["a", "b", "c"]:
        lb.submit(name, 5)
    lb.submit("d", 9)
    assert lb.top(4) == ["d", "a", "b", "c"]
    assert lb.rank_of("c") == 4
