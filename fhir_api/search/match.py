"""Search criteria evaluated on one resource's index rows, without the database.

Writes are checked against access criteria before anything is stored (`access.check_write`),
so the criteria are evaluated on `extract_index(...)` rows with the same meaning the SQL of
query.py gives them: token (`code`, `system|code`, `|code`, `system|`, `:not`), reference
(`id`, `Type/id`, URL, `:Type`), string (default, `:exact`, `:contains`) and `_id`. Other kinds
(dates, `_lastUpdated`) raise InvalidSearch, and callers treat that as "no match".
"""

from fhir_api.exceptions import InvalidSearch

from .escaping import split_escaped, unescape
from .params import REFERENCE, STRING, TOKEN, get_search_params
from .reference import FHIR_ID, RESOURCE_TYPE, server_base_urls, split_reference
from .string import MAX_LENGTH, normalise
from .token import parse_token


def matches_criteria(resource_type, fhir_id, rows, items):
    """True if the resource (its id and `IndexRows`) matches every (name, value) of `items`."""
    params = get_search_params(resource_type)
    for name, value in items:
        base_name, _, modifier = name.partition(":")
        param = params.get(base_name)
        if param is None or not value:
            raise InvalidSearch(f"'{name}={value}' is not a criterion this server can check")
        values = split_escaped(value, ",")
        if base_name == "_id":
            found = _id_matches(fhir_id, values, modifier)
        elif param.type == TOKEN:
            found = _token_matches(rows, base_name, values, modifier)
        elif param.type == REFERENCE:
            found = _reference_matches(rows, base_name, values, modifier)
        elif param.type == STRING:
            found = _string_matches(rows, base_name, values, modifier)
        else:
            raise InvalidSearch(f"{param.type} criteria ('{name}') cannot be checked on a write")
        if not found:
            return False
    return True


def _id_matches(fhir_id, values, modifier):
    if modifier not in ("", "not"):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on _id")
    found = fhir_id in {unescape(value) for value in values}
    return not found if modifier == "not" else found


def _token_matches(rows, param, values, modifier):
    if modifier not in ("", "not"):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on token {param}")
    wanted = [parse_token(value) for value in values]
    tokens = [(system, code) for name, system, code in rows.tokens if name == param]
    found = any(
        (system is None or system == have_system) and (code is None or code == have_code)
        for system, code in wanted
        for have_system, have_code in tokens
    )
    return not found if modifier == "not" else found


def _reference_matches(rows, param, values, modifier):
    if modifier and not RESOURCE_TYPE.fullmatch(modifier):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on reference {param}")
    references = [row[1:] for row in rows.references if row[0] == param]
    base_urls = server_base_urls()
    for value in values:
        text = unescape(value)
        if FHIR_ID.fullmatch(text):
            if any(
                target_id == text and (not modifier or target_type == modifier)
                for target_type, target_id, _ in references
            ):
                return True
            continue
        target = split_reference(text, base_urls)
        if target is None:
            raise InvalidSearch(f"'{text}' is not a valid reference search value")
        target_type, target_id, url = target
        if modifier and not url and modifier != target_type:
            raise InvalidSearch(f"'{text}' does not name a {modifier}")
        if url and any(have_url == url for _, _, have_url in references):
            return True
        if not url and (target_type, target_id) in {(t, i) for t, i, _ in references}:
            return True
    return False


def _string_matches(rows, param, values, modifier):
    if modifier not in ("", "exact", "contains"):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on string {param}")
    strings = [(value, exact) for name, value, exact in rows.strings if name == param]
    for value in values:
        text = unescape(value)
        folded = normalise(text)
        for have, exact in strings:
            if modifier == "exact":
                found = have == folded and exact == text[:MAX_LENGTH]
            elif modifier == "contains":
                found = folded in have
            else:
                found = have.startswith(folded)
            if found:
                return True
    return False
