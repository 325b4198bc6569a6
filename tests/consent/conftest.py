"""Consent page fixtures: the SMART fixtures plus a browser that enforces CSRF like a real one."""

import pytest
from django.test import Client

from tests.smart_support import (  # noqa: F401
    admin_user,
    clinician,
    confidential_app,
    fresh_key_ring,
    other_patient,
    patient_record,
    patient_user,
    public_app,
)


class Browser(Client):
    """Django's test client with CSRF checks on; `submit` posts a form with its token."""

    def __init__(self, **kwargs):
        super().__init__(enforce_csrf_checks=True, **kwargs)

    def submit(self, path, data=None, **kwargs):
        """POST `data` with the CSRF token a page of this site put in the cookie."""
        if "csrftoken" not in self.cookies:
            self.get("/smart/login")  # any page with a form sets the cookie
        token = self.cookies["csrftoken"].value
        return self.post(path, {**(data or {}), "csrfmiddlewaretoken": token}, **kwargs)


def browser_for(user):
    browser = Browser()
    browser.force_login(user)
    return browser


@pytest.fixture
def patient_browser(patient_user):  # noqa: F811 (the fixture imported above)
    return browser_for(patient_user)


@pytest.fixture
def clinician_browser(clinician):  # noqa: F811
    return browser_for(clinician)
