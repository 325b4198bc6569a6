"""The pages a person meets: sign in, consent, patient picker, Connected apps, and the minimal
EHR (patient list, a patient's page with a Launch button per app, the launch form).

Views route and render; the forms in forms.py make the decisions through smart_auth's
functions. Decisions are CSRF-protected POSTs, and no view here is exempt from
`X-Frame-Options: DENY`. Pages holding a pending request or a person's grants are never cached.
"""

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.views.decorators.cache import never_cache
from django.views.generic import FormView, ListView, TemplateView
from django.views.generic.edit import FormMixin

from smart_auth import authorization as authz
from smart_auth.grants import get_connected_apps
from smart_auth.patients import get_patient, search_patients
from smart_auth.views import OAuthRedirect

from .forms import (
    ConsentForm,
    LaunchForm,
    PatientLaunchForm,
    PatientPickForm,
    PatientSearchForm,
    RevokeAppForm,
    get_decision_without_asking,
)

ERROR_TEMPLATE = "consent/error.html"


def error_response(request, reason, status=400, detail=""):
    """The error page for a failure the person cannot fix here (see error.html's reasons)."""
    context = {"reason": reason, "detail": detail}
    return render(request, ERROR_TEMPLATE, context, status=status)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a stale or cookieless form gets a page saying what to do, not 403 text."""
    return error_response(request, "csrf", status=403)


class BadRequestOnInvalidMixin:
    """A form that does not validate is shown again with its errors, as 400 Bad Request."""

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)


# --- Sign in and out ---------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login, with our page; it names the app waiting for the person, if any."""

    template_name = "consent/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["pending"] = get_pending_for_url(self.request, context.get("next", ""))
        return context


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only, as Django requires), back to the sign-in page."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have signed out.")
        return response


def get_pending_for_url(request, url):
    """The pending request a consent-page URL names in this session, or None."""
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return None
    if match.namespace != "consent" or "pending_id" not in match.kwargs:
        return None
    try:
        return authz.get_pending(request.session, match.kwargs["pending_id"])
    except authz.PendingNotFound:
        return None


# --- Consent and patient picker ------------------------------------------------------------


class PendingMixin(LoginRequiredMixin):
    """Loads this session's pending request named in the URL; an error page if it is gone."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        try:
            self.pending = authz.get_pending(request.session, kwargs["pending_id"])
        except authz.PendingNotFound:
            return error_response(request, "request_expired")
        try:
            authz.check_pending_user(self.pending, request.user)
        except authz.AuthorizationError as error:
            return OAuthRedirect(authz.do_refuse(request, self.pending, error))
        return self.dispatch_pending(request, *args, **kwargs)

    def dispatch_pending(self, request, *args, **kwargs):
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {"request": self.request, "pending": self.pending, **super().get_form_kwargs()}

    def get_context_data(self, **kwargs):
        return super().get_context_data(pending=self.pending, **kwargs)


@method_decorator(never_cache, name="dispatch")
class ConsentView(PendingMixin, BadRequestOnInvalidMixin, FormView):
    """The app's name and redirect host, each scope in plain words with a checkbox, and
    Approve or Deny. A request approved before is not asked again."""

    template_name = "consent/consent.html"
    form_class = ConsentForm

    def get(self, request, *args, **kwargs):
        url = get_decision_without_asking(request, self.pending)
        return OAuthRedirect(url) if url else super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        patient, own_record = context["form"].get_shared_record()
        summary = context["form"].summary
        visit = context["form"].get_visit()
        return {
            **context,
            "summary": summary,
            "patient": patient,
            "own_record": own_record,
            "visit": visit,
        }

    def form_valid(self, form):
        url = form.save()
        if url is None:
            return redirect("consent:pick-patient", self.pending.id)
        return OAuthRedirect(url)


@method_decorator(never_cache, name="dispatch")
class PatientPickerView(PendingMixin, BadRequestOnInvalidMixin, FormView):
    """A clinician picks the patient in context: search by name, paged, then Continue."""

    template_name = "consent/pick_patient.html"
    form_class = PatientPickForm

    def dispatch_pending(self, request, *args, **kwargs):
        if self.pending.chosen_scopes is None:  # the consent page comes first
            return redirect("consent:consent", self.pending.id)
        return super().dispatch_pending(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        search = PatientSearchForm(self.request.GET)
        return super().get_context_data(search=search, results=search.get_results(), **kwargs)

    def form_valid(self, form):
        url = form.save()
        return OAuthRedirect(url) if url else self.form_invalid(form)


# --- Connected apps ------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class ConnectedAppsView(LoginRequiredMixin, FormMixin, ListView):
    """What the person granted (the `management_endpoint`), and a Revoke button per app."""

    template_name = "consent/connected_apps.html"
    context_object_name = "apps"
    form_class = RevokeAppForm
    success_url = reverse_lazy("consent:connected-apps")

    def get_queryset(self):
        return get_connected_apps(self.request.user)

    def get_form_kwargs(self):
        return {"user": self.request.user, **super().get_form_kwargs()}

    def get_context_data(self, **kwargs):
        own_record = bool(authz.get_own_patient(self.request.user))
        return super().get_context_data(own_record=own_record, **kwargs)

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        return self.form_valid(form) if form.is_valid() else self.form_invalid(form)

    def form_valid(self, form):
        form.save()
        messages.success(self.request, "Access revoked: the app can no longer use your data.")
        return super().form_valid(form)

    def form_invalid(self, form):
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=400)


# --- The minimal EHR: patients, a patient's page, the launch form -------------------------


class ClinicianOrOwnRecordMixin(LoginRequiredMixin):
    """A clinician (a person not linked to a Patient) sees every patient; a patient user only
    their own record, and anything else is 404, as if it did not exist."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.own_patient = authz.get_own_patient(request.user)
        return super().dispatch(request, *args, **kwargs)


@method_decorator(never_cache, name="dispatch")
class PatientListView(ClinicianOrOwnRecordMixin, TemplateView):
    """Find a patient by name, 20 a page, ordered by family then given name; a patient user
    goes straight to their own page."""

    template_name = "consent/ehr_patients.html"

    def get(self, request, *args, **kwargs):
        if self.own_patient:
            return redirect("consent:ehr-patient", self.own_patient)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        search = PatientSearchForm(self.request.GET)
        data = search.cleaned_data if search.is_valid() else {}
        results = search_patients(data.get("name") or "", data.get("page") or 1)
        return super().get_context_data(search=search, results=results, **kwargs)


@method_decorator(never_cache, name="dispatch")
class PatientLaunchView(ClinicianOrOwnRecordMixin, BadRequestOnInvalidMixin, FormView):
    """A patient's page: name, birth date, gender, and a Launch button for each app with a
    launch URI. Launch (a CSRF-protected POST) makes a launch bound to this person and sends
    the browser to the app's launch URI with `iss` and `launch`."""

    template_name = "consent/ehr_patient.html"
    form_class = PatientLaunchForm

    @cached_property
    def patient(self):
        """The page's patient; 404 if there is none, or it is not a patient user's own."""
        patient_id = self.kwargs["patient_id"]
        patient = None
        if not self.own_patient or patient_id == self.own_patient:
            patient = get_patient(patient_id)
        if patient is None:
            raise Http404("No such patient")
        return patient

    def get_form_kwargs(self):
        return {"user": self.request.user, "patient": self.patient, **super().get_form_kwargs()}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            patient=self.patient, own_record=bool(self.own_patient), **kwargs
        )

    def form_valid(self, form):
        return OAuthRedirect(form.save())


@method_decorator(never_cache, name="dispatch")
class LaunchView(LoginRequiredMixin, BadRequestOnInvalidMixin, FormView):
    """Launch any registered app with a patient (and visit) given by id."""

    template_name = "consent/launch.html"
    form_class = LaunchForm

    def get_form_kwargs(self):
        return {"user": self.request.user, **super().get_form_kwargs()}

    def form_valid(self, form):
        return OAuthRedirect(form.save())
