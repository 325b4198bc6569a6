"""SMART scopes enforced by the FHIR API, end to end with real tokens: scope kind (v1, v2,
granular) x interaction x resource (the patient's own, another patient's, shared reference
data), asserting status codes, result sets and `total`.

Ada (Patient/pat-1) approves each app in the browser; the app then calls /fhir with the token.
"""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fhir_api import store
from fhir_api.models import Resource
from tests.smart_support import full_launch, make_app

pytestmark = pytest.mark.django_db

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LAUNCH = "launch/patient openid fhirUser"
SCOPES = {
    "v1": f"{LAUNCH} patient/*.read patient/*.write",
    "v2": f"{LAUNCH} patient/*.cruds",
    "granular": f"{LAUNCH} patient/Observation.cruds?category={CATEGORY}|laboratory "
    "patient/Patient.rs",
}
KINDS = tuple(SCOPES)
FHIR_JSON = "application/fhir+json"

# resource → (type, id) of the stored one, and a body to create
TARGETS = {
    "mine": ("Observation", "obs-mine-lab"),
    "theirs": ("Observation", "obs-theirs-lab"),
    "shared": ("Practitioner", "prac-1"),
}


def observation(patient, category="laboratory", **extra):
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
        **extra,
    }


BODIES = {
    "mine": observation("pat-1"),
    "theirs": observation("pat-2"),
    "shared": {"resourceType": "Practitioner", "name": [{"family": "Osler"}]},
}


@pytest.fixture
def records(patient_record, other_patient):
    """Ada's lab and vital-signs Observations, Grace's lab Observation, a Practitioner."""
    performer = {"performer": [{"reference": "Practitioner/prac-1"}]}
    # update-or-create: the `clinician` fixture may have stored Practitioner/prac-1
    store.do_update("Practitioner", "prac-1", BODIES["shared"] | {"id": "prac-1"})
    store.do_create("Observation", observation("pat-2", **performer), fhir_id="obs-theirs-lab")
    derived = {"derivedFrom": [{"reference": "Observation/obs-theirs-lab"}]}
    mine = observation("pat-1", **performer, **derived)
    store.do_create("Observation", mine, fhir_id="obs-mine-lab")
    store.do_create("Observation", observation("pat-1", "vital-signs"), fhir_id="obs-mine-vital")


class App:
    """An app holding an access token, calling the FHIR API as Django's test client."""

    def __init__(self, token):
        self.client = Client(headers={"Authorization": f"Bearer {token}"})

    def get(self, path, **params):
        return self.client.get(f"/fhir/{path}", params)

    def send(self, method, path, resource):
        return getattr(self.client, method)(
            f"/fhir/{path}", json.dumps(resource), content_type=FHIR_JSON
        )


@pytest.fixture
def app_for(patient_user, records):
    def launch(kind):
        scopes = SCOPES[kind]
        app, _ = make_app(f"{kind} app", confidential=False, scopes=scopes)
        _launch, token = full_launch(patient_user, app, scopes)
        assert token["scope"] == scopes
        assert token["patient"] == "pat-1"
        return App(token["access_token"])

    return launch


# --- The interactions, each reduced to what the table compares ------------------------------


def bundle_of(response):
    body = response.json()
    return response.status_code, body.get("total"), body.get("entry", [])


def do_read(app, resource):
    resource_type, fhir_id = TARGETS[resource]
    return app.get(f"{resource_type}/{fhir_id}").status_code


def do_vread(app, resource):
    resource_type, fhir_id = TARGETS[resource]
    return app.get(f"{resource_type}/{fhir_id}/_history/1").status_code


def do_search(app, resource):
    resource_type, fhir_id = TARGETS[resource]
    status, total, entries = bundle_of(app.get(resource_type, _id=fhir_id))
    if status != 200:
        return status
    return status, total, [entry["resource"]["id"] for entry in entries]


def do_history(app, resource):
    resource_type, fhir_id = TARGETS[resource]
    status, total, _entries = bundle_of(app.get(f"{resource_type}/{fhir_id}/_history"))
    return (status, total) if status == 200 else status


def do_create(app, resource):
    resource_type, _ = TARGETS[resource]
    return app.send("post", resource_type, BODIES[resource]).status_code


def do_update(app, resource):
    resource_type, fhir_id = TARGETS[resource]
    body = BODIES[resource] | {"id": fhir_id, "meta": {"tag": [{"code": "edited"}]}}
    return app.send("put", f"{resource_type}/{fhir_id}", body).status_code


def do_delete(app, resource):
    resource_type, fhir_id = TARGETS[resource]
    return app.client.delete(f"/fhir/{resource_type}/{fhir_id}").status_code


INCLUDES = {
    # Ada's Observations, reached back from her Patient
    "mine": ("Patient", {"_id": "pat-1", "_revinclude": "Observation:subject"}),
    # Grace's Observation, which Ada's lab result names in derivedFrom
    "theirs": ("Observation", {"_id": "obs-mine-lab", "_include": "Observation:derived-from"}),
    # the Practitioner who performed Ada's lab result
    "shared": ("Observation", {"_id": "obs-mine-lab", "_include": "Observation:performer"}),
}


def do_include(app, resource):
    resource_type, params = INCLUDES[resource]
    status, _total, entries = bundle_of(app.get(resource_type, **params))
    included = sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in entries
        if e["search"]["mode"] == "include"
    )
    return status, included


def do_transaction_entry(app, resource):
    """A transaction creating one of Ada's lab results and updating the target."""
    resource_type, fhir_id = TARGETS[resource]
    before = Resource.objects.exclude(resource_type="AuditEvent").count()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation("pat-1"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": BODIES[resource] | {"id": fhir_id},
                "request": {"method": "PUT", "url": f"{resource_type}/{fhir_id}"},
            },
        ],
    }
    response = app.send("post", "", bundle)
    if response.status_code != 200:
        # one refused entry: nothing was written (AuditEvents are the server's own record)
        assert Resource.objects.exclude(resource_type="AuditEvent").count() == before
    return response.status_code


INTERACTIONS = {
    "read": do_read,
    "vread": do_vread,
    "search": do_search,
    "history": do_history,
    "create": do_create,
    "update": do_update,
    "delete": do_delete,
    "include": do_include,
    "transaction entry": do_transaction_entry,
}

MINE_INCLUDED = ["Observation/obs-mine-lab", "Observation/obs-mine-vital"]

# interaction → resource → expected outcome per kind (v1, v2, granular). Granular grants only
# Ada's lab Observations and her Patient record: no Practitioner, no vital signs.
EXPECTED = {
    "read": {"mine": (200, 200, 200), "theirs": (404, 404, 404), "shared": (200, 200, 403)},
    "vread": {"mine": (200, 200, 200), "theirs": (404, 404, 404), "shared": (200, 200, 403)},
    "search": {
        "mine": ((200, 1, ["obs-mine-lab"]),) * 3,
        "theirs": ((200, 0, []),) * 3,
        "shared": ((200, 1, ["prac-1"]), (200, 1, ["prac-1"]), 403),
    },
    "history": {
        "mine": ((200, 1),) * 3,
        "theirs": (404, 404, 404),
        "shared": ((200, 1), (200, 1), 403),
    },
    "create": {"mine": (201, 201, 201), "theirs": (403, 403, 403), "shared": (403, 403, 403)},
    "update": {"mine": (200, 200, 200), "theirs": (403, 403, 403), "shared": (403, 403, 403)},
    "delete": {"mine": (204, 204, 204), "theirs": (403, 403, 403), "shared": (403, 403, 403)},
    "include": {
        "mine": ((200, MINE_INCLUDED), (200, MINE_INCLUDED), (200, ["Observation/obs-mine-lab"])),
        "theirs": ((200, []),) * 3,
        "shared": (
            (200, ["Practitioner/prac-1"]),
            (200, ["Practitioner/prac-1"]),
            (200, []),
        ),
    },
    "transaction entry": {
        "mine": (200, 200, 200),
        "theirs": (403, 403, 403),
        "shared": (403, 403, 403),
    },
}

CASES = [
    pytest.param(kind, interaction, resource, outcomes[KINDS.index(kind)])
    for interaction, by_resource in EXPECTED.items()
    for resource, outcomes in by_resource.items()
    for kind in KINDS
]


@pytest.mark.parametrize(("kind", "interaction", "resource", "expected"), CASES)
def test_scope_enforcement_table(app_for, kind, interaction, resource, expected):
    app = app_for(kind)
    assert INTERACTIONS[interaction](app, resource) == expected


# --- Around the table ----------------------------------------------------------------------


def test_another_patients_record_gives_the_same_404_as_a_missing_one(app_for):
    app = app_for("v2")
    theirs = app.get("Observation/obs-theirs-lab")
    missing = app.get("Observation/obs-theirs-lax")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content.replace(b"obs-theirs-lax", b"obs-theirs-lab")
    assert app.get("Patient/pat-2").status_code == 404


def test_a_type_the_scopes_do_not_name_is_403_with_an_operation_outcome(app_for):
    app = app_for("granular")
    for response in (app.get("Condition"), app.get("Condition/c1"), app.get("Practitioner")):
        assert response.status_code == 403
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "forbidden"
    form = "application/x-www-form-urlencoded"
    posted = app.client.post("/fhir/Condition/_search", "code=x", content_type=form)
    assert posted.status_code == 403


def test_granular_scopes_hide_and_protect_what_their_criteria_leave_out(app_for):
    app = app_for("granular")
    assert app.get("Observation/obs-mine-vital").status_code == 404
    status, total, entries = bundle_of(app.get("Observation"))
    assert (status, total) == (200, 1)
    assert [e["resource"]["id"] for e in entries] == ["obs-mine-lab"]
    assert app.send("post", "Observation", observation("pat-1", "vital-signs")).status_code == 403
    to_vital = observation("pat-1", "vital-signs") | {"id": "obs-mine-lab"}
    assert app.send("put", "Observation/obs-mine-lab", to_vital).status_code == 403
    assert app.client.delete("/fhir/Observation/obs-mine-vital").status_code == 403
    assert not store.read("Observation", "obs-mine-vital").deleted


def test_a_write_cannot_move_a_resource_to_another_patient(app_for):
    app = app_for("v2")
    moved = observation("pat-2") | {"id": "obs-mine-lab"}
    assert app.send("put", "Observation/obs-mine-lab", moved).status_code == 403
    assert '"Patient/pat-1"' in store.read("Observation", "obs-mine-lab").content
    both = observation("pat-1", performer=[{"reference": "Patient/pat-2"}])
    assert app.send("post", "Observation", both).status_code == 403


def test_total_and_paging_stay_right_under_a_patient_scope(app_for):
    for n in range(23):
        store.do_create("Observation", observation("pat-1"), fhir_id=f"ada-{n:02}")
        store.do_create("Observation", observation("pat-2"), fhir_id=f"grace-{n:02}")
    app = app_for("v1")
    seen, total, pages = [], None, 0
    response = app.get("Observation", category="laboratory", _count=10, _sort="_id")
    while True:
        status, total, entries = bundle_of(response)
        assert status == 200
        pages += 1
        seen += [entry["resource"]["id"] for entry in entries]
        links = {link["relation"]: link["url"] for link in response.json()["link"]}
        if "next" not in links:
            break
        response = app.client.get(links["next"])
    assert total == 24 and pages == 3
    assert sorted(seen) == sorted([*(f"ada-{n:02}" for n in range(23)), "obs-mine-lab"])


def fhir_urls(entries):
    """`Type/id` of history entries, leaving out the AuditEvents of the test's own requests."""
    urls = {entry["fullUrl"].split("/fhir/")[1] for entry in entries}
    return {url for url in urls if not url.startswith("AuditEvent/")}


def test_type_and_system_history_list_only_what_the_scopes_reach(app_for):
    app = app_for("v2")
    status, total, entries = bundle_of(app.get("Observation/_history"))
    assert (status, total) == (200, 2)
    assert {e["resource"]["id"] for e in entries} == {"obs-mine-lab", "obs-mine-vital"}
    status, total, entries = bundle_of(app.get("_history", _count=100))
    assert fhir_urls(entries) == {
        "Patient/pat-1",
        "Practitioner/prac-1",
        "Observation/obs-mine-lab",
        "Observation/obs-mine-vital",
    }
    assert total == len(entries)
    granular = app_for("granular")
    status, total, entries = bundle_of(granular.get("_history", _count=100))
    assert fhir_urls(entries) == {
        "Patient/pat-1",
        "Observation/obs-mine-lab",
    }


def test_read_only_scopes_cannot_write_anything(app_for, patient_user):
    scopes = f"{LAUNCH} patient/*.read"
    app, _ = make_app("reader", confidential=False, scopes=scopes)
    reader = App(full_launch(patient_user, app, scopes)[1]["access_token"])
    assert reader.get("Observation/obs-mine-lab").status_code == 200
    assert reader.send("post", "Observation", observation("pat-1")).status_code == 403
    assert reader.client.delete("/fhir/Observation/obs-mine-lab").status_code == 403


@pytest.mark.parametrize(
    ("user_fixture", "pat_2_status"), [("patient_user", 404), ("clinician", 200)]
)
def test_user_scopes_reach_what_the_user_may_reach(request, user_fixture, pat_2_status):
    user = request.getfixturevalue(user_fixture)
    request.getfixturevalue("records")
    scopes = "openid fhirUser user/*.rs"
    app, _ = make_app("user app", confidential=False, scopes=scopes)
    token = full_launch(user, app, scopes)[1]
    app = App(token["access_token"])
    assert app.get("Patient/pat-1").status_code == 200
    assert app.get("Patient/pat-2").status_code == pat_2_status
    assert app.get("Observation/obs-theirs-lab").status_code == pat_2_status
    assert app.send("post", "Observation", observation("pat-1")).status_code == 403


def test_a_staff_session_keeps_full_access(records, fhir):
    assert fhir.get("/fhir/Observation/obs-theirs-lab").status_code == 200
    assert fhir.get("/fhir/Observation").json()["total"] == 3
    assert fhir.get("/fhir/_history").status_code == 200


def test_the_policy_costs_no_query(app_for, without_audit):
    """The token row lookup (revocation) and the search's page with its total; the policy is
    built from the token's claims and the compartment filter joins the same SQL."""
    app = app_for("granular")
    app.get("Observation")  # the first request of a token builds and caches its grants

    def queries_of(path, **params):
        with CaptureQueriesContext(connection) as captured:
            response = app.get(path, **params)
        assert response.status_code == 200
        # A key created inside the test's never-committed transaction is reloaded on every
        # request; a committed one is cached in process (smart_auth/keys.py).
        return [q["sql"] for q in captured if "smart_auth_signingkey" not in q["sql"]]

    search = queries_of("Observation", code="http://loinc.org|2345-7")
    assert len(search) == 2 and "oauth2_provider_accesstoken" in search[0]
    assert len(queries_of("Observation/obs-mine-lab")) == 2
