"""Routes of the pages for people, mounted at the site root by config.urls.

The paths sit under /smart/ beside the protocol endpoints they serve. smart_auth reaches the
consent page and Connected apps only by these URL names, named in settings
(`SMART["CONSENT_URL_NAME"]`, `SMART["MANAGEMENT_URL_NAME"]`, `LOGIN_URL`), never by import.
"""

from django.urls import path, register_converter

from . import views


class FhirIdConverter:
    """A FHIR resource id (R4 `id`: letters, digits, '-' and '.', 1 to 64): anything else is
    a 404 before a view, or the database, sees it."""

    regex = r"[A-Za-z0-9\-\.]{1,64}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(FhirIdConverter, "fhir_id")

app_name = "consent"

urlpatterns = [
    path("smart/login", views.LoginView.as_view(), name="login"),
    path("smart/logout", views.LogoutView.as_view(), name="logout"),
    # After /smart/authorize keeps the request in the session: consent, then maybe the picker.
    path("smart/authorize/<str:pending_id>", views.ConsentView.as_view(), name="consent"),
    path(
        "smart/authorize/<str:pending_id>/patient",
        views.PatientPickerView.as_view(),
        name="pick-patient",
    ),
    path("smart/manage", views.ConnectedAppsView.as_view(), name="connected-apps"),
    # A minimal EHR to launch apps from (the EHR's own API is smart_auth's POST /smart/launch).
    path("smart/ehr/patients", views.PatientListView.as_view(), name="ehr-patients"),
    path(
        "smart/ehr/patients/<fhir_id:patient_id>",
        views.PatientLaunchView.as_view(),
        name="ehr-patient",
    ),
    path("smart/ehr/launch", views.LaunchView.as_view(), name="launch"),
]
