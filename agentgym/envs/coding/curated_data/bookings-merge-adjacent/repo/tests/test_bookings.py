import pytest

from bookings import busy_minutes, free_slots, merge_slots


def test_overlapping_sorted():
    assert merge_slots([(60, 120), (90, 150), (200, 210)]) == [(60, 150), (200, 210)]


def test_busy_minutes_overlap():
    assert busy_minutes([(0, 30), (10, 40)]) == 40


def test_free_slots():
    assert free_slots([(540, 600), (700, 720)], 480, 1020) == [(480, 540), (600, 700), (720, 1020)]


def test_empty_slot_rejected():
    with pytest.raises(ValueError):
        merge_slots([(10, 10)])
