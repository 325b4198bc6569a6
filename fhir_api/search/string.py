"""String search: case- and accent-insensitive starts-with by default, `:exact` and `:contains`.

Values are normalised in Python at write time (casefold, then NFKD with the combining marks
dropped) and search values the same way, so SQLite and PostgreSQL match identically and a plain
`LIKE 'abc%'` on the indexed column answers the default search.
"""

import unicodedata

from django.db.models import Q

from fhir_api.exceptions import InvalidSearch
from fhir_api.models import StringIndex

from .escaping import unescape

MAX_LENGTH = 255  # StringIndex.value and .exact


def normalise(text):
    """Casefolded, accents stripped, cut to the indexed length: 'Ärzte' → 'arzte'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(char for char in decomposed if not unicodedata.combining(char))
    return folded[:MAX_LENGTH]


def string_condition(value, modifier=None):
    if modifier is None:
        return Q(value__startswith=normalise(value))
    if modifier == "exact":
        # `value` narrows by the indexed column first; `exact` then compares as written.
        return Q(value=normalise(value), exact=value[:MAX_LENGTH])
    if modifier == "contains":
        return Q(value__contains=normalise(value))
    raise InvalidSearch(f"The modifier ':{modifier}' is not supported on string parameters")


def string_q(resource_type, param, values, modifier=None):
    """Resources with a `param` string matching any of `values` (comma = OR, still escaped)."""
    condition = Q()
    for value in values:
        condition |= string_condition(unescape(value), modifier)
    rows = StringIndex.objects.filter(resource_type=resource_type, param=param)
    return Q(id__in=rows.filter(condition).values("resource_id"))
