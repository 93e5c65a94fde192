from datetime import date

from billing import add_months, renewal_dates


def test_simple():
    assert add_months(date(2024, 1, 15), 1) == date(2024, 2, 15)


def test_year_rollover():
    assert add_months(date(2024, 11, 10), 3) == date(2025, 2, 10)


def test_negative():
    assert add_months(date(2024, 1, 10), -1) == date(2023, 12, 10)


def test_renewals_mid_month():
    assert renewal_dates(date(2024, 1, 5), 3) == [date(2024, 2, 5), date(2024, 3, 5), date(2024, 4, 5)]
