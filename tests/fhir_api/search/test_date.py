"""Dates as the [low, high] instants they cover, and search prefixes against stored ranges."""

from datetime import UTC, datetime

import pytest

from fhir_api.exceptions import InvalidSearch
from fhir_api.search.date import (
    MAX_INSTANT,
    MIN_INSTANT,
    date_range,
    parse_date_search,
    period_range,
)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2013", utc(2013, 1, 1), utc(2013, 12, 31, 23, 59, 59, 999999)),
        ("2013-02", utc(2013, 2, 1), utc(2013, 2, 28, 23, 59, 59, 999999)),
        ("2012-02", utc(2012, 2, 1), utc(2012, 2, 29, 23, 59, 59, 999999)),
        ("2013-12", utc(2013, 12, 1), utc(2013, 12, 31, 23, 59, 59, 999999)),
        ("2013-01-15", utc(2013, 1, 15), utc(2013, 1, 15, 23, 59, 59, 999999)),
        ("2013-01-15T10:30", utc(2013, 1, 15, 10, 30), utc(2013, 1, 15, 10, 30, 59, 999999)),
        (
            "2013-01-15T10:30:05",
            utc(2013, 1, 15, 10, 30, 5),
            utc(2013, 1, 15, 10, 30, 5, 999999),
        ),
        (
            "2013-01-15T10:30:05.25Z",
            utc(2013, 1, 15, 10, 30, 5, 250000),
            utc(2013, 1, 15, 10, 30, 5, 259999),
        ),
        (
            "2013-01-15T10:30:05+02:00",
            utc(2013, 1, 15, 8, 30, 5),
            utc(2013, 1, 15, 8, 30, 5, 999999),
        ),
        (
            "2013-01-15T23:30:00-05:00",
            utc(2013, 1, 16, 4, 30),
            utc(2013, 1, 16, 4, 30, 0, 999999),
        ),
    ],
)
def test_date_range_covers_the_precision_given(text, low, high):
    assert date_range(text) == (low, high)


def test_date_range_without_zone_is_utc():
    assert date_range("2013-01-15T10:30:05")[0].tzinfo == UTC


def test_date_range_stays_within_years_1_to_9999():
    assert date_range("9999") == (utc(9999, 1, 1), MAX_INSTANT)
    assert date_range("0001-01-01T00:00:00+05:00")[0] == MIN_INSTANT
    assert date_range("9999-12-31T23:00:00-05:00")[1] == MAX_INSTANT


@pytest.mark.parametrize(
    "text", ["", "13", "2013-13", "2013-02-30", "2013-01-01T25:00", "2013-01-01T10", "tomorrow"]
)
def test_date_range_rejects_what_is_not_a_date(text):
    with pytest.raises(ValueError):
        date_range(text)


def test_period_range_spans_start_low_to_end_high():
    assert period_range({"start": "2013-01", "end": "2013-02-10"}) == (
        utc(2013, 1, 1),
        utc(2013, 2, 10, 23, 59, 59, 999999),
    )


def test_period_range_open_ends_are_min_and_max():
    assert period_range({"start": "2013"}) == (utc(2013, 1, 1), MAX_INSTANT)
    assert period_range({"end": "2013"})[0] == MIN_INSTANT
    assert period_range({}) is None
    assert period_range({"start": "garbage"}) is None


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("2013", "eq"),
        ("eq2013", "eq"),
        ("ne2013", "ne"),
        ("gt2013", "gt"),
        ("lt2013", "lt"),
        ("ge2013", "ge"),
        ("le2013", "le"),
        ("sa2013", "sa"),
        ("eb2013", "eb"),
        ("ap2013", "ap"),
        (">2013", "gt"),
        (">=2013", "ge"),
        ("<2013", "lt"),
        ("<=2013", "le"),
        ("=2013", "eq"),
    ],
)
def test_parse_date_search_reads_prefixes_and_legacy_comparators(text, prefix):
    assert parse_date_search(text) == (prefix, *date_range("2013"))


@pytest.mark.parametrize("text", ["xx2013", "gt", "ge2013-99", "2013-01-01T10:00:00+25:00"])
def test_parse_date_search_rejects_malformed_values(text):
    with pytest.raises(InvalidSearch):
        parse_date_search(text)
