from datetime import date, datetime, timezone

from timeline import Event, busiest_day, group_by_day


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_groups_in_utc():
    evs = [Event("a", utc(2024, 3, 1, 10)), Event("b", utc(2024, 3, 1, 9)), Event("c", utc(2024, 3, 2, 8))]
    days = group_by_day(evs, timezone.utc)
    assert [e.name for e in days[date(2024, 3, 1)]] == ["b", "a"]
    assert [e.name for e in days[date(2024, 3, 2)]] == ["c"]


def test_busiest_day_empty():
    assert busiest_day([], timezone.utc) is None


def test_naive_datetimes_rejected():
    import pytest

    with pytest.raises(ValueError):
        Event("x", datetime(2024, 1, 1))
