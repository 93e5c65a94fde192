from ratelimit import KeyedLimiter, ManualClock, TokenBucket


def test_idle_time_does_not_exceed_capacity():
    clock = ManualClock()
    b = TokenBucket(rate=1, capacity=3, clock=clock)
    clock.advance(100)
    assert [b.allow() for _ in range(5)] == [True, True, True, False, False]


def test_partial_refill_after_idle():
    clock = ManualClock()
    b = TokenBucket(rate=10, capacity=5, clock=clock)
    for _ in range(5):
        b.allow()
    clock.advance(60)
    assert sum(b.allow() for _ in range(20)) == 5


def test_keyed_limiter_after_idle():
    clock = ManualClock()
    lim = KeyedLimiter(rate=1, capacity=2, clock=clock)
    lim.allow("u")
    clock.advance(3600)
    assert [lim.allow("u") for _ in range(3)] == [True, True, False]
