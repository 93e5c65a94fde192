from bookings import busy_minutes, free_slots, merge_slots


def test_back_to_back_slots_merge():
    assert merge_slots([(60, 90), (90, 120)]) == [(60, 120)]


def test_unsorted_input():
    assert merge_slots([(300, 330), (60, 120), (100, 200)]) == [(60, 200), (300, 330)]


def test_busy_minutes_unsorted():
    assert busy_minutes([(100, 200), (0, 150)]) == 200


def test_free_slots_unsorted_and_adjacent():
    assert free_slots([(600, 660), (540, 600)], 480, 720) == [(480, 540), (660, 720)]


def test_nested_slot():
    assert merge_slots([(0, 100), (10, 20)]) == [(0, 100)]
