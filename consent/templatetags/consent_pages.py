"""Template filters of the consent pages: scopes, FHIR dates and app addresses in plain words."""

from datetime import date
from urllib.parse import urlsplit

from django import template
from django.utils.formats import date_format

from smart_auth.scopes import describe_scope

register = template.Library()


@register.filter
def scope_words(scope, own_record=True):
    """Return `scope` as a short sentence ("Read your lab results")."""
    return describe_scope(scope, for_patient=bool(own_record))


@register.filter
def fhir_date(value):
    """Return a FHIR `date` ("1990-01-31") as "31 January 1990"; partial dates as they are."""
    try:
        return date_format(date.fromisoformat(value), "j F Y")
    except (TypeError, ValueError):
        return value


@register.filter
def launch_host(uri):
    """Return the host an app's launch URI opens ("app.example.org")."""
    return urlsplit(uri).netloc or uri
