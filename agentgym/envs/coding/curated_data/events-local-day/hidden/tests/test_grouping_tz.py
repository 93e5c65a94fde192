from datetime import date, datetime, timedelta, timezone

from timeline import Event, busiest_day, group_by_day

BERLIN_SUMMER = timezone(timedelta(hours=2))
NEW_YORK = timezone(timedelta(hours=-5))


def test_late_utc_event_belongs_to_next_local_day():
    ev = Event("party", datetime(2024, 6, 1, 23, 30, tzinfo=timezone.utc))
    assert list(group_by_day([ev], BERLIN_SUMMER)) == [date(2024, 6, 2)]


def test_early_utc_event_belongs_to_previous_local_day():
    ev = Event("call", datetime(2024, 1, 10, 3, 0, tzinfo=timezone.utc))
    assert list(group_by_day([ev], NEW_YORK)) == [date(2024, 1, 9)]


def test_busiest_day_uses_local_days():
    evs = [Event(str(h), datetime(2024, 6, 1, h, tzinfo=timezone.utc)) for h in (22, 23)]
    evs.append(Event("noon", datetime(2024, 6, 1, 12, tzinfo=timezone.utc)))
    assert busiest_day(evs, BERLIN_SUMMER) == date(2024, 6, 2)


def test_same_zone_unchanged():
    ev = Event("x", datetime(2024, 6, 1, 12, tzinfo=BERLIN_SUMMER))
    assert list(group_by_day([ev], BERLIN_SUMMER)) == [date(2024, 6, 1)]
