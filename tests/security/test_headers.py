"""Security headers on the pages people see and on the API: a CSP without inline script,
no framing, no leaking referrers, no sniffing; HSTS over HTTPS; templates with no inline code."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def csp_of(response):
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (directive.split() for directive in policy.split(";") if directive)
    }


@pytest.mark.parametrize("path", ["/smart/login", "/admin/login/", "/fhir/metadata", "/nowhere"])
def test_every_response_carries_the_policy_and_the_hardening_headers(path):
    response = Client().get(path)
    csp = csp_of(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_consent_form_may_still_send_the_person_back_to_the_app():
    """Browsers apply form-action to the redirect after a form post: the consent decision
    redirects to the app's own origin, so the policy must not restrict form targets."""
    assert "form-action" not in csp_of(Client().get("/smart/login"))


INLINE_CODE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_no_template_needs_inline_script_or_style(template):
    text = template.read_text()
    found = [what for pattern, what in INLINE_CODE if pattern.search(text)]
    assert not found, f"{template.relative_to(TEMPLATES)}: {', '.join(found)}"


def test_django_admin_pages_load_their_scripts_from_static_files(admin_user):
    staff = Client()
    staff.force_login(admin_user)
    for path in ["/admin/", "/admin/smart_auth/smartapp/", "/admin/smart_auth/smartapp/add/"]:
        response = staff.get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert scripts, path
        for tag in scripts:
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)


def test_over_https_responses_carry_hsts(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = Client().get("/smart/login", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in Client().get("/smart/login")


def test_session_and_csrf_cookies_are_httponly_and_samesite_lax(patient_user):
    browser = Client()
    page = browser.get("/smart/login")
    csrf = page.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax"
    signed_in = browser.post(
        "/smart/login",
        {"username": "ada", "password": "pw-ada-123", "csrfmiddlewaretoken": csrf.value},
    )
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["httponly"] and session["samesite"] == "Lax"
