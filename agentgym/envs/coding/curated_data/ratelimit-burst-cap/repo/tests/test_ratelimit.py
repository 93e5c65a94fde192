from ratelimit import KeyedLimiter, ManualClock, TokenBucket


def test_burst_then_refuse():
    clock = ManualClock()
    b = TokenBucket(rate=1, capacity=3, clock=clock)
    assert [b.allow() for _ in range(4)] == [True, True, True, False]


def test_refill_over_time():
    clock = ManualClock()
    b = TokenBucket(rate=2, capacity=2, clock=clock)
    assert b.allow() and b.allow() and not b.allow()
    clock.advance(0.5)
    assert b.allow() and not b.allow()


def test_keys_are_independent():
    clock = ManualClock()
    lim = KeyedLimiter(rate=1, capacity=1, clock=clock)
    assert lim.allow("a") and lim.allow("b")
    assert not lim.allow("a")
