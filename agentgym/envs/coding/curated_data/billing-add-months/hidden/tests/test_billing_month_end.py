from datetime import date

from billing import add_months, renewal_dates


def test_clamps_to_end_of_shorter_month():
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)


def test_leap_year():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


def test_renewals_return_to_31st():
    assert renewal_dates(date(2024, 1, 31), 3) == [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def test_negative_clamp():
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
