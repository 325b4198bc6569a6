"""Enforcing an AccessPolicy (fhir_api/access.py) with hand-built policies: what a grant reaches
in the SQL, what it may write, and the same 404 for "absent" and "not yours"."""

import orjson
import pytest
from rest_framework.test import APIRequestFactory

from fhir_api import access, store
from fhir_api.bundles import process_bundle
from fhir_api.exceptions import Forbidden, InvalidResource, ResourceNotFound
from fhir_api.models import Resource
from fhir_api.permissions import get_policy
from fhir_api.policy import FULL_ACCESS, AccessPolicy, Grant

pytestmark = pytest.mark.django_db

BASE = "http://testserver/fhir"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{CATEGORY}|laboratory"
ALL = frozenset("cruds")


def policy(*grants):
    return AccessPolicy(grants=grants)


def patient_grant(resource_type="*", letters="cruds", patient="pat-1", criteria=()):
    return Grant(resource_type, frozenset(letters), patient=patient, criteria=criteria)


def observation(subject, category="laboratory", **extra):
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
        "subject": {"reference": f"Patient/{subject}"},
        **extra,
    }


@pytest.fixture
def records():
    """Two patients, their Observations, a Practitioner (shared) and a Task (not shared)."""
    for patient in ("pat-1", "pat-2"):
        store.do_create("Patient", {"resourceType": "Patient", "gender": "female"}, fhir_id=patient)
    store.do_create("Practitioner", {"resourceType": "Practitioner"}, fhir_id="prac-1")
    performer = {"performer": [{"reference": "Practitioner/prac-1"}]}
    store.do_create("Observation", observation("pat-1", **performer), fhir_id="obs-1-lab")
    store.do_create("Observation", observation("pat-1", "vital-signs"), fhir_id="obs-1-vital")
    store.do_create("Observation", observation("pat-2", **performer), fhir_id="obs-2-lab")
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": "Patient/pat-1"},
    }
    store.do_create("Task", task, fhir_id="task-1")


def search_ids(the_policy, resource_type, query=()):
    result = access.access_search(
        the_policy, resource_type, list(query), lenient=False, base_url=BASE
    )
    return result.total, sorted(entry.fhir_id for entry in result.matches), result


# --- Interactions: no grant is 403 -----------------------------------------------------------


def test_a_type_without_a_grant_is_forbidden_for_search_and_read(records):
    only_patients = policy(patient_grant("Patient", "rs"))
    with pytest.raises(Forbidden, match="searching Observation"):
        search_ids(only_patients, "Observation")
    with pytest.raises(Forbidden, match="reading Observation"):
        access.access_resource(only_patients, "Observation", "obs-1-lab")
    assert access.access_resource(only_patients, "Patient", "pat-1").fhir_id == "pat-1"


def test_each_letter_allows_only_its_interactions(records):
    read_only = policy(patient_grant("Observation", "r"))
    assert access.access_resource(read_only, "Observation", "obs-1-lab")
    with pytest.raises(Forbidden):
        search_ids(read_only, "Observation")
    with pytest.raises(Forbidden):
        access.check_create(read_only, "Observation", observation("pat-1"))
    with pytest.raises(Forbidden):
        access.check_delete(read_only, "Observation", "obs-1-lab")
    search_only = policy(patient_grant("Observation", "s"))
    assert search_ids(search_only, "Observation")[0] == 2
    with pytest.raises(Forbidden):
        access.access_resource(search_only, "Observation", "obs-1-lab")


def test_no_grants_at_all_reach_nothing(records):
    with pytest.raises(Forbidden):
        search_ids(AccessPolicy(), "Patient")
    with pytest.raises(Forbidden):
        access.access_history(AccessPolicy(), count=10)


def test_an_unknown_type_is_404_before_any_permission_question(records):
    with pytest.raises(ResourceNotFound, match="not supported"):
        access.access_resource(AccessPolicy(), "Nonsense", "x")


# --- Reads: outside the compartment is the same 404 as absent --------------------------------


def test_another_patients_resource_is_not_found_exactly_like_a_missing_one(records):
    mine = policy(patient_grant())
    assert access.access_resource(mine, "Observation", "obs-1-lab").fhir_id == "obs-1-lab"
    with pytest.raises(ResourceNotFound) as theirs:
        access.access_resource(mine, "Observation", "obs-2-lab")
    with pytest.raises(ResourceNotFound) as missing:
        access.access_resource(mine, "Observation", "no-such-id")
    assert theirs.value.diagnostics == "Observation/obs-2-lab is not known"
    assert missing.value.diagnostics == "Observation/no-such-id is not known"
    with pytest.raises(ResourceNotFound):
        access.access_resource(mine, "Patient", "pat-2")
    with pytest.raises(ResourceNotFound):
        access.access_version(mine, "Observation", "obs-2-lab", "1")
    with pytest.raises(ResourceNotFound):
        access.access_history(mine, "Observation", "obs-2-lab", count=10)


def test_a_patient_grant_searches_only_the_compartment(records):
    mine = policy(patient_grant())
    assert search_ids(mine, "Observation")[:2] == (2, ["obs-1-lab", "obs-1-vital"])
    assert search_ids(mine, "Patient")[:2] == (1, ["pat-1"])
    assert search_ids(mine, "Observation", [("subject", "Patient/pat-2")])[:2] == (0, [])
    theirs = policy(patient_grant(patient="pat-2"))
    assert search_ids(theirs, "Observation")[:2] == (1, ["obs-2-lab"])


def test_total_and_paging_count_only_what_the_policy_reaches(records):
    for n in range(7):
        store.do_create("Observation", observation("pat-1"), fhir_id=f"more-1-{n}")
        store.do_create("Observation", observation("pat-2"), fhir_id=f"more-2-{n}")
    mine = policy(patient_grant())
    seen = []
    query = [("_count", "4"), ("_sort", "_id")]
    total, page, result = search_ids(mine, "Observation", query)
    seen += page
    offset = 4
    while result.next_url:
        total, page, result = search_ids(mine, "Observation", [*query, ("_offset", str(offset))])
        seen += page
        offset += 4
    assert total == 9
    assert len(seen) == 9 and all(not fhir_id.startswith(("obs-2", "more-2")) for fhir_id in seen)


def test_shared_reference_data_is_readable_but_not_writable_under_a_patient_grant(records):
    mine = policy(patient_grant())
    assert access.access_resource(mine, "Practitioner", "prac-1").fhir_id == "prac-1"
    assert search_ids(mine, "Practitioner")[:2] == (1, ["prac-1"])
    with pytest.raises(Forbidden):
        access.check_create(mine, "Practitioner", {"resourceType": "Practitioner"})
    with pytest.raises(Forbidden):
        access.check_update(
            mine, "Practitioner", "prac-1", {"resourceType": "Practitioner", "id": "prac-1"}
        )
    with pytest.raises(Forbidden):
        access.check_delete(mine, "Practitioner", "prac-1")


def test_types_outside_the_compartment_that_may_hold_patient_data_are_unreachable(records):
    """A Task (or Binary, Bundle, Device...) cannot be attributed to a patient: never shared."""
    mine = policy(patient_grant())
    with pytest.raises(Forbidden):
        access.access_resource(mine, "Task", "task-1")
    with pytest.raises(Forbidden):
        search_ids(mine, "Task")
    everyone = policy(Grant("*", frozenset("rs")))
    assert access.access_resource(everyone, "Task", "task-1").fhir_id == "task-1"


def test_grants_without_a_patient_reach_every_patient(records):
    clinician = policy(Grant("Observation", frozenset("rs")))
    assert search_ids(clinician, "Observation")[0] == 3
    assert access.access_resource(clinician, "Observation", "obs-2-lab")


def test_full_access_adds_no_filter(records):
    assert access.narrow_q(FULL_ACCESS, "Observation", "s") is None
    assert access.any_type_q(FULL_ACCESS, "r") is None
    assert search_ids(FULL_ACCESS, "Task")[0] == 1


# --- Granular criteria ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (LAB, ["obs-1-lab"]),
        ("laboratory", ["obs-1-lab"]),
        ("laboratory,exam", ["obs-1-lab"]),
        ("|laboratory", []),  # only codings without a system; ours have one
        (f"{CATEGORY}|", ["obs-1-lab", "obs-1-vital"]),
    ],
)
def test_a_category_criterion_limits_reads_in_the_sql(records, value, expected):
    labs = policy(patient_grant("Observation", "rs", criteria=(("category", value),)))
    assert search_ids(labs, "Observation")[1] == expected
    if "obs-1-vital" not in expected:
        with pytest.raises(ResourceNotFound):
            access.access_resource(labs, "Observation", "obs-1-vital")


def test_several_grants_on_one_type_are_a_union(records):
    both = policy(
        patient_grant("Observation", "rs", criteria=(("category", LAB),)),
        patient_grant("Observation", "rs", criteria=(("category", f"{CATEGORY}|vital-signs"),)),
    )
    assert search_ids(both, "Observation")[1] == ["obs-1-lab", "obs-1-vital"]
    mixed = policy(
        patient_grant("Observation", "rs", criteria=(("category", LAB),)),
        Grant("Observation", frozenset("r"), patient="pat-2"),
    )
    assert search_ids(mixed, "Observation")[1] == ["obs-1-lab"]
    assert access.access_resource(mixed, "Observation", "obs-2-lab")


@pytest.mark.parametrize(
    "criteria",
    [
        (("date", "ge2020"),),  # searchable, but a write cannot be checked against it
        (("nonsense", "1"),),
        (("_count", "1"),),  # a result parameter would be ignored, so matching everything
        (("code:below", "1234"),),
    ],
)
def test_criteria_the_server_cannot_check_fail_closed(records, criteria):
    odd = policy(patient_grant("Observation", "cruds", criteria=criteria))
    if criteria[0][0] != "date":
        with pytest.raises(Forbidden):
            search_ids(odd, "Observation")
    with pytest.raises(Forbidden):
        access.check_create(odd, "Observation", observation("pat-1"))


def test_a_criterion_on_every_type_reaches_only_types_that_have_the_parameter(records):
    labs_everywhere = policy(patient_grant("*", "rs", criteria=(("category", LAB),)))
    assert search_ids(labs_everywhere, "Observation")[1] == ["obs-1-lab"]
    with pytest.raises(Forbidden):
        search_ids(labs_everywhere, "Patient")


# --- Writes --------------------------------------------------------------------------------


def test_a_patient_grant_creates_only_inside_its_own_compartment(records):
    mine = policy(patient_grant())
    created = access.check_create(mine, "Observation", observation("pat-1"))
    assert created.fhir_id
    with pytest.raises(Forbidden, match="outside the patient compartment"):
        access.check_create(mine, "Observation", observation("pat-2"))
    no_subject = observation("pat-1")
    del no_subject["subject"]
    with pytest.raises(Forbidden):
        access.check_create(mine, "Observation", no_subject)
    both = observation("pat-1", performer=[{"reference": "Patient/pat-2"}])
    with pytest.raises(Forbidden):
        access.check_create(mine, "Observation", both)


def test_a_patient_grant_cannot_create_a_patient_even_by_naming_its_own_id(records):
    mine = policy(patient_grant())
    with pytest.raises(Forbidden):
        access.check_create(mine, "Patient", {"resourceType": "Patient", "id": "pat-1"})
    linked = {
        "resourceType": "Patient",
        "link": [{"other": {"reference": "Patient/pat-1"}, "type": "seealso"}],
    }
    with pytest.raises(Forbidden):
        access.check_create(mine, "Patient", linked)


def test_an_update_can_neither_move_a_resource_out_nor_take_another_patients(records):
    mine = policy(patient_grant())
    moved = observation("pat-2") | {"id": "obs-1-lab"}
    with pytest.raises(Forbidden):
        access.check_update(mine, "Observation", "obs-1-lab", moved)
    taken = observation("pat-1") | {"id": "obs-2-lab"}
    with pytest.raises(Forbidden):
        access.check_update(mine, "Observation", "obs-2-lab", taken)
    assert '"Patient/pat-2"' in store.read("Observation", "obs-2-lab").content
    assert '"Patient/pat-1"' in store.read("Observation", "obs-1-lab").content
    stored, created = access.check_update(
        mine, "Observation", "obs-1-lab", observation("pat-1", "exam") | {"id": "obs-1-lab"}
    )
    assert (stored.version_id, created) == (2, False)
    own = {"resourceType": "Patient", "id": "pat-1", "gender": "male"}
    assert access.check_update(mine, "Patient", "pat-1", own)[0].version_id == 2


def test_update_as_create_needs_only_the_new_content_inside(records):
    mine = policy(patient_grant("Observation", "u"))
    stored, created = access.check_update(
        mine, "Observation", "new-id", observation("pat-1") | {"id": "new-id"}
    )
    assert created and stored.fhir_id == "new-id"


def test_an_update_cannot_bring_back_another_patients_deleted_resource(records):
    """Its history would become readable: the last content before the delete must be inside."""
    store.do_delete("Observation", "obs-2-lab")
    store.do_delete("Observation", "obs-1-vital")
    mine = policy(patient_grant())
    with pytest.raises(Forbidden):
        access.check_update(
            mine, "Observation", "obs-2-lab", observation("pat-1") | {"id": "obs-2-lab"}
        )
    stored, created = access.check_update(
        mine, "Observation", "obs-1-vital", observation("pat-1") | {"id": "obs-1-vital"}
    )
    assert created and stored.version_id == 3


def test_a_delete_needs_the_current_content_inside(records):
    mine = policy(patient_grant())
    with pytest.raises(Forbidden):
        access.check_delete(mine, "Observation", "obs-2-lab")
    assert not store.read("Observation", "obs-2-lab").deleted
    assert access.check_delete(mine, "Observation", "obs-1-lab").deleted
    assert access.check_delete(mine, "Observation", "never-existed") is None


def test_write_criteria_hold_for_the_new_and_the_old_content(records):
    labs = policy(patient_grant("Observation", "cud", criteria=(("category", LAB),)))
    assert access.check_create(labs, "Observation", observation("pat-1"))
    with pytest.raises(Forbidden):
        access.check_create(labs, "Observation", observation("pat-1", "vital-signs"))
    to_vital = observation("pat-1", "vital-signs") | {"id": "obs-1-lab"}
    with pytest.raises(Forbidden):
        access.check_update(labs, "Observation", "obs-1-lab", to_vital)
    to_lab = observation("pat-1") | {"id": "obs-1-vital"}
    with pytest.raises(Forbidden):
        access.check_update(labs, "Observation", "obs-1-vital", to_lab)
    with pytest.raises(Forbidden):
        access.check_delete(labs, "Observation", "obs-1-vital")


def test_a_write_may_meet_different_grants_before_and_after(records):
    either = policy(
        patient_grant("Observation", "u", criteria=(("category", LAB),)),
        patient_grant("Observation", "u", criteria=(("category", f"{CATEGORY}|exam"),)),
    )
    to_exam = observation("pat-1", "exam") | {"id": "obs-1-lab"}
    assert access.check_update(either, "Observation", "obs-1-lab", to_exam)[0].version_id == 2


def test_a_body_that_is_not_an_object_is_400_not_403(records):
    mine = policy(patient_grant())
    with pytest.raises(InvalidResource):
        access.check_create(mine, "Observation", ["not", "a", "resource"])


# --- _include, history ----------------------------------------------------------------------


def test_included_resources_are_limited_like_reads(records):
    derived = observation("pat-1", derivedFrom=[{"reference": "Observation/obs-2-lab"}])
    store.do_create("Observation", derived, fhir_id="obs-1-derived")
    mine = policy(patient_grant())
    query = [
        ("_id", "obs-1-derived,obs-1-lab"),
        ("_include", "Observation:derived-from"),
        ("_include", "Observation:performer"),
        ("_include", "Observation:subject"),
    ]
    _total, _ids, result = search_ids(mine, "Observation", query)
    included = sorted(f"{e.resource_type}/{e.fhir_id}" for e in result.includes)
    assert included == ["Patient/pat-1", "Practitioner/prac-1"]
    observations_only = policy(patient_grant("Observation", "rs"))
    assert search_ids(observations_only, "Observation", query)[2].includes == []


def test_revincluded_resources_are_limited_too(records):
    mine = policy(patient_grant())
    query = [("_id", "prac-1"), ("_revinclude", "Observation:performer")]
    result = search_ids(mine, "Practitioner", query)[2]
    assert [e.fhir_id for e in result.includes] == ["obs-1-lab"]


def test_history_of_an_instance_needs_r_and_of_a_type_s(records):
    reader = policy(patient_grant("Observation", "r"))
    page = access.access_history(reader, "Observation", "obs-1-lab", count=10)
    assert page.total == 1
    with pytest.raises(Forbidden):
        access.access_history(reader, "Observation", count=10)
    searcher = policy(patient_grant("Observation", "s"))
    page = access.access_history(searcher, "Observation", count=10)
    assert sorted(stored.fhir_id for stored, _ in page.versions) == ["obs-1-lab", "obs-1-vital"]
    assert page.total == 2


def test_system_history_keeps_only_what_the_policy_may_search(records):
    mine = policy(patient_grant("*", "rs"))
    page = access.access_history(mine, count=50)
    seen = {stored.relative_url for stored, _ in page.versions}
    assert seen == {
        "Patient/pat-1",
        "Practitioner/prac-1",
        "Observation/obs-1-lab",
        "Observation/obs-1-vital",
    }
    assert page.total == 4
    assert access.access_history(FULL_ACCESS, count=50).total == 7


# --- Bundles --------------------------------------------------------------------------------


def transaction(*entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource):
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def test_a_transaction_with_one_forbidden_entry_changes_nothing(records):
    mine = policy(patient_grant())
    before = Resource.objects.count()
    bundle = transaction(post(observation("pat-1")), post(observation("pat-2")))
    with pytest.raises(Forbidden, match=r"Bundle.entry\[1\]"):
        process_bundle(bundle, base_url=BASE, policy=mine)
    assert Resource.objects.count() == before
    delete = {"request": {"method": "DELETE", "url": "Observation/obs-2-lab"}}
    with pytest.raises(Forbidden, match=r"Bundle.entry\[1\]"):
        process_bundle(transaction(post(observation("pat-1")), delete), base_url=BASE, policy=mine)
    assert Resource.objects.count() == before
    forbidden_type = {"request": {"method": "GET", "url": "Task/task-1"}}
    with pytest.raises(Forbidden, match=r"Bundle.entry\[0\]"):
        process_bundle(transaction(forbidden_type), base_url=BASE, policy=mine)


def test_a_batch_answers_each_entry_as_if_sent_alone(records):
    mine = policy(patient_grant())
    bundle = transaction(
        {"request": {"method": "GET", "url": "Observation/obs-1-lab"}},
        {"request": {"method": "GET", "url": "Observation/obs-2-lab"}},
        {"request": {"method": "GET", "url": "Observation?category=laboratory"}},
        post(observation("pat-2")),
        {"request": {"method": "GET", "url": "Task/task-1"}},
        kind="batch",
    )
    response = process_bundle(bundle, base_url=BASE, policy=mine)
    statuses = [entry["response"]["status"] for entry in response["entry"]]
    assert statuses == ["200 OK", "404 Not Found", "200 OK", "403 Forbidden", "403 Forbidden"]
    assert orjson.loads(orjson.dumps(response["entry"][2]["resource"]))["total"] == 1


def test_conditional_writes_only_see_what_the_policy_may_write(records):
    """Criteria that also match another patient's resource neither find nor reveal it."""
    identifier = [{"system": "urn:test", "value": "shared"}]
    theirs = observation("pat-2", identifier=identifier) | {"id": "obs-2-lab"}
    store.do_update("Observation", "obs-2-lab", theirs)
    mine = policy(patient_grant())
    put = {
        "resource": observation("pat-1", identifier=identifier),
        "request": {"method": "PUT", "url": "Observation?identifier=urn:test|shared"},
    }
    response = process_bundle(transaction(put), base_url=BASE, policy=mine)
    assert response["entry"][0]["response"]["status"] == "201 Created"
    assert store.read("Observation", "obs-2-lab").version_id == 2  # untouched
    delete = {"request": {"method": "DELETE", "url": "Observation?identifier=urn:test|shared"}}
    process_bundle(transaction(delete), base_url=BASE, policy=mine)  # one match: mine
    assert not store.read("Observation", "obs-2-lab").deleted
    conditional_create = post(observation("pat-1"))
    conditional_create["request"]["ifNoneExist"] = "identifier=urn:test|shared"
    response = process_bundle(transaction(conditional_create), base_url=BASE, policy=mine)
    assert response["entry"][0]["response"]["status"] == "201 Created"


def test_conditional_references_only_resolve_to_what_the_policy_may_search(records):
    store.do_update(
        "Patient",
        "pat-2",
        {
            "resourceType": "Patient",
            "id": "pat-2",
            "identifier": [{"system": "urn:mrn", "value": "2"}],
        },
    )
    mine = policy(patient_grant())
    entry = post(observation("pat-1") | {"focus": [{"reference": "Patient?identifier=urn:mrn|2"}]})
    with pytest.raises(InvalidResource, match="matches no resource"):
        process_bundle(transaction(entry), base_url=BASE, policy=mine)


# --- Where the policy comes from ----------------------------------------------------------


def test_a_staff_session_gets_full_access_and_a_token_only_its_grants(staff_user):
    request = APIRequestFactory().get("/fhir/Patient")
    request.user, request.auth = staff_user, None
    assert get_policy(request) is FULL_ACCESS
    token_policy = policy(patient_grant())
    request.auth = token_policy
    assert get_policy(request) is token_policy


def test_versions_from_before_a_resource_moved_into_reach_stay_hidden(records):
    """obs-2-lab belonged to pat-2 and is moved to pat-1: pat-1's token sees only the new
    version, by vread and in history."""
    store.do_update("Observation", "obs-2-lab", {**observation("pat-1"), "id": "obs-2-lab"})
    mine = policy(patient_grant("Observation", "rs"))
    assert access.access_version(mine, "Observation", "obs-2-lab", "2").version_id == 2
    with pytest.raises(ResourceNotFound):
        access.access_version(mine, "Observation", "obs-2-lab", "1")
    page = access.access_history(mine, "Observation", "obs-2-lab", count=10)
    assert [stored.version_id for stored, _ in page.versions] == [2]
    type_page = access.access_history(mine, "Observation", count=10)
    assert ("obs-2-lab", 1) not in {(s.fhir_id, s.version_id) for s, _ in type_page.versions}
    assert access.access_version(FULL_ACCESS, "Observation", "obs-2-lab", "1").version_id == 1
