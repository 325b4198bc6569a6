"""Index rows for one resource: the values each supported search parameter finds in it.

Called on every write (store.py) inside the write's transaction, so search never reads the
JSON. Values are typed by their shape, since the JSON carries no type names: a dict with
`coding` is a CodeableConcept, one with `code` a Coding, one with `value` an Identifier or
ContactPoint, one with `start`/`end` a Period, one with `reference` a Reference, and a dict of
name or address parts a HumanName or Address. Anything else is skipped: odd but valid data must
never make a write fail.
"""

from dataclasses import dataclass, field

from fhir_api.compartments import get_patient_ids

from .date import date_range, period_range
from .params import DATE, REFERENCE, STRING, TOKEN, get_search_params
from .paths import values_at
from .reference import resource_type_in_url, server_base_urls, split_reference_element
from .string import MAX_LENGTH, normalise


@dataclass
class IndexRows:
    tokens: list = field(default_factory=list)  # (param, system, code)
    strings: list = field(default_factory=list)  # (param, normalised value, value as written)
    dates: list = field(default_factory=list)  # (param, low, high), aware UTC datetimes
    references: list = field(default_factory=list)  # (param, target_type, target_id, url)
    compartments: set = field(default_factory=set)  # Patient ids


def extract_index(resource_type, content):
    """Every index row for `content`, duplicates removed, plus its Patient compartments."""
    base_urls = server_base_urls()
    rows = IndexRows()
    for param in get_search_params(resource_type).values():
        if param.name.startswith("_"):
            continue  # _id and _lastUpdated are read from the Resource row
        values = [value for path in param.paths for value in values_at(content, path)]
        if values:
            _ADDERS[param.type](rows, param, values, base_urls)
    rows.tokens = list(dict.fromkeys(rows.tokens))
    rows.strings = list(dict.fromkeys(rows.strings))
    rows.dates = list(dict.fromkeys(rows.dates))
    rows.references = list(dict.fromkeys(rows.references))
    rows.compartments = get_patient_ids(resource_type, content, base_urls)
    return rows


# --- Tokens -----------------------------------------------------------------------------------


def tokens_of(value):
    """(system, code) pairs of a code, Coding, CodeableConcept, Identifier, ContactPoint or boolean.

    A CodeableConcept gives one pair per coding; its `text` is not a token.
    """
    if isinstance(value, bool):
        return [("", "true" if value else "false")]
    if isinstance(value, str):
        return [("", value[:MAX_LENGTH])] if value else []
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        codings = value["coding"] if isinstance(value["coding"], list) else []
        return [pair for coding in codings for pair in _system_and(coding, "code")]
    if "code" in value:
        return _system_and(value, "code")
    return _system_and(value, "value")


def _system_and(element, key):
    if not isinstance(element, dict):
        return []
    code, system = element.get(key), element.get("system")
    if not isinstance(code, str) or not code:
        return []
    system = system if isinstance(system, str) else ""
    return [(system[:MAX_LENGTH], code[:MAX_LENGTH])]


def _add_tokens(rows, param, values, base_urls):
    for value in values:
        rows.tokens.extend((param.name, system, code) for system, code in tokens_of(value))


# --- Strings ----------------------------------------------------------------------------------

# HumanName and Address parts; a string parameter on either matches any of them.
_STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


def strings_of(value):
    """The strings of a string, HumanName or Address element."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    found = []
    for key in _STRING_PARTS:
        part = value.get(key)
        if isinstance(part, str):
            found.append(part)
        elif isinstance(part, list):
            found.extend(item for item in part if isinstance(item, str))
    return found


def _add_strings(rows, param, values, base_urls):
    for value in values:
        for text in strings_of(value):
            if text.strip():
                rows.strings.append((param.name, normalise(text), text[:MAX_LENGTH]))


# --- Dates ------------------------------------------------------------------------------------


def date_ranges_of(value):
    """[(low, high)] of a date, dateTime, instant or Period; [] if it is none of those."""
    if isinstance(value, str):
        try:
            return [date_range(value)]
        except ValueError:
            return []
    if isinstance(value, dict) and ("start" in value or "end" in value):
        period = period_range(value)
        return [period] if period else []
    return []


def _add_dates(rows, param, values, base_urls):
    for value in values:
        rows.dates.extend((param.name, low, high) for low, high in date_ranges_of(value))


# --- References -------------------------------------------------------------------------------


def _add_references(rows, param, values, base_urls):
    for value in values:
        if not isinstance(value, dict):
            continue
        target = split_reference_element(value, base_urls)
        if target is None:
            continue
        target_type, target_id, url = target
        if _fits_targets(param, target_type or resource_type_in_url(url)):
            rows.references.append((param.name, target_type, target_id, url))


def _fits_targets(param, target_type):
    """Whether a reference of `target_type` (None: cannot tell) belongs to `param`.

    This is how `subject.where(resolve() is Patient)` keeps only Patient references.
    """
    return not param.targets or target_type is None or target_type in param.targets


_ADDERS = {
    TOKEN: _add_tokens,
    STRING: _add_strings,
    DATE: _add_dates,
    REFERENCE: _add_references,
}
