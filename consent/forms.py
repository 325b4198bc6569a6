"""Forms of the consent pages. They make the decisions; the views only route.

Each form checks what the person posted against the pending request kept server-side (never
against anything the browser sends back) and records the decision through smart_auth's
functions (`smart_auth.authorization`, `smart_auth.grants`, `smart_auth.launch`).
"""

from django import forms
from django.core.exceptions import ValidationError
from oauth2_provider.models import get_application_model

from smart_auth import authorization as authz
from smart_auth.ehr import describe_visit, get_launchable_apps, get_recent_encounters
from smart_auth.grants import do_revoke_app_access
from smart_auth.launch import (
    InvalidLaunchContext,
    clean_launch_context,
    do_create_launch,
    get_launch_url,
)
from smart_auth.patients import get_patient, search_patients

SmartApp = get_application_model()

CHOOSE_A_PATIENT = "Choose a patient from the list."


def do_approve_request(request, pending, scopes, patient=None):
    """Return the app's redirect URL for approving `scopes`: with the code, or with the
    error the app must hear. Raises PatientRequired if a patient must be picked first."""
    try:
        return authz.do_approve(request, pending, scopes, patient=patient)
    except authz.AuthorizationError as error:
        authz.do_forget_pending(request.session, pending.id)
        return authz.error_redirect_url(
            pending.redirect_uri, error.error, error.description, pending.state
        )


def get_decision_without_asking(request, pending):
    """Return the app's redirect URL when the person need not be asked, else None.

    The person is not asked again for a request they approved before (same app, same
    scopes), unless a patient must be picked; `prompt=none` without such an approval is
    `consent_required`.
    """
    remembered = authz.get_remembered_scopes(request.user, pending)
    if remembered is not None and not authz.needs_patient_choice(pending, request.user, remembered):
        return do_approve_request(request, pending, remembered)
    if "none" in pending.prompt.split():
        return authz.error_redirect_url(
            pending.redirect_uri,
            "consent_required",
            "The user has not approved this app",
            pending.state,
        )
    return None


class ScopeField(forms.MultipleChoiceField):
    """The ticked scopes as posted. Which of them may be granted is ConsentForm.clean()'s
    decision, so a refusal names the scope and Deny is never blocked by a bad value."""

    def valid_value(self, value):
        return True


class PendingDecisionForm(forms.Form):
    """A decision on one pending authorization request: Approve (the default) or Deny."""

    def __init__(self, request, pending, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.pending = pending

    @property
    def denied(self):
        """True when the person pressed Deny, whatever else the form carries."""
        return "deny" in self.data

    def deny(self, description="The user denied access"):
        return authz.do_deny(self.request, self.pending, description)


class ConsentForm(PendingDecisionForm):
    """One checkbox per requested scope, all ticked at first; the person may untick any.

    Approving with nothing ticked is a denial: the app hears `access_denied`, exactly as
    if the person had pressed Deny (the page says so next to the list).
    """

    scope = ScopeField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, request, pending, *args, **kwargs):
        super().__init__(request, pending, *args, **kwargs)
        self.summary = authz.describe_pending(pending, request.user)
        field = self.fields["scope"]
        field.choices = [(choice.scope, choice.description) for choice in self.summary.scopes]
        field.initial = [choice.scope for choice in self.summary.scopes]

    def clean(self):
        """Keep the ticked scopes that were requested, in request order; refuse any other."""
        cleaned_data = super().clean()
        if self.denied or "scope" not in cleaned_data:
            return cleaned_data
        requested = self.pending.scopes
        ticked = set(cleaned_data["scope"])
        not_requested = sorted(ticked.difference(requested))
        if not_requested:
            self.add_error(
                "scope",
                ValidationError(
                    "%(app)s did not ask for %(scopes)s. Choose only from the list below.",
                    code="not_requested",
                    params={"app": self.pending.app_name, "scopes": ", ".join(not_requested)},
                ),
            )
            return cleaned_data
        cleaned_data["scope"] = [scope for scope in requested if scope in ticked]
        return cleaned_data

    def save(self):
        """Record the decision and return the app's redirect URL, or None when the person
        must pick a patient first (the ticked scopes then wait in the session)."""
        scopes = [] if self.denied else self.cleaned_data["scope"]
        if not scopes:
            return self.deny() if self.denied else self.deny("No scopes were approved")
        if authz.needs_patient_choice(self.pending, self.request.user, scopes):
            authz.do_choose_scopes(self.request.session, self.pending, scopes)
            return None
        return do_approve_request(self.request, self.pending, scopes)

    def get_shared_record(self):
        """(PatientChoice or None, is it the person's own record?): the record this approval
        shares, when already known (a patient's own record, or the EHR launch's patient)."""
        if not self.summary.patient:
            return None, False
        own = self.summary.patient == authz.get_own_patient(self.request.user)
        return get_patient(self.summary.patient), own

    def get_visit(self):
        """The visit (Encounter) an EHR launch shares, in words, or ""."""
        return describe_visit(self.summary.encounter) if self.summary.encounter else ""


class PatientSearchForm(forms.Form):
    """The patient picker's search: a name (start of any part of it) and a page number."""

    name = forms.CharField(
        required=False,
        max_length=100,
        label="Patient name",
        help_text="Type the start of a first or last name, or leave empty to list everyone.",
        widget=forms.SearchInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)

    def get_results(self):
        """The page of patients asked for; a malformed search shows the first page of all."""
        data = self.cleaned_data if self.is_valid() else {}
        return search_patients(data.get("name") or "", data.get("page") or 1)


class PatientPickForm(PendingDecisionForm):
    """A clinician picks the patient in context, then the ticked scopes are granted."""

    patient = forms.CharField(max_length=64, error_messages={"required": CHOOSE_A_PATIENT})

    def __init__(self, request, pending, *args, **kwargs):
        super().__init__(request, pending, *args, **kwargs)
        self.fields["patient"].required = not self.denied

    def clean_patient(self):
        patient = self.cleaned_data["patient"]
        if patient and not authz.patient_exists(patient):
            raise ValidationError(CHOOSE_A_PATIENT, code="unknown_patient")
        return patient

    def save(self):
        """Return the app's redirect URL, or None if the patient vanished meanwhile."""
        if self.denied:
            return self.deny()
        scopes, patient = self.pending.chosen_scopes, self.cleaned_data["patient"]
        try:
            return do_approve_request(self.request, self.pending, scopes, patient)
        except authz.PatientRequired:
            self.add_error("patient", ValidationError(CHOOSE_A_PATIENT, code="unknown_patient"))
            return None


class RevokeAppForm(forms.Form):
    """Revoke everything the person granted one app (Connected apps)."""

    client_id = forms.CharField(max_length=100, widget=forms.HiddenInput)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_client_id(self):
        client_id = self.cleaned_data["client_id"]
        self.application = SmartApp.objects.filter(client_id=client_id).first()
        if self.application is None:
            raise ValidationError("This app is not known here.", code="unknown_app")
        return client_id

    def save(self):
        """Revoke the app's tokens, codes and remembered approvals; return the app."""
        do_revoke_app_access(self.user, self.application)
        return self.application


class LaunchFormMixin:
    """Open an app with a patient (and visit) in context: an EHR launch by a person.

    The launch is bound to the app and to the person who pressed Launch; `save()` returns the
    app's launch URI with `iss` and `launch`, where the browser goes next. The context is
    checked by smart_auth (`clean_launch_context`), as for the EHR's API.
    """

    def init_launch(self, user):
        """Call from __init__; the form defines `get_patient()`, the id of the launch's patient."""
        self.user = user
        self.fields["client_id"].queryset = get_launchable_apps()

    def clean(self):
        cleaned_data = super().clean()
        if self.errors:
            return cleaned_data
        try:
            clean_launch_context(self.get_patient(), cleaned_data.get("encounter") or "")
        except InvalidLaunchContext as error:
            field = error.field if error.field in self.fields else None
            self.add_error(field, ValidationError(error.message, code="invalid_context"))
        return cleaned_data

    def save(self):
        """Create the launch and return the app's launch URI with `iss` and `launch`."""
        application = self.cleaned_data["client_id"]
        handle = do_create_launch(
            self.user,
            application,
            patient=self.get_patient(),
            encounter=self.cleaned_data.get("encounter") or "",
        )
        return get_launch_url(application, handle)


def launchable_app_field(**kwargs):
    return forms.ModelChoiceField(
        queryset=SmartApp.objects.none(),
        to_field_name="client_id",
        error_messages={"invalid_choice": "Choose an app from the list."},
        **kwargs,
    )


class LaunchForm(LaunchFormMixin, forms.Form):
    """/smart/ehr/launch: any launchable app, a patient by id, an encounter by id.

    A patient user always launches with their own record, so they get no patient field.
    """

    client_id = launchable_app_field(label="App", empty_label=None)
    patient = forms.CharField(
        max_length=64,
        label="Patient id",
        help_text="The id of the Patient resource the app opens with.",
    )
    encounter = forms.CharField(
        required=False,
        max_length=64,
        label="Encounter id (optional)",
        help_text="The visit the app opens in, if any.",
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_launch(user)
        self.own_patient = authz.get_own_patient(user)
        if self.own_patient:
            del self.fields["patient"]

    def clean_patient(self):
        return self.cleaned_data["patient"].strip()

    def clean_encounter(self):
        return self.cleaned_data["encounter"].strip()

    def get_patient(self):
        return self.own_patient or self.cleaned_data["patient"]


class PatientLaunchForm(LaunchFormMixin, forms.Form):
    """A patient's page: one Launch button per app (`client_id`), and the visit to open the
    app in, chosen among the patient's recent encounters (or none)."""

    client_id = launchable_app_field()
    encounter = forms.ChoiceField(
        required=False, widget=forms.RadioSelect, label="Visit the app opens in"
    )

    def __init__(self, user, patient, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_launch(user)
        self.patient = patient
        self.encounters = get_recent_encounters(patient.id)
        self.fields["encounter"].choices = [("", "No visit")] + [
            (encounter.id, encounter.id) for encounter in self.encounters
        ]

    def get_patient(self):
        return self.patient.id
