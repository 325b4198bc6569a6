"""FHIR errors: each is an exception carrying its HTTP status and OperationOutcome issue code.

One EXCEPTION_HANDLER (`fhir_exception_handler`) renders these, DRF's own exceptions and
anything unexpected as an OperationOutcome, so a FHIR client never sees `{"detail": ...}`.
"""

import logging
import math

from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class FhirError(Exception):
    status_code = 400
    issue_code = "invalid"

    def __init__(self, diagnostics, *, expression=None):
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression or []


class InvalidSearch(FhirError):
    issue_code = "not-supported"


class InvalidResource(FhirError):
    """The body is not a well-formed resource of the type the URL names (400)."""

    issue_code = "structure"


class ValidationFailed(FhirError):
    """The resource parsed but breaks the R4 rules (422)."""

    status_code = 422
    issue_code = "processing"


class Forbidden(FhirError):
    """The credential's access policy does not allow this interaction (403)."""

    status_code = 403
    issue_code = "forbidden"


class ResourceNotFound(FhirError):
    status_code = 404
    issue_code = "not-found"


class ResourceGone(FhirError):
    status_code = 410
    issue_code = "deleted"


class PreconditionFailed(FhirError):
    status_code = 412
    issue_code = "conflict"


class Conflict(FhirError):
    status_code = 409
    issue_code = "conflict"


def operation_outcome(diagnostics, *, code="invalid", severity="error", expression=()):
    issue = {"severity": severity, "code": code, "diagnostics": str(diagnostics)}
    if expression:
        issue["expression"] = list(expression)
    return {"resourceType": "OperationOutcome", "issue": [issue]}


# DRF exception -> (status, OperationOutcome issue code)
_DRF_CODES = {
    drf_exceptions.ParseError: "structure",
    drf_exceptions.NotAuthenticated: "login",
    drf_exceptions.AuthenticationFailed: "login",
    drf_exceptions.PermissionDenied: "forbidden",
    drf_exceptions.NotFound: "not-found",
    drf_exceptions.MethodNotAllowed: "not-supported",
    drf_exceptions.NotAcceptable: "not-supported",
    drf_exceptions.UnsupportedMediaType: "not-supported",
    drf_exceptions.Throttled: "throttled",
}


def fhir_exception_handler(exc, context):
    """Render every error raised under /fhir as an OperationOutcome with the right status."""
    if isinstance(exc, FhirError):
        body = operation_outcome(exc.diagnostics, code=exc.issue_code, expression=exc.expression)
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(str(exc) or "Not found")
    if isinstance(exc, drf_exceptions.APIException):
        return _render_drf_exception(exc)
    logger.exception("Unhandled error in the FHIR API")
    body = operation_outcome("Internal server error", code="exception", severity="fatal")
    return Response(body, status=500)


def _render_drf_exception(exc):
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "processing")
    headers = {}
    status = exc.status_code
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        # DRF downgrades these to 403 when no authenticator offers a challenge; FHIR clients
        # expect 401 with a Bearer challenge for a missing or bad credential.
        status = 401
        headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or 'Bearer realm="fhir"'
    if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
        # Whole seconds, rounded up: retrying after a rounded-down wait is refused again.
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return Response(operation_outcome(detail, code=code), status=status, headers=headers)
