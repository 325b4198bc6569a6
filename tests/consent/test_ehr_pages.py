"""The minimal EHR pages (/smart/ehr/...): a clinician finds a patient by name, opens their
page and presses Launch for an app; a patient user only ever sees their own page. Launching is
a CSRF-protected POST that sends the browser to the app's launch URI with `iss` and `launch`."""

import pytest
from django.conf import settings

from smart_auth.models import LaunchHandle
from smart_auth.patients import PAGE_SIZE
from tests.consent.conftest import Browser
from tests.consent.html_checks import find, parse, structure_problems, text_of
from tests.flows.smart_ehr_launch.conftest import create_encounter
from tests.smart_support import create_patient, make_app, query_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def ehr_app(db):
    app, _ = make_app("Growth chart", confidential=False, launch_uri="https://app.example.org/l")
    return app


def names_listed(page):
    return [text_of(e) for e in find(parse(page), "span", **{"class": "choice__text"})]


# --- Patients -----------------------------------------------------------------------------


def test_patients_are_listed_by_family_then_given_name(clinician_browser):
    for fhir_id, given, family in [
        ("p1", "Zoe", "Adams"),
        ("p2", "Émile", "Zola"),
        ("p3", "Anna", "adams"),
        ("p0", "Bob", "Brown"),
    ]:
        create_patient(fhir_id, given, family)
    page = clinician_browser.get("/smart/ehr/patients")
    assert page.status_code == 200 and structure_problems(page) == []
    assert names_listed(page) == ["Anna adams", "Zoe Adams", "Bob Brown", "Émile Zola"]
    assert 'href="/smart/ehr/patients/p3"' in page.content.decode()


def test_patients_are_found_by_the_start_of_a_name(clinician_browser):
    create_patient("p1", "Ada", "Lovelace")
    create_patient("p2", "Grace", "Hopper")
    page = clinician_browser.get("/smart/ehr/patients", {"name": "LOVE"})
    assert names_listed(page) == ["Ada Lovelace"]
    empty = clinician_browser.get("/smart/ehr/patients", {"name": "nobody"})
    assert "No patient\u2019s name starts with \u201cnobody\u201d" in empty.content.decode()


def test_patients_are_paged(clinician_browser):
    for number in range(PAGE_SIZE + 3):
        create_patient(f"p{number}", "Given", f"Family{number:02d}")
    first = clinician_browser.get("/smart/ehr/patients")
    assert len(names_listed(first)) == PAGE_SIZE
    assert 'rel="next"' in first.content.decode()
    second = clinician_browser.get("/smart/ehr/patients", {"page": "2"})
    assert names_listed(second) == [f"Given Family{n}" for n in range(PAGE_SIZE, PAGE_SIZE + 3)]
    assert 'rel="prev"' in second.content.decode()


def test_a_patient_user_goes_straight_to_their_own_page(patient_browser, patient_record):
    response = patient_browser.get("/smart/ehr/patients")
    assert response.status_code == 302
    assert response["Location"] == f"/smart/ehr/patients/{patient_record}"


def test_the_ehr_pages_need_a_login(patient_record):
    for path in (
        "/smart/ehr/patients",
        f"/smart/ehr/patients/{patient_record}",
        "/smart/ehr/launch",
    ):
        response = Browser().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/smart/login")


# --- A patient's page ---------------------------------------------------------------------


def test_the_patients_page_shows_who_and_the_launchable_apps(
    clinician_browser, patient_record, ehr_app, public_app
):
    make_app("Off", confidential=False, launch_uri="https://off.example.org/l", is_active=False)
    page = clinician_browser.get(f"/smart/ehr/patients/{patient_record}")
    assert page.status_code == 200 and structure_problems(page) == []
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "<h1>Ada Lovelace</h1>" in html and "1 January 1990" in html
    buttons = find(parse(page), "button", name="client_id")
    assert [b.attrs["value"] for b in buttons] == [ehr_app.client_id]  # active, with a launch URI
    assert text_of(buttons[0]) == "Launch Growth chart"


def test_launch_sends_the_browser_to_the_app_with_iss_and_launch(
    clinician, clinician_browser, patient_record, ehr_app
):
    response = clinician_browser.submit(
        f"/smart/ehr/patients/{patient_record}", {"client_id": ehr_app.client_id}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://app.example.org/l?")
    params = query_of(response["Location"])
    assert params["iss"] == settings.FHIR_BASE_URL and len(params["launch"]) == 43
    handle = LaunchHandle.objects.get()
    assert (handle.user, handle.patient, handle.encounter) == (clinician, patient_record, "")
    assert handle.need_patient_banner is True


def test_launch_with_a_visit_of_the_patients(clinician_browser, patient_record, ehr_app):
    create_encounter("enc-old", patient_record, start="2025-01-05T10:00:00Z")
    create_encounter("enc-new", patient_record, start="2026-02-01T10:00:00Z")
    page = clinician_browser.get(f"/smart/ehr/patients/{patient_record}")
    radios = find(parse(page), "input", type="radio", name="encounter")
    assert [r.attrs["value"] for r in radios] == ["", "enc-new", "enc-old"]  # newest first
    assert "1 February 2026" in page.content.decode()
    response = clinician_browser.submit(
        f"/smart/ehr/patients/{patient_record}",
        {"client_id": ehr_app.client_id, "encounter": "enc-old"},
    )
    assert response.status_code == 302
    assert LaunchHandle.objects.get().encounter == "enc-old"


def test_an_encounter_that_is_not_offered_is_refused(
    clinician_browser, patient_record, other_patient, ehr_app
):
    create_encounter("enc-theirs", other_patient)
    response = clinician_browser.submit(
        f"/smart/ehr/patients/{patient_record}",
        {"client_id": ehr_app.client_id, "encounter": "enc-theirs"},
    )
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert not LaunchHandle.objects.exists()


def test_an_app_that_cannot_be_launched_is_refused(clinician_browser, patient_record, public_app):
    response = clinician_browser.submit(
        f"/smart/ehr/patients/{patient_record}", {"client_id": public_app.client_id}
    )
    assert response.status_code == 400
    assert not LaunchHandle.objects.exists()


def test_launch_needs_the_csrf_token(clinician_browser, patient_record, ehr_app):
    response = clinician_browser.post(
        f"/smart/ehr/patients/{patient_record}", {"client_id": ehr_app.client_id}
    )
    assert response.status_code == 403
    assert not LaunchHandle.objects.exists()


def test_a_patient_user_sees_only_their_own_page(patient_browser, patient_record, other_patient):
    own = patient_browser.get(f"/smart/ehr/patients/{patient_record}")
    assert own.status_code == 200 and "Your record" in own.content.decode()
    assert patient_browser.get(f"/smart/ehr/patients/{other_patient}").status_code == 404
    assert patient_browser.submit(f"/smart/ehr/patients/{other_patient}").status_code == 404


def test_an_unknown_patient_is_404(clinician_browser, db):
    assert clinician_browser.get("/smart/ehr/patients/nobody").status_code == 404


@pytest.mark.parametrize("patient_id", ["a%00b", "a%20b", "x" * 65, "a%2Fb"])
def test_what_cannot_be_a_fhir_id_is_404(clinician_browser, db, patient_id):
    """Never looked up: PostgreSQL refused the NUL byte with a 500 before."""
    assert clinician_browser.get(f"/smart/ehr/patients/{patient_id}").status_code == 404


def test_without_launchable_apps_the_page_says_so(clinician_browser, patient_record, public_app):
    html = clinician_browser.get(f"/smart/ehr/patients/{patient_record}").content.decode()
    assert "No app can be launched yet." in html and '<form method="post" novalidate>' not in html


# --- The launch form by ids ---------------------------------------------------------------


def test_the_launch_form_opens_the_app_with_iss_and_launch(
    clinician_browser, patient_record, ehr_app
):
    page = clinician_browser.get("/smart/ehr/launch")
    assert page.status_code == 200 and "Growth chart" in page.content.decode()
    response = clinician_browser.submit(
        "/smart/ehr/launch", {"client_id": ehr_app.client_id, "patient": patient_record}
    )
    assert response.status_code == 302
    params = query_of(response["Location"])
    assert params["iss"] == settings.FHIR_BASE_URL and params["launch"]
    assert clinician_browser.post("/smart/ehr/launch", {"client_id": "x"}).status_code == 403


def test_the_launch_form_explains_a_bad_patient(clinician_browser, ehr_app):
    response = clinician_browser.submit(
        "/smart/ehr/launch", {"client_id": ehr_app.client_id, "patient": "nobody"}
    )
    assert response.status_code == 400
    assert "There is no Patient with id" in response.content.decode()
    assert not LaunchHandle.objects.exists()


def test_the_launch_form_without_launchable_apps(clinician_browser, public_app):
    html = clinician_browser.get("/smart/ehr/launch").content.decode()
    assert "No app can be launched yet." in html
    assert 'class="stack"' not in html  # no launch form
