"""The pages a person meets: sign in, consent, patient picker, Connected apps, EHR launch.

Views route and render; the forms in forms.py make the decisions through smart_auth's
functions. Decisions are CSRF-protected POSTs, and no view here is exempt from
`X-Frame-Options: DENY`. Pages holding a pending request or a person's grants are never cached.
"""

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import FormView, ListView
from django.views.generic.edit import FormMixin

from smart_auth import authorization as authz
from smart_auth.grants import get_connected_apps
from smart_auth.views import OAuthRedirect

from .forms import (
    ConsentForm,
    LaunchForm,
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
        if self.pending.launch_user_id not in (None, request.user.pk):
            description = "The launch was opened by another user"
            return OAuthRedirect(authz.do_deny(request, self.pending, description))
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
        return {**context, "summary": summary, "patient": patient, "own_record": own_record}

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


# --- EHR launch ----------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class LaunchView(LoginRequiredMixin, BadRequestOnInvalidMixin, FormView):
    """A minimal EHR page: open a registered app with a patient (and visit) in context."""

    template_name = "consent/launch.html"
    form_class = LaunchForm

    def get_form_kwargs(self):
        return {"user": self.request.user, **super().get_form_kwargs()}

    def form_valid(self, form):
        return OAuthRedirect(form.save())
