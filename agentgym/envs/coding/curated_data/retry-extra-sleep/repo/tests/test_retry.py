import pytest

from retrying import Backoff, RetryError, retry_call


def flaky(failures):
    state = {"n": 0}

    def fn():
        state["n"] += 1
        if state["n"] <= failures:
            raise ConnectionError("boom")
        return "ok"

    return fn


def test_success_first_time():
    sleeps = []
    assert retry_call(flaky(0), sleep=sleeps.append) == "ok"
    assert sleeps == []


def test_success_after_retries():
    sleeps = []
    assert retry_call(flaky(2), attempts=3, sleep=sleeps.append) == "ok"
    assert sleeps == [0.1, 0.2]


def test_other_errors_propagate():
    def bad():
        raise KeyError("x")

    with pytest.raises(KeyError):
        retry_call(bad, retry_on=(ConnectionError,), sleep=lambda s: None)


def test_backoff_cap():
    assert Backoff(base=1, factor=10, cap=5).delay(3) == 5
