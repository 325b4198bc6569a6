"""Reference search: `id`, `Type/id`, an absolute URL, and the `:Type` modifier.

A reference into this server (`Type/id`, or `{base}/Type/id` with our own base URL) is indexed
as target type and id, so both spellings find it. Any other absolute URL is kept whole and only
matches the same URL. Contained (`#id`) and `urn:` references are not indexed: the transaction
code rewrites `urn:uuid:` references to `Type/id` before anything is stored.
"""

import re

from django.conf import settings
from django.db.models import Q

from fhir_api.exceptions import InvalidSearch
from fhir_api.models import ReferenceIndex

from .escaping import unescape

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
MAX_URL_LENGTH = 255  # ReferenceIndex.url


def server_base_urls(*extra):
    """Our base URL(s) without a trailing slash: the configured one plus any given."""
    urls = [settings.FHIR["BASE_URL"], *extra]
    return tuple(dict.fromkeys(url.rstrip("/") for url in urls if url))


def split_reference(reference, base_urls):
    """(target_type, target_id, url) for a reference string, or None if it is not indexed."""
    if not reference or reference.startswith(("#", "urn:")):
        return None
    if "://" not in reference:
        local = _split_local(reference)
        return (*local, "") if local else None
    for base in base_urls:
        if reference.startswith(base + "/"):
            local = _split_local(reference[len(base) + 1 :])
            if local:
                return (*local, "")
    return "", "", reference[:MAX_URL_LENGTH]


def split_reference_element(element, base_urls):
    """The same for a Reference element; a bare id counts when `type` names the resource type."""
    reference = element.get("reference")
    if not isinstance(reference, str):
        return None
    target_type = element.get("type")
    if (
        isinstance(target_type, str)
        and RESOURCE_TYPE.fullmatch(target_type)
        and FHIR_ID.fullmatch(reference)
    ):
        return target_type, reference, ""
    return split_reference(reference, base_urls)


def resource_type_in_url(url):
    """'http://elsewhere/fhir/Patient/1' → 'Patient'; None when the URL does not say."""
    parts = url.split("/")
    local = _split_local("/".join(parts[-4:])) or _split_local("/".join(parts[-2:]))
    return local[0] if local else None


def _split_local(path):
    """'Patient/1' or 'Patient/1/_history/2' → ('Patient', '1'); anything else → None."""
    parts = path.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 2 and RESOURCE_TYPE.fullmatch(parts[0]) and FHIR_ID.fullmatch(parts[1]):
        return parts[0], parts[1]
    return None


# --- Search -----------------------------------------------------------------------------------


def reference_condition(text, modifier, base_urls):
    """The ReferenceIndex condition for one search value and an optional `:Type` modifier."""
    if modifier is not None and not RESOURCE_TYPE.fullmatch(modifier):
        raise InvalidSearch(f"The modifier ':{modifier}' is not supported on reference parameters")
    if FHIR_ID.fullmatch(text):
        condition = Q(target_id=text)
        return condition & Q(target_type=modifier) if modifier else condition
    target = split_reference(text, base_urls)
    if target is None:
        raise InvalidSearch(f"'{text}' is not a valid reference search value")
    target_type, target_id, url = target
    if url:
        return Q(url=url)
    if modifier and modifier != target_type:
        raise InvalidSearch(f"'{text}' does not name a {modifier}")
    return Q(target_type=target_type, target_id=target_id)


def reference_q(resource_type, param, values, modifier=None, base_urls=()):
    """Resources whose `param` refers to any of `values` (comma = OR)."""
    base_urls = base_urls or server_base_urls()
    condition = Q()
    for value in values:
        condition |= reference_condition(unescape(value), modifier, base_urls)
    rows = ReferenceIndex.objects.filter(resource_type=resource_type, param=param)
    return Q(id__in=rows.filter(condition).values("resource_id"))
