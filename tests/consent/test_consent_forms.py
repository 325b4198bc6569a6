"""consent.forms: what a person may submit, decided against the pending request kept server-side."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from consent.forms import (
    ConsentForm,
    LaunchForm,
    PatientPickForm,
    PatientSearchForm,
    RevokeAppForm,
)
from smart_auth import authorization as authz
from smart_auth.patients import PAGE_SIZE
from tests.smart_support import REDIRECT_URI, create_patient, make_app, pkce_pair, query_of

pytestmark = pytest.mark.django_db

SCOPES = ["launch/patient", "openid", "fhirUser", "patient/*.rs", "offline_access"]


def request_for(user):
    request = RequestFactory().post("/")
    request.user = user
    request.session = SessionStore()
    return request


def pending_for(request, app, scopes=SCOPES):
    """A pending request for `app`, kept in the request's session as /smart/authorize does."""
    pending = authz.PendingAuthorization(
        id="pending-1",
        client_id=app.client_id,
        app_name=app.name,
        redirect_uri=REDIRECT_URI,
        state="state-1",
        code_challenge=pkce_pair()[1],
        code_challenge_method="S256",
        scopes=list(scopes),
    )
    authz.do_store_pending(request.session, pending)
    return pending


def consent_form(user, app, data, scopes=SCOPES):
    request = request_for(user)
    pending = pending_for(request, app, scopes)
    return ConsentForm(request, pending, data=data), request


# --- ConsentForm ----------------------------------------------------------------------------


def test_every_requested_scope_is_offered_ticked_and_described(patient_user, public_app):
    form, _request = consent_form(patient_user, public_app, data=None)
    field = form.fields["scope"]
    assert [value for value, _label in field.choices] == SCOPES
    assert field.initial == SCOPES
    labels = dict(field.choices)
    assert labels["patient/*.rs"] == "Read all of your health records"
    assert labels["launch/patient"] == "Know which patient record is yours"


def test_unticking_a_scope_leaves_it_out(patient_user, public_app):
    ticked = [scope for scope in SCOPES if scope != "offline_access"]
    form, _request = consent_form(patient_user, public_app, {"scope": ticked, "approve": "1"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["scope"] == ticked


def test_ticked_scopes_come_back_in_request_order_once(patient_user, public_app):
    data = {"scope": ["patient/*.rs", "openid", "patient/*.rs"], "approve": "1"}
    form, _request = consent_form(patient_user, public_app, data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["scope"] == ["openid", "patient/*.rs"]


@pytest.mark.parametrize(
    "extra", ["user/*.cruds", "system/*.read", "patient/*.cruds", "PATIENT/*.rs", ""]
)
def test_a_scope_that_was_not_requested_is_refused(patient_user, public_app, extra):
    data = {"scope": ["openid", extra], "approve": "1"}
    form, _request = consent_form(patient_user, public_app, data)
    assert not form.is_valid()
    (error,) = form.errors.as_data()["scope"]
    assert error.code == "not_requested"
    assert extra in error.message % error.params
    assert "scope" not in form.cleaned_data


def test_a_scope_registered_for_the_app_but_not_requested_is_refused(patient_user, public_app):
    # public_app may be granted user/*.read, but this request did not ask for it
    form, _request = consent_form(
        patient_user, public_app, {"scope": ["openid", "user/*.read"], "approve": "1"}
    )
    assert not form.is_valid()


def test_approving_with_nothing_ticked_is_a_denial(patient_user, public_app):
    form, request = consent_form(patient_user, public_app, {"approve": "1"})
    assert form.is_valid(), form.errors
    params = query_of(form.save())
    assert params["error"] == "access_denied"
    assert params["error_description"] == "No scopes were approved"
    assert params["state"] == "state-1"
    with pytest.raises(authz.PendingNotFound):
        authz.get_pending(request.session, "pending-1")


def test_deny_wins_whatever_else_is_posted(patient_user, public_app):
    data = {"scope": ["openid", "system/*.cruds"], "approve": "1", "deny": "1"}
    form, request = consent_form(patient_user, public_app, data)
    assert form.denied
    assert form.is_valid(), form.errors
    params = query_of(form.save())
    assert params["error"] == "access_denied"
    assert params["error_description"] == "The user denied access"
    assert "code" not in params
    with pytest.raises(authz.PendingNotFound):
        authz.get_pending(request.session, "pending-1")


def test_a_clinician_picks_a_patient_before_anything_is_granted(clinician, public_app):
    data = {"scope": ["launch/patient", "patient/*.rs"], "approve": "1"}
    form, request = consent_form(clinician, public_app, data)
    assert form.is_valid(), form.errors
    assert form.save() is None  # the picker comes next
    pending = authz.get_pending(request.session, "pending-1")
    assert pending.chosen_scopes == ["launch/patient", "patient/*.rs"]


def test_the_shared_record_is_named_for_a_patient_user(patient_user, public_app):
    form, _request = consent_form(patient_user, public_app, data=None)
    patient, own = form.get_shared_record()
    assert own and patient.name == "Ada Lovelace" and patient.birth_date == "1990-01-01"


def test_a_clinician_has_no_shared_record_until_they_pick(clinician, public_app):
    form, _request = consent_form(clinician, public_app, data=None)
    assert form.get_shared_record() == (None, False)
    assert form.summary.needs_patient_choice


# --- Patient picker -------------------------------------------------------------------------


@pytest.fixture
def many_patients(db):
    for number in range(PAGE_SIZE + 5):
        create_patient(f"p{number:02d}", f"Given{number:02d}", "Family")
    create_patient("grace", "Grace", "Hopper")


def test_search_by_the_start_of_any_name(many_patients):
    results = PatientSearchForm({"name": "hop"}).get_results()
    assert [p.id for p in results.patients] == ["grace"]
    assert not results.has_next
    results = PatientSearchForm({"name": " GRACE "}).get_results()
    assert [p.id for p in results.patients] == ["grace"]


def test_search_results_are_paged(many_patients):
    first = PatientSearchForm({"name": "family"}).get_results()
    assert len(first.patients) == PAGE_SIZE and first.has_next and first.page == 1
    second = PatientSearchForm({"name": "family", "page": "2"}).get_results()
    assert len(second.patients) == 5 and not second.has_next
    assert not {p.id for p in first.patients} & {p.id for p in second.patients}


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999"])
def test_a_malformed_page_shows_the_first_page(many_patients, page):
    results = PatientSearchForm({"page": page}).get_results()
    assert results.page == 1 and results.patients


def test_picking_needs_an_existing_patient(clinician, public_app, patient_record):
    request = request_for(clinician)
    pending = pending_for(request, public_app)
    for data in ({}, {"patient": ""}, {"patient": "no-such-patient"}):
        form = PatientPickForm(request, pending, data={**data, "approve": "1"})
        assert not form.is_valid()
        assert form.errors["patient"] == ["Choose a patient from the list."]
    assert PatientPickForm(request, pending, data={"patient": patient_record}).is_valid()


def test_deny_on_the_picker_needs_no_patient(clinician, public_app):
    request = request_for(clinician)
    pending = pending_for(request, public_app)
    form = PatientPickForm(request, pending, data={"deny": "1"})
    assert form.is_valid(), form.errors
    assert query_of(form.save())["error"] == "access_denied"


# --- Connected apps and the launch page -----------------------------------------------------


def test_revoking_an_unknown_app_is_refused(patient_user):
    form = RevokeAppForm(patient_user, data={"client_id": "no-such-app"})
    assert not form.is_valid()
    assert "client_id" in form.errors


def test_the_launch_page_offers_only_active_apps_with_a_launch_uri(clinician, public_app):
    launchable, _ = make_app(
        "Launchable", confidential=False, launch_uri="https://app.example.org/launch"
    )
    make_app(
        "Switched off",
        confidential=False,
        launch_uri="https://off.example.org/launch",
        is_active=False,
    )
    form = LaunchForm(clinician)
    assert list(form.fields["client_id"].queryset) == [launchable]


def test_the_launch_page_refuses_an_unknown_patient(clinician):
    app, _ = make_app("Launchable", confidential=False, launch_uri="https://app.example.org/l")
    form = LaunchForm(clinician, data={"client_id": app.client_id, "patient": "nobody"})
    assert not form.is_valid()
    assert form.errors["patient"] == ["There is no Patient with id 'nobody'"]


def test_the_launch_page_refuses_another_patients_encounter(clinician, patient_record):
    from tests.flows.smart_ehr_launch.conftest import create_encounter

    app, _ = make_app("Launchable", confidential=False, launch_uri="https://app.example.org/l")
    create_encounter("enc-2", create_patient("pat-2", "Grace", "Hopper"))
    data = {"client_id": app.client_id, "patient": patient_record, "encounter": " enc-2 "}
    form = LaunchForm(clinician, data=data)
    assert not form.is_valid()
    assert form.errors["encounter"] == ["Encounter/enc-2 is not an encounter of Patient/pat-1"]


def test_a_patient_user_launches_with_their_own_record(patient_user, patient_record):
    app, _ = make_app("Launchable", confidential=False, launch_uri="https://app.example.org/l")
    form = LaunchForm(patient_user, data={"client_id": app.client_id, "patient": "someone"})
    assert "patient" not in form.fields
    assert form.is_valid(), form.errors
    url = form.save()
    assert url.startswith("https://app.example.org/l?") and "launch=" in url
