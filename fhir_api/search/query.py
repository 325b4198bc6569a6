"""Search execution: query parameters → one SQL query on the index tables → a searchset page.

Each search parameter becomes a `Q` (one index subquery, see token.py, string.py, date.py,
reference.py); repeated parameters are AND-ed and comma-separated values OR-ed. Access control
passes its own `narrow` Q, which goes into the same SQL, so `total` and paging count only what
the caller may see. A search costs a fixed number of queries whatever the result size: the
page with its total (content loaded with one values_list) and one per _include/_revinclude.

Stored JSON is never parsed here: render_searchset embeds it in the Bundle as is.
"""

from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Window

from fhir_api.exceptions import InvalidSearch
from fhir_api.models import DateIndex, ReferenceIndex, Resource, StringIndex, TokenIndex

from .date import date_q, last_updated_q
from .escaping import split_escaped
from .params import DATE, REFERENCE, STRING, TOKEN, get_search_params
from .reference import RESOURCE_TYPE, reference_q, server_base_urls
from .string import string_q
from .token import id_q, token_q

# _include/_revinclude can fan out widely (a Patient's every Observation); cap each one.
MAX_INCLUDED = 1000
TOTAL_MODES = ("none", "estimate", "accurate")


@dataclass(frozen=True)
class SearchEntry:
    resource_type: str
    fhir_id: str
    content: str  # the stored JSON text


@dataclass(frozen=True)
class Include:
    source_type: str
    params: tuple[str, ...]
    target_type: str | None


@dataclass
class SearchPlan:
    """A parsed search: filters plus result parameters, and what the links repeat."""

    resource_type: str
    filters: list = field(default_factory=list)  # Q, AND-ed
    used: list = field(default_factory=list)  # (name, value) applied, for the links
    count: int = 0
    offset: int = 0
    sort: list = field(default_factory=list)  # (param, descending)
    total: str = "accurate"
    includes: list = field(default_factory=list)
    revincludes: list = field(default_factory=list)


@dataclass
class SearchResult:
    resource_type: str
    base_url: str
    total: int | None
    matches: list  # SearchEntry, in page order
    includes: list  # SearchEntry, none repeating a match
    self_url: str
    next_url: str | None = None
    previous_url: str | None = None


# --- Entry points -----------------------------------------------------------------------------


def run_search(resource_type, items, *, lenient, base_url, narrow=None, include_narrow=None):
    """Run a type-level search; `narrow` (and `include_narrow` for included resources) limit it.

    Unknown or unsupported parameters and malformed values raise InvalidSearch, unless
    `lenient`: then they are dropped, and left out of the links.
    """
    base_url = base_url.rstrip("/")
    plan = parse_search(resource_type, items, lenient=lenient, base_url=base_url)
    rows, total = _page_and_total(_matching(plan, narrow), plan)
    has_next = len(rows) > plan.count
    rows = rows[: plan.count]
    return SearchResult(
        resource_type,
        base_url,
        total,
        matches=[SearchEntry(resource_type, fhir_id, content) for _, fhir_id, content in rows],
        includes=_included(plan, rows, include_narrow),
        **_links(base_url, plan, has_next),
    )


def find_matches(resource_type, items, *, narrow=None):
    """The non-deleted resources matching `items`, unpaged (for conditional create/update/delete).

    Strict: an unknown parameter raises InvalidSearch rather than matching too much.
    Result parameters (_count, _sort...) are accepted and have no effect.
    """
    plan = parse_search(resource_type, items, lenient=False, base_url="")
    return _matching(plan, narrow)


def criteria_q(resource_type, items):
    """One Q for search criteria alone, such as an access grant's: `items` all AND-ed.

    Strict: result parameters (_count, _include...), unknown parameters and empty values
    raise InvalidSearch, since criteria that are not applied would match too much.
    """
    params = get_search_params(resource_type)
    base_urls = server_base_urls()
    condition = Q()
    for name, value in items:
        base_name, _, modifier = name.partition(":")
        if base_name in _RESULT_PARAMS or not value:
            raise InvalidSearch(f"'{name}={value}' is not a search criterion")
        param = _known_param(resource_type, params, base_name)
        values = split_escaped(value, ",")
        condition &= _filter_q(resource_type, param, values, modifier or None, base_urls)
    return condition


# --- Parsing ----------------------------------------------------------------------------------


def parse_search(resource_type, items, *, lenient, base_url):
    """Turn (name, value) pairs into a SearchPlan; see run_search for `lenient`."""
    fhir = settings.FHIR
    plan = SearchPlan(resource_type, count=fhir["DEFAULT_PAGE_SIZE"])
    params = get_search_params(resource_type)
    base_urls = server_base_urls(base_url)
    for name, value in items:
        try:
            _apply(plan, params, name, value, base_urls)
        except InvalidSearch:
            if not lenient:
                raise
    plan.count = min(plan.count, fhir["MAX_PAGE_SIZE"])
    return plan


def _apply(plan, params, name, value, base_urls):
    name, value = _legacy_comparison(name, value)
    base_name, _, modifier = name.partition(":")
    if value == "":
        return  # FHIR: a parameter with an empty value is ignored
    if base_name in _RESULT_PARAMS:
        _RESULT_PARAMS[base_name](plan, params, modifier or None, value)
        if base_name in ("_count", "_offset"):
            return  # every link ends with its own _count and _offset
    else:
        param = _known_param(plan.resource_type, params, base_name)
        values = split_escaped(value, ",")
        condition = _filter_q(plan.resource_type, param, values, modifier or None, base_urls)
        plan.filters.append(condition)
    plan.used.append((name, value))


def _legacy_comparison(name, value):
    """`birthdate>=1990` arrives as name 'birthdate>' and value '1990': make it `>=1990`."""
    if name.endswith((">", "<")):
        return name[:-1], f"{name[-1]}={value}"
    return name, value


def _known_param(resource_type, params, name):
    if name in params:
        return params[name]
    if "." in name:
        raise InvalidSearch(f"Chained search ('{name}') is not supported")
    raise InvalidSearch(f"Unknown or unsupported search parameter '{name}' for {resource_type}")


def _filter_q(resource_type, param, values, modifier, base_urls):
    if param.name == "_id":
        return id_q(values, modifier)
    if param.name == "_lastUpdated":
        return last_updated_q(values, modifier)
    if param.type == TOKEN:
        return token_q(resource_type, param.name, values, modifier)
    if param.type == STRING:
        return string_q(resource_type, param.name, values, modifier)
    if param.type == DATE:
        return date_q(resource_type, param.name, values, modifier)
    return reference_q(resource_type, param.name, values, modifier, base_urls)


# --- Result parameters ------------------------------------------------------------------------


def _no_modifier(name, modifier):
    if modifier:
        raise InvalidSearch(f"'{name}:{modifier}' is not supported")


def _non_negative(name, value):
    if not value.isdigit():
        raise InvalidSearch(f"{name} must be a whole number, not '{value}'")
    return int(value)


def _set_count(plan, params, modifier, value):
    _no_modifier("_count", modifier)
    plan.count = _non_negative("_count", value)


def _set_offset(plan, params, modifier, value):
    _no_modifier("_offset", modifier)
    plan.offset = _non_negative("_offset", value)


def _set_total(plan, params, modifier, value):
    _no_modifier("_total", modifier)
    if value not in TOTAL_MODES:
        raise InvalidSearch(f"_total must be one of {', '.join(TOTAL_MODES)}")
    plan.total = value


def _set_summary(plan, params, modifier, value):
    """Only `count` (total only, like _count=0) and `false` (the default) are supported."""
    _no_modifier("_summary", modifier)
    if value == "count":
        plan.count = 0
    elif value != "false":
        raise InvalidSearch(f"_summary={value} is not supported")


def _set_sort(plan, params, modifier, value):
    _no_modifier("_sort", modifier)
    keys = []
    for key in value.split(","):
        name = key.removeprefix("-")
        param = params.get(name)
        if param is None or param.type not in _SORT_COLUMNS:
            raise InvalidSearch(f"Cannot sort by '{name}'")
        keys.append((name, key.startswith("-")))
    plan.sort = keys


def _add_include(plan, params, modifier, value):
    include = _parse_include("_include", modifier, value)
    if include.source_type != plan.resource_type:
        raise InvalidSearch(f"_include={value} must start with {plan.resource_type}")
    plan.includes.append(include)


def _add_revinclude(plan, params, modifier, value):
    plan.revincludes.append(_parse_include("_revinclude", modifier, value))


def _parse_include(name, modifier, value):
    """`Type:param[:Target]`, or `Type:*` for every reference parameter of Type."""
    if modifier:
        raise InvalidSearch(f"{name}:{modifier} is not supported")
    source_type, _, rest = value.partition(":")
    param_name, _, target_type = rest.partition(":")
    params = get_search_params(source_type)
    references = [p.name for p in params.values() if p.type == REFERENCE]
    if param_name == "*" and not target_type:
        names = tuple(references)
    elif param_name in references and (not target_type or RESOURCE_TYPE.fullmatch(target_type)):
        names = (param_name,)
    else:
        raise InvalidSearch(f"{name}={value} does not name a reference parameter")
    if not names:
        raise InvalidSearch(f"{source_type} has no reference parameters to include")
    return Include(source_type, names, target_type or None)


def _accept(plan, params, modifier, value):
    """_format and _pretty: handled by the renderer, but repeated in the links."""


_RESULT_PARAMS = {
    "_count": _set_count,
    "_offset": _set_offset,
    "_total": _set_total,
    "_summary": _set_summary,
    "_sort": _set_sort,
    "_include": _add_include,
    "_revinclude": _add_revinclude,
    "_format": _accept,
    "_pretty": _accept,
}


# --- Execution --------------------------------------------------------------------------------


def _matching(plan, narrow):
    queryset = Resource.objects.filter(resource_type=plan.resource_type, deleted=False)
    for condition in plan.filters:
        queryset = queryset.filter(condition)
    return queryset.filter(narrow) if narrow is not None else queryset


def _page_and_total(queryset, plan):
    """(rows, total): (pk, fhir_id, content) for the page, plus one more row to tell whether
    a next page exists, and the number of matches (None with _total=none).

    One query: `COUNT(*) OVER ()` counts every match before LIMIT takes the page, which saves
    a second query and its compilation (a quarter of a search's time under load). A separate
    count runs only for a page that is empty past the first (or not asked for, _count=0).
    """
    wants_total = plan.total != "none"
    if not plan.count:
        return [], queryset.count() if wants_total else None
    ordered = queryset.alias(**_sort_aliases(plan)).order_by(*_ordering(plan))
    columns = ["pk", "fhir_id", "content"]
    if wants_total:
        ordered = ordered.annotate(search_total=Window(Count("pk")))
        columns.append("search_total")
    rows = list(ordered.values_list(*columns)[plan.offset : plan.offset + plan.count + 1])
    if not wants_total:
        return rows, None
    if rows:
        return [row[:3] for row in rows], rows[0][3]
    return [], queryset.count() if plan.offset else 0


# Index table and (ascending, descending) column a sort key of each type reads.
_SORT_COLUMNS = {
    DATE: (DateIndex, "low", "high"),
    STRING: (StringIndex, "value", "value"),
    TOKEN: (TokenIndex, "code", "code"),
}


def _sort_aliases(plan):
    """A subquery per sort key: the lowest value when ascending, the highest when descending."""
    params = get_search_params(plan.resource_type)
    aliases = {}
    for index, (name, descending) in enumerate(plan.sort):
        if name in ("_id", "_lastUpdated"):
            continue
        model, low, high = _SORT_COLUMNS[params[name].type]
        column = high if descending else low
        rows = model.objects.filter(resource_id=OuterRef("pk"), param=name)
        rows = rows.order_by(f"-{column}" if descending else column).values(column)[:1]
        aliases[f"sort_{index}"] = Subquery(rows)
    return aliases


def _ordering(plan):
    ordering = []
    for index, (name, descending) in enumerate(plan.sort):
        column = {"_id": "fhir_id", "_lastUpdated": "last_updated"}.get(name, f"sort_{index}")
        expression = F(column)
        ordering.append(
            expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
        )
    # A unique tie-breaker, so pages neither skip nor repeat; it follows the last key's direction.
    descending = bool(plan.sort) and plan.sort[-1][1]
    return [*ordering, "-pk" if descending else "pk"]


def _included(plan, rows, include_narrow):
    """The _include and _revinclude resources of this page, each once and none a match."""
    if not rows:
        return []
    seen = {(plan.resource_type, fhir_id) for _, fhir_id, _ in rows}
    page_pks = [pk for pk, _, _ in rows]
    page_ids = [fhir_id for _, fhir_id, _ in rows]
    querysets = [_include_queryset(include, page_pks) for include in plan.includes]
    querysets += [
        _revinclude_queryset(include, plan.resource_type, page_ids) for include in plan.revincludes
    ]
    entries = []
    for queryset in querysets:
        if include_narrow is not None:
            queryset = queryset.filter(include_narrow)
        values = queryset.order_by("pk").values_list("resource_type", "fhir_id", "content")
        for resource_type, fhir_id, content in values[:MAX_INCLUDED]:
            if (resource_type, fhir_id) not in seen:
                seen.add((resource_type, fhir_id))
                entries.append(SearchEntry(resource_type, fhir_id, content))
    return entries


def _include_queryset(include, page_pks):
    """Resources the page's resources refer to through `include.params`."""
    references = ReferenceIndex.objects.filter(
        resource_id__in=page_pks, resource_type=include.source_type, param__in=include.params
    )
    if include.target_type:
        references = references.filter(target_type=include.target_type)
    same_pair = references.filter(
        target_type=OuterRef("resource_type"), target_id=OuterRef("fhir_id")
    )
    targets = Resource.objects.filter(deleted=False, fhir_id__in=references.values("target_id"))
    types = _target_types(include) or references.values("target_type")
    return targets.filter(resource_type__in=types).filter(Exists(same_pair))


def _target_types(include):
    """The types the include can reach (None: any), so the lookup uses the (type, id) index."""
    if include.target_type:
        return [include.target_type]
    params = get_search_params(include.source_type)
    if any(not params[name].targets for name in include.params):
        return None
    return sorted({target for name in include.params for target in params[name].targets})


def _revinclude_queryset(include, resource_type, page_ids):
    """Resources of `include.source_type` that refer to the page's resources."""
    if include.target_type not in (None, resource_type):
        return Resource.objects.none()
    references = ReferenceIndex.objects.filter(
        resource_type=include.source_type,
        param__in=include.params,
        target_type=resource_type,
        target_id__in=page_ids,
    )
    return Resource.objects.filter(
        deleted=False, resource_type=include.source_type, id__in=references.values("resource_id")
    )


# --- Links and the Bundle ---------------------------------------------------------------------


def _links(base_url, plan, has_next):
    """self, next and previous: the parameters used, then _count and _offset."""
    links = {"self_url": _link(base_url, plan, plan.offset)}
    if has_next:
        links["next_url"] = _link(base_url, plan, plan.offset + plan.count)
    if plan.offset and plan.count:
        links["previous_url"] = _link(base_url, plan, max(plan.offset - plan.count, 0))
    return links


def _link(base_url, plan, offset):
    query = urlencode([*plan.used, ("_count", plan.count), ("_offset", offset)], safe=":/,")
    return f"{base_url}/{plan.resource_type}?{query}"


def render_searchset(result):
    """The searchset Bundle as JSON text, stored resources embedded without re-parsing."""
    bundle = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    links = {"self": result.self_url, "next": result.next_url, "previous": result.previous_url}
    bundle["link"] = [{"relation": relation, "url": url} for relation, url in links.items() if url]
    entries = [_entry(result.base_url, entry, "match") for entry in result.matches]
    entries += [_entry(result.base_url, entry, "include") for entry in result.includes]
    if entries:
        bundle["entry"] = entries
    return orjson.dumps(bundle).decode()


def _entry(base_url, entry, mode):
    return {
        "fullUrl": f"{base_url}/{entry.resource_type}/{entry.fhir_id}",
        "resource": orjson.Fragment(entry.content),
        "search": {"mode": mode},
    }
