"""Date search: a date, dateTime, instant or Period is the [low, high] range of instants it covers.

FHIR compares ranges, not points: `2013-01` means all of January, and a search prefix says how
the range of the search value must relate to the stored range (search.html#date). So values are
indexed as ranges (as HAPI's HFJ_SPIDX_DATE does) and each prefix becomes a comparison on the
two columns. Values without a time zone are taken as UTC. Open Period ends become the first and
last instants both SQLite and PostgreSQL can store.
"""

import re
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from fhir_api.exceptions import InvalidSearch
from fhir_api.models import DateIndex

MIN_INSTANT = datetime(1, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_ONE_MICROSECOND = timedelta(microseconds=1)

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# fhirclient's $gt/$gte/$lt/$lte helpers still send these pre-R4 forms.
LEGACY_PREFIXES = {">=": "ge", "<=": "le", ">": "gt", "<": "lt", "=": "eq"}


def date_range(text):
    """The [low, high] UTC instants a FHIR date, dateTime or instant covers (ValueError if bad)."""
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"'{text}' is not a FHIR date")
    parts = match.groupdict()
    low, width = _start_and_width(parts)
    high = _shift(low, width - _ONE_MICROSECOND)
    offset = _zone_offset(parts["zone"])
    return _shift(low, -offset).replace(tzinfo=UTC), _shift(high, -offset).replace(tzinfo=UTC)


def period_range(period):
    """A Period's range; a missing or unreadable end is open. None if neither end is usable."""
    low = high = None
    if period.get("start") is not None:
        low = _safe_range(period["start"])
    if period.get("end") is not None:
        high = _safe_range(period["end"])
    if low is None and high is None:
        return None
    return (low[0] if low else MIN_INSTANT, high[1] if high else MAX_INSTANT)


def _safe_range(text):
    try:
        return date_range(text)
    except ValueError:
        return None


def _start_and_width(parts):
    """The first instant (naive, in the value's own zone) and the length of its precision."""
    year = int(parts["year"])
    if parts["month"] is None:
        return datetime(year, 1, 1), _months(year, 1, 12)
    month = int(parts["month"])
    if parts["day"] is None:
        return datetime(year, month, 1), _months(year, month, 1)
    day = int(parts["day"])
    if parts["hour"] is None:
        return datetime(year, month, day), timedelta(days=1)
    hour, minute = int(parts["hour"]), int(parts["minute"])
    if parts["second"] is None:
        return datetime(year, month, day, hour, minute), timedelta(minutes=1)
    second = int(parts["second"])
    fraction = parts["fraction"] or ""
    start = datetime(year, month, day, hour, minute, second, int(fraction[:6].ljust(6, "0")))
    digits = min(len(fraction), 6)
    return start, timedelta(microseconds=10 ** (6 - digits))


def _months(year, month, count):
    """The length of `count` months starting at year-month (month 13 rolls into the next year)."""
    start = datetime(year, month, 1)
    month_index = year * 12 + month - 1 + count
    end_year, end_month = divmod(month_index, 12)
    if end_year > 9999:
        return datetime.max - start + _ONE_MICROSECOND
    return datetime(end_year, end_month + 1, 1) - start


def _zone_offset(zone):
    if zone is None or zone == "Z":
        return timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"'{zone}' is not a time zone offset")
    return sign * timedelta(hours=hours, minutes=minutes)


def _shift(moment, delta):
    """moment + delta, held within the years 1..9999 that both databases store."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.min if delta < timedelta(0) else datetime.max


# --- Search -----------------------------------------------------------------------------------


def parse_date_search(text):
    """`ge2013-01` → ("ge", low, high); the legacy `>=2013-01` form is accepted too."""
    prefix, value = "eq", text
    for legacy in LEGACY_PREFIXES:
        if text.startswith(legacy):
            prefix, value = LEGACY_PREFIXES[legacy], text[len(legacy) :]
            break
    else:
        if text[:2] in PREFIXES:
            prefix, value = text[:2], text[2:]
    try:
        low, high = date_range(value)
    except ValueError:
        raise InvalidSearch(f"'{text}' is not a valid date search value") from None
    return prefix, low, high


def date_condition(prefix, low, high, low_field="low", high_field="high"):
    """The stored range [low_field, high_field] against the search range [low, high]."""
    contained = Q(**{f"{low_field}__gte": low, f"{high_field}__lte": high})
    above = Q(**{f"{high_field}__gt": high})
    below = Q(**{f"{low_field}__lt": low})
    conditions = {
        "eq": contained,
        "ne": below | above,
        "gt": above,
        "lt": below,
        "ge": above | contained,
        "le": below | contained,
        "sa": Q(**{f"{low_field}__gt": high}),
        "eb": Q(**{f"{high_field}__lt": low}),
        # "approximately" is read as "overlaps": no arbitrary 10% margin.
        "ap": Q(**{f"{low_field}__lte": high, f"{high_field}__gte": low}),
    }
    return conditions[prefix]


def _any_of(values, **fields):
    condition = Q()
    for value in values:
        condition |= date_condition(*parse_date_search(value), **fields)
    return condition


def date_q(resource_type, param, values, modifier=None):
    """Resources with a `param` date matching any of `values` (comma = OR)."""
    _check_no_modifier(param, modifier)
    rows = DateIndex.objects.filter(resource_type=resource_type, param=param)
    return Q(id__in=rows.filter(_any_of(values)).values("resource_id"))


def last_updated_q(values, modifier=None):
    """_lastUpdated, answered from Resource.last_updated (an instant: low == high)."""
    _check_no_modifier("_lastUpdated", modifier)
    return _any_of(values, low_field="last_updated", high_field="last_updated")


def _check_no_modifier(param, modifier):
    if modifier:
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on date {param}")
