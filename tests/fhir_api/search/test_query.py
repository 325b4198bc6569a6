"""Searches end to end on the database: resources stored through store.do_create, then found."""

from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from django.conf import settings

from fhir_api.compartments import patient_compartment_q
from fhir_api.exceptions import InvalidSearch
from fhir_api.search.query import find_matches, render_searchset, run_search
from fhir_api.store import do_create, do_delete

pytestmark = pytest.mark.django_db

BASE = "http://testserver/fhir"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def search(resource_type, query="", *, lenient=False, **kwargs):
    items = parse_qsl(query, keep_blank_values=True)
    return run_search(resource_type, items, lenient=lenient, base_url=BASE, **kwargs)


def ids(result):
    return [entry.fhir_id for entry in result.matches]


def follow(url, **kwargs):
    """Run the search a link names, as a client following it would."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "testserver"
    return search(parts.path.rsplit("/", 1)[-1], parts.query, **kwargs)


def add_patient(fhir_id, family, given, birth_date, **extra):
    name = {"family": family, "given": [given]}
    patient = {"resourceType": "Patient", "name": [name], "birthDate": birth_date}
    return do_create("Patient", patient | extra, fhir_id=fhir_id)


def add_observation(fhir_id, patient_id, code, when, category="laboratory", **extra):
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": "a test"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
    }
    return do_create("Observation", observation | extra, fhir_id=fhir_id)


@pytest.fixture
def patients():
    add_patient("p1", "Chalmers", "Peter", "1974-12-25", gender="male")
    add_patient(
        "p2",
        "Ärzteschaft",
        "Zoë",
        "1990-06",
        identifier=[{"system": "urn:oid:1.2.3", "value": "12345"}],
        gender="female",
    )
    add_patient("p3", "Windsor", "Jim", "1955-01-01", gender="male")


@pytest.fixture
def observations(patients):
    add_observation("o1", "p1", "1234-5", "2013-01-15", performer=[{"reference": "Patient/p3"}])
    add_observation("o2", "p1", "9999-9", "2013-02-10T10:00:00Z", category="vital-signs")
    add_observation("o3", "p2", "1234-5", "2014-06")


# --- Parameter types --------------------------------------------------------------------------


def test_reference_search_by_id_type_and_absolute_url(observations):
    assert ids(search("Observation", "patient=p1")) == ["o1", "o2"]
    assert ids(search("Observation", "patient=Patient/p1")) == ["o1", "o2"]
    assert ids(search("Observation", "subject:Patient=p2")) == ["o3"]
    own_url = settings.FHIR["BASE_URL"] + "/Patient/p2"
    assert ids(search("Observation", f"subject={own_url}")) == ["o3"]
    assert ids(search("Observation", "performer=Patient/p3")) == ["o1"]
    assert ids(search("Observation", "subject=Group/p1")) == []


def test_token_search_forms(observations):
    assert ids(search("Observation", f"code={LOINC}|1234-5")) == ["o1", "o3"]
    assert ids(search("Observation", "code=1234-5")) == ["o1", "o3"]
    assert ids(search("Observation", "code=|1234-5")) == []
    assert ids(search("Observation", f"code={LOINC}|")) == ["o1", "o2", "o3"]
    assert ids(search("Observation", "code=1234-5,9999-9")) == ["o1", "o2", "o3"]
    assert ids(search("Observation", "code:not=1234-5")) == ["o2"]
    assert ids(search("Observation", f"category={CATEGORY}|vital-signs")) == ["o2"]


def test_repeated_parameters_are_and(observations):
    assert ids(search("Observation", "patient=p1&code=1234-5")) == ["o1"]
    assert ids(search("Observation", "date=ge2013-02&date=lt2014")) == ["o2"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("date=2013", ["o1", "o2"]),
        ("date=eq2013-01", ["o1"]),
        ("date=2013-01-15", ["o1"]),
        # A finer search value cannot contain a whole stored day.
        ("date=2013-01-15T10:00", []),
        ("date=ne2013", ["o3"]),
        ("date=gt2013-01-31", ["o2", "o3"]),
        ("date=lt2013-02", ["o1"]),
        ("date=ge2013-02-10", ["o2", "o3"]),
        ("date=le2013-02-10", ["o1", "o2"]),
        ("date=sa2013-02-10", ["o3"]),
        ("date=eb2013-02-10", ["o1"]),
        ("date=ap2014-06-15", ["o3"]),
        ("date=>2013-12-31", ["o3"]),
        ("date=<=2013-01-15", ["o1"]),
        ("date=2013-01,2014", ["o1", "o3"]),
    ],
)
def test_date_prefixes(observations, query, expected):
    assert ids(search("Observation", query)) == expected


def test_date_search_on_a_partial_stored_date(patients):
    assert ids(search("Patient", "birthdate=1990")) == ["p2"]
    assert ids(search("Patient", "birthdate=1990-06-15")) == []
    assert ids(search("Patient", "birthdate=gt1980")) == ["p2"]


def test_string_search_is_starts_with_and_folds_case_and_accents(patients):
    assert ids(search("Patient", "name=chal")) == ["p1"]
    assert ids(search("Patient", "name=PETER")) == ["p1"]
    assert ids(search("Patient", "family=arzte")) == ["p2"]
    assert ids(search("Patient", "given=zoe")) == ["p2"]
    assert ids(search("Patient", "name=halmers")) == []
    assert ids(search("Patient", "name:contains=halm")) == ["p1"]
    assert ids(search("Patient", "family:exact=Chalmers")) == ["p1"]
    assert ids(search("Patient", "family:exact=chalmers")) == []
    assert ids(search("Patient", "name=jim,peter")) == ["p1", "p3"]


def test_identifier_and_gender_tokens(patients):
    assert ids(search("Patient", "identifier=urn:oid:1.2.3|12345")) == ["p2"]
    assert ids(search("Patient", "identifier=12345")) == ["p2"]
    assert ids(search("Patient", "identifier=other|12345")) == []
    assert ids(search("Patient", "gender=male")) == ["p1", "p3"]


def test_id_and_last_updated(patients):
    assert ids(search("Patient", "_id=p1,p3")) == ["p1", "p3"]
    assert ids(search("Patient", "_id:not=p1")) == ["p2", "p3"]
    assert ids(search("Patient", "_lastUpdated=gt2000-01-01")) == ["p1", "p2", "p3"]
    assert ids(search("Patient", "_lastUpdated=lt2000-01-01")) == []


def test_deleted_resources_are_not_found(patients):
    do_delete("Patient", "p1")
    assert ids(search("Patient", "name=chalmers")) == []
    assert search("Patient").total == 2


def test_empty_values_are_ignored(patients):
    result = search("Patient", "name=&gender=male&_sort=&_count=")
    assert ids(result) == ["p1", "p3"]
    assert result.self_url == f"{BASE}/Patient?gender=male&_count=20&_offset=0"


# --- Sorting and paging -----------------------------------------------------------------------


def test_sort_by_date_string_id_and_last_updated(patients):
    assert ids(search("Patient", "_sort=birthdate")) == ["p3", "p1", "p2"]
    assert ids(search("Patient", "_sort=-birthdate")) == ["p2", "p1", "p3"]
    assert ids(search("Patient", "_sort=family")) == ["p2", "p1", "p3"]
    assert ids(search("Patient", "_sort=-_id")) == ["p3", "p2", "p1"]
    assert ids(search("Patient", "_sort=-_lastUpdated")) == ["p3", "p2", "p1"]
    assert ids(search("Patient", "_sort=gender,-birthdate")) == ["p2", "p1", "p3"]


def test_sort_puts_resources_without_the_value_last(patients):
    do_create("Patient", {"resourceType": "Patient"}, fhir_id="p0")
    assert ids(search("Patient", "_sort=birthdate"))[-1] == "p0"
    assert ids(search("Patient", "_sort=-birthdate"))[-1] == "p0"


def test_paging_with_absolute_links_and_total():
    for number in range(5):
        add_patient(f"p{number}", "Smith", f"Given{number}", f"19{50 + number}-01-01")
    first = search("Patient", "family=smith&_sort=birthdate&_count=2")
    assert first.total == 5
    assert ids(first) == ["p0", "p1"]
    assert first.self_url == f"{BASE}/Patient?family=smith&_sort=birthdate&_count=2&_offset=0"
    assert first.previous_url is None
    second = follow(first.next_url)
    assert ids(second) == ["p2", "p3"]
    assert follow(second.previous_url).matches == first.matches
    third = follow(second.next_url)
    assert ids(third) == ["p4"]
    assert third.next_url is None


def test_count_is_capped_and_zero_gives_the_total_only(patients):
    capped = search("Patient", "_count=100000")
    assert f"_count={settings.FHIR['MAX_PAGE_SIZE']}" in capped.self_url
    only_total = search("Patient", "_count=0")
    assert only_total.total == 3 and only_total.matches == [] and only_total.next_url is None
    summary = search("Patient", "_summary=count")
    assert summary.total == 3 and summary.matches == []


def test_the_total_counts_every_match_whatever_the_page(patients, django_assert_num_queries):
    with django_assert_num_queries(1):  # the total comes with the page
        first = search("Patient", "_count=1")
    assert first.total == 3 and ids(first) == ["p1"]
    with django_assert_num_queries(2):  # an empty page past the end counts on its own
        past_the_end = search("Patient", "_count=1&_offset=10")
    assert past_the_end.total == 3 and past_the_end.matches == []
    nothing = search("Patient", "family=Nobody")
    assert nothing.total == 0 and nothing.matches == []


def test_total_none_skips_the_count(patients, django_assert_num_queries):
    with django_assert_num_queries(1):
        result = search("Patient", "_total=none")
    assert result.total is None and len(result.matches) == 3


# --- _include and _revinclude -----------------------------------------------------------------


def test_include_adds_referenced_resources_once(observations):
    result = search("Observation", "code=1234-5&_include=Observation:subject")
    assert ids(result) == ["o1", "o3"]
    assert [(e.resource_type, e.fhir_id) for e in result.includes] == [
        ("Patient", "p1"),
        ("Patient", "p2"),
    ]
    everything = search("Observation", "patient=p1&_include=Observation:*")
    assert {e.fhir_id for e in everything.includes} == {"p1", "p3"}
    typed = search("Observation", "_include=Observation:performer:Practitioner")
    assert typed.includes == []


def test_include_never_repeats_a_match(patients):
    link = [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]
    add_patient("p4", "Linked", "Lou", "2000-01-01", link=link)
    result = search("Patient", "_include=Patient:link")
    assert ids(result) == ["p1", "p2", "p3", "p4"]
    assert result.includes == []


def test_revinclude_adds_resources_that_refer_to_matches(observations):
    result = search("Patient", "_id=p1&_revinclude=Observation:subject")
    assert ids(result) == ["p1"]
    assert [e.fhir_id for e in result.includes] == ["o1", "o2"]
    assert "_revinclude=Observation:subject" in result.self_url


def test_include_through_a_parameter_that_may_target_any_type(observations):
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": "Observation/o1"}, {"reference": "Patient/p2"}],
        "recorded": "2013-01-15T10:00:00Z",
        "agent": [{"who": {"reference": "Patient/p1"}}],
    }
    do_create("Provenance", provenance, fhir_id="prov1")
    result = search("Provenance", "_include=Provenance:target")
    assert {(e.resource_type, e.fhir_id) for e in result.includes} == {
        ("Observation", "o1"),
        ("Patient", "p2"),
    }
    assert ids(search("Provenance", "patient=p2")) == ["prov1"]
    assert ids(search("Provenance", "patient=Observation/o1")) == []
    revinclude = search("Observation", "_id=o1&_revinclude=Provenance:target")
    assert [e.fhir_id for e in revinclude.includes] == ["prov1"]


def test_include_narrow_limits_included_resources(observations):
    result = search(
        "Observation",
        "_include=Observation:subject",
        include_narrow=patient_compartment_q("p2"),
    )
    assert [e.fhir_id for e in result.includes] == ["p2"]


# --- Strict and lenient handling --------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "unknown=1",
        "name:missing=true",
        "birthdate=yesterday",
        "general-practitioner.name=x",
        "_count=-1",
        "_count=ten",
        "_sort=gender,unknown",
        "_total=some",
        "_include=Observation:subject",
        "_include=Patient:name",
        "_include:iterate=Patient:link",
        "_summary=true",
        "_elements=name",
    ],
)
def test_strict_handling_rejects_what_it_cannot_honour(patients, query):
    with pytest.raises(InvalidSearch):
        search("Patient", query)


def test_lenient_handling_drops_bad_parameters_from_search_and_links(patients):
    result = search("Patient", "unknown=1&gender=male&birthdate=yesterday&_count=ten", lenient=True)
    assert ids(result) == ["p1", "p3"]
    assert result.self_url == f"{BASE}/Patient?gender=male&_count=20&_offset=0"


# --- Access narrowing, conditional matches, query count ---------------------------------------


def test_narrow_goes_into_the_query_before_count_and_paging(observations):
    narrow = patient_compartment_q("p1", "Observation")
    result = search("Observation", "_count=1", narrow=narrow)
    assert result.total == 2
    assert ids(result) == ["o1"]
    last = follow(result.next_url, narrow=narrow)
    assert ids(last) == ["o2"] and last.next_url is None


def test_find_matches_returns_the_unpaged_queryset(observations):
    matches = find_matches("Observation", [("code", "1234-5"), ("_count", "1")])
    assert sorted(matches.values_list("fhir_id", flat=True)) == ["o1", "o3"]
    with pytest.raises(InvalidSearch):
        find_matches("Observation", [("nonsense", "1")])


@pytest.mark.parametrize("how_many", [5, 50])
def test_query_count_does_not_grow_with_results(patients, how_many, django_assert_num_queries):
    for number in range(how_many):
        add_observation(f"x{number}", "p1", "1234-5", "2020-01-01")
    query = f"patient=p1&code={LOINC}|1234-5&_count=100&_include=Observation:subject"
    with django_assert_num_queries(2):  # the page with its total, the _include
        result = search("Observation", query)
    assert result.total == len(result.matches) == how_many
    assert len(result.includes) == 1


# --- The Bundle -------------------------------------------------------------------------------


def test_render_searchset_embeds_stored_resources(observations):
    result = search("Observation", "patient=p1&_count=1&_include=Observation:subject")
    bundle = orjson.loads(render_searchset(result))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 2
    assert {link["relation"] for link in bundle["link"]} == {"self", "next"}
    match, include = bundle["entry"]
    assert match["fullUrl"] == f"{BASE}/Observation/o1"
    assert match["search"] == {"mode": "match"}
    assert match["resource"]["id"] == "o1" and match["resource"]["meta"]["versionId"] == "1"
    assert include["fullUrl"] == f"{BASE}/Patient/p1"
    assert include["search"] == {"mode": "include"}


def test_render_searchset_without_matches_has_no_entries():
    bundle = orjson.loads(render_searchset(search("Patient", "_total=none")))
    assert "entry" not in bundle and "total" not in bundle
    assert bundle["link"][0]["relation"] == "self"
