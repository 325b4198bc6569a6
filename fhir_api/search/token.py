"""Token search: `code`, `system|code`, `|code` (no system) and `system|`, plus `:not`.

Tokens cover code, Coding, CodeableConcept, Identifier, ContactPoint and boolean values, all
indexed as (system, code) rows; see extract.py. Codes are case-sensitive, so they are compared
exactly.
"""

from django.db.models import Q

from fhir_api.exceptions import InvalidSearch
from fhir_api.models import TokenIndex

from .escaping import split_escaped, unescape

MAX_LENGTH = 255  # TokenIndex.system and .code


def parse_token(text):
    """(system, code) with None for "any".

    'a' → (None, 'a'); 's|a' → ('s', 'a'); '|a' → ('', 'a'), no system; 's|' → ('s', None).
    """
    parts = [unescape(part)[:MAX_LENGTH] for part in split_escaped(text, "|")]
    if len(parts) == 1 and parts[0]:
        return None, parts[0]
    if len(parts) == 2 and (parts[0] or parts[1]):
        system, code = parts
        return system, code or None
    raise InvalidSearch(f"'{text}' is not a valid token (code, system|code, |code or system|)")


def token_condition(system, code):
    condition = Q()
    if system is not None:
        condition &= Q(system=system)
    if code is not None:
        condition &= Q(code=code)
    return condition


def token_q(resource_type, param, values, modifier=None):
    """Resources with a `param` token matching any of `values`; `:not` gives the others."""
    if modifier not in (None, "not"):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on token {param}")
    condition = Q()
    for value in values:
        condition |= token_condition(*parse_token(value))
    rows = TokenIndex.objects.filter(resource_type=resource_type, param=param).filter(condition)
    matching = Q(id__in=rows.values("resource_id"))
    return ~matching if modifier == "not" else matching


def id_q(values, modifier=None):
    """_id, answered from Resource.fhir_id rather than from index rows."""
    if modifier not in (None, "not"):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on _id")
    ids = [unescape(value) for value in values]
    if not all(ids):
        raise InvalidSearch("_id needs a resource id")
    matching = Q(fhir_id__in=ids)
    return ~matching if modifier == "not" else matching
