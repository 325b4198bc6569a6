"""Structure of every page a person meets: one h1, a label for every control, checkboxes and
radios in a fieldset with a legend, real <button>s in a sensible order, CSRF tokens in every
POST form, and no script, inline style or asset from another origin."""

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.consent.conftest import Browser
from tests.consent.html_checks import buttons, find, parse, structure_problems
from tests.smart_support import Launch, full_launch, make_app, start

pytestmark = pytest.mark.django_db

SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"


def consent_page(browser, app):
    url = start(browser, Launch.new(app, SCOPES))["Location"]
    return url, browser.get(url)


def picker_page(browser, app):
    url, _page = consent_page(browser, app)
    picker = browser.submit(url, {"scope": SCOPES.split(), "approve": "1"})["Location"]
    return browser.get(picker, {"name": "a"})


@pytest.fixture
def pages(patient_user, patient_browser, clinician_browser, public_app, other_patient):
    """Every kind of page, as its visitor sees it (name -> response)."""
    make_app("EHR app", confidential=False, launch_uri="https://app.example.org/launch")
    full_launch(patient_user, public_app, SCOPES)
    anonymous = Browser()
    login_url = anonymous.get(consent_page(anonymous, public_app)[0])["Location"]
    patient_consent = consent_page(patient_browser, make_app("Second", confidential=False)[0])
    return {
        "login": anonymous.get(login_url),
        "login error": Browser().submit("/smart/login", {"username": "x", "password": "y"}),
        "consent (patient)": patient_consent[1],
        "consent (clinician)": consent_page(clinician_browser, public_app)[1],
        "consent with an error": patient_browser.submit(
            patient_consent[0], {"scope": ["nope"], "approve": "1"}
        ),
        "patient picker": picker_page(clinician_browser, public_app),
        "connected apps": patient_browser.get("/smart/manage"),
        "connected apps (empty)": clinician_browser.get("/smart/manage"),
        "launch": clinician_browser.get("/smart/ehr/launch"),
        "launch error": clinician_browser.submit("/smart/ehr/launch", {"client_id": "x"}),
        "patients": clinician_browser.get("/smart/ehr/patients", {"name": "a"}),
        "patient": clinician_browser.get("/smart/ehr/patients/pat-1"),
        "patient launch error": clinician_browser.submit(
            "/smart/ehr/patients/pat-1", {"client_id": "x"}
        ),
        "own record": patient_browser.get("/smart/ehr/patients/pat-1"),
        "error": Client().get("/smart/authorize", {"client_id": "nope"}),
    }


def test_every_page_keeps_the_structure_rules(pages):
    problems = {name: structure_problems(page) for name, page in pages.items()}
    assert {name: found for name, found in problems.items() if found} == {}


def test_no_page_may_be_framed_or_cached(pages):
    for name, page in pages.items():
        assert page["X-Frame-Options"] == "DENY", name
        assert "no-store" in page.get("Cache-Control", ""), name


def test_approve_is_the_primary_action_and_comes_before_deny(pages):
    for name in ("consent (patient)", "consent (clinician)", "patient picker"):
        actions = [(text, name_) for text, name_, _cls in buttons(pages[name])]
        decision = [entry for entry in actions if entry[1] in ("approve", "deny")]
        assert [entry[1] for entry in decision] == ["approve", "deny"], name
        classes = {b[1]: b[2] for b in buttons(pages[name])}
        assert "button--primary" in classes["approve"]
        assert "button--secondary" in classes["deny"]


def test_the_scope_list_is_a_fieldset_with_a_legend_and_a_hint(pages):
    elements = parse(pages["consent (patient)"])
    (fieldset,) = find(elements, "fieldset")
    assert "scope-help" in fieldset.attrs["aria-describedby"]
    checkboxes = find(elements, "input", type="checkbox")
    assert len(checkboxes) == len(SCOPES.split())
    assert all(fieldset in box.ancestors for box in checkboxes)


def test_errors_are_announced_and_tied_to_their_field(pages):
    html = pages["launch error"].content.decode()
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_client_id_error"' in html
    assert 'id="id_client_id_error"' in html
    consent = parse(pages["consent with an error"])
    (fieldset,) = find(consent, "fieldset")
    assert "scope-errors" in fieldset.attrs["aria-describedby"]
    assert find(consent, "div", role="alert", id="scope-errors")


def test_the_page_starts_with_a_skip_link_to_main(pages):
    elements = parse(pages["consent (patient)"])
    first_link = find(elements, "a")[0]
    assert first_link.attrs["href"] == "#main"
    assert find(elements, "main", id="main")


def test_the_stylesheet_shows_focus_and_fits_small_screens():
    with open(finders.find("consent/consent.css")) as stylesheet:
        css = stylesheet.read()
    assert ":focus-visible" in css and "outline: 3px solid" in css
    assert "@media (max-width:" in css
    assert "@import" not in css and "url(http" not in css
