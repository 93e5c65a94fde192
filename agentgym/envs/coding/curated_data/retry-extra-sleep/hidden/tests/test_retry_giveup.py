import pytest

from retrying import Backoff, RetryError, retry_call


def always_fail():
    raise ConnectionError("down")


def test_no_sleep_after_last_attempt():
    sleeps = []
    with pytest.raises(RetryError) as info:
        retry_call(always_fail, attempts=3, sleep=sleeps.append)
    assert sleeps == [0.1, 0.2]
    assert info.value.attempts == 3
    assert isinstance(info.value.last, ConnectionError)


def test_single_attempt_never_sleeps():
    sleeps = []
    with pytest.raises(RetryError):
        retry_call(always_fail, attempts=1, backoff=Backoff(base=5), sleep=sleeps.append)
    assert sleeps == []
