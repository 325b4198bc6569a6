"""Sign-in lockout (django-axes): per account, per address, a clear 429 page or JSON error,
the real client address behind a trusted proxy, and the administrators' unlock paths."""

import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-ins; try again in"


def sign_in(username, password, address="192.0.2.10", **extra):
    return Client(REMOTE_ADDR=address, **extra).post(
        "/smart/login", {"username": username, "password": password}
    )


def admin_token(username, password, address="192.0.2.10"):
    return Client(REMOTE_ADDR=address).post(
        "/auth/token", json.dumps({"username": username, "password": password}), "application/json"
    )


def fail(times, username="ada", address="192.0.2.10", **extra):
    """`times` failed sign-ins; all but a locking last one show the form again."""
    statuses = [sign_in(username, "wrong", address, **extra).status_code for _ in range(times)]
    assert set(statuses[:-1]) <= {200}


def assert_locked_page(response, minutes=15):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= minutes * 60
    page = response.content.decode()
    assert f"{LOCKED} {minutes} minutes or ask an administrator" in page
    assert "<h1>Too many failed sign-ins</h1>" in page
    assert response["Content-Type"].startswith("text/html")


def test_the_fifth_failure_locks_the_account_with_a_clear_page(patient_user):
    fail(4)
    assert_locked_page(sign_in("ada", "wrong"))
    # Even the right password is refused while locked.
    assert_locked_page(sign_in("ada", "pw-ada-123"))


def test_the_account_is_locked_from_every_address(patient_user):
    for number in range(5):
        sign_in("ada", "wrong", address=f"192.0.2.{number + 20}")
    assert_locked_page(sign_in("ada", "pw-ada-123", address="198.51.100.1"))


def test_other_accounts_and_addresses_are_not_affected(patient_user, clinician):
    fail(5)
    assert sign_in("osler", "pw-osler-123", address="198.51.100.1").status_code == 302


def test_an_address_is_locked_after_failures_on_many_accounts(settings, patient_user):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    for number in range(8):
        sign_in(f"guess-{number}", "wrong")  # each account stays under its own limit
    assert_locked_page(sign_in("ada", "pw-ada-123"))
    assert sign_in("ada", "pw-ada-123", address="198.51.100.2").status_code == 302


def test_the_page_counts_down_and_the_lock_lifts_on_time(patient_user):
    fail(5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=10))
    assert_locked_page(sign_in("ada", "pw-ada-123"), minutes=5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in("ada", "pw-ada-123").status_code == 302


def test_the_locked_page_links_back_to_sign_in_keeping_a_safe_next(patient_user):
    fail(4)
    browser = Client(REMOTE_ADDR="192.0.2.10")
    form = {"username": "ada", "password": "wrong", "next": "/smart/manage"}
    page = browser.post("/smart/login", form).content.decode()
    assert 'href="/smart/login?next=/smart/manage"' in page
    form["next"] = "https://evil.example.com/"
    page = browser.post("/smart/login", form).content.decode()
    assert 'href="/smart/login"' in page and "evil" not in page


def test_admin_token_answers_a_lockout_as_json(admin_user):
    for _ in range(4):
        assert admin_token("admin", "wrong").status_code == 401
    locked = admin_token("admin", "wrong")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    body = locked.json()
    assert body["error"] == "slow_down"
    assert body["error_description"].startswith(LOCKED)
    assert admin_token("admin", "pw-admin-123").status_code == 429


def test_sign_in_page_and_admin_token_share_the_count(admin_user):
    fail(4, username="admin")
    assert admin_token("admin", "wrong").status_code == 429


def test_django_admin_login_is_locked_too(admin_user):
    browser = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(4):
        browser.post("/admin/login/", {"username": "admin", "password": "wrong"})
    locked = browser.post("/admin/login/?next=/admin/", {"username": "admin", "password": "x"})
    assert_locked_page(locked)
    assert 'href="/admin/login/?next=/admin/"' in locked.content.decode()


# --- Unlocking -----------------------------------------------------------------------------


def test_an_administrator_unlocks_an_account_with_axes_reset_username(patient_user):
    fail(5)
    call_command("axes_reset_username", "ada")
    assert sign_in("ada", "pw-ada-123").status_code == 302


def test_an_administrator_unlocks_an_address_with_axes_reset_ip(settings, patient_user):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    fail(3, username="nobody")
    assert sign_in("ada", "pw-ada-123").status_code == 429
    call_command("axes_reset_ip", "192.0.2.10")
    assert sign_in("ada", "pw-ada-123").status_code == 302


def test_an_administrator_unlocks_an_account_in_django_admin(patient_user, admin_user):
    fail(5)
    staff = Client(REMOTE_ADDR="198.51.100.3")
    staff.force_login(admin_user)
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "ada" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="ada")
    deleted = staff.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert sign_in("ada", "pw-ada-123").status_code == 302


# --- The address behind a proxy ------------------------------------------------------------


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(patient_user):
    for number in range(5):
        sign_in("ada", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}")
    assert AccessAttempt.objects.get().ip_address == "192.0.2.10"


def test_behind_a_trusted_proxy_each_client_has_its_own_count(settings, patient_user):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    fail(3, username="nobody", address="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")

    def via_proxy(client):
        return sign_in("ada", "pw-ada-123", "10.0.0.5", HTTP_X_FORWARDED_FOR=client).status_code

    assert via_proxy("203.0.113.7") == 429
    # Another client behind the same proxy signs in: the proxy itself is not locked.
    assert via_proxy("203.0.113.8") == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_the_locked_page_keeps_the_page_structure_rules(patient_user):
    from tests.consent.html_checks import structure_problems

    fail(4)
    locked = sign_in("ada", "wrong")
    assert locked.status_code == 429
    assert structure_problems(locked) == []
    assert locked["X-Frame-Options"] == "DENY" and "no-store" in locked["Cache-Control"]
