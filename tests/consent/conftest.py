"""Consent page fixtures: a browser that enforces CSRF like a real one."""

import pytest
from django.test import Client


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
def patient_browser(patient_user):
    return browser_for(patient_user)


@pytest.fixture
def clinician_browser(clinician):
    return browser_for(clinician)
