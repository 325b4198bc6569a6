"""The FHIR REST interactions: views only translate HTTP to `access` (the store and search as
the request's AccessPolicy allows them) and `bundles`."""

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.http import http_date
from rest_framework import viewsets
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import access, audit, bundles
from .capabilities import capability_statement
from .exceptions import InvalidResource, InvalidSearch, ResourceNotFound, fhir_exception_handler
from .negotiation import FhirContentNegotiation
from .parsers import FhirJsonParser, LegacyFhirJsonParser, PlainJsonParser
from .permissions import HasFhirAccess, get_policy
from .renderers import FhirBrowsableAPIRenderer, FhirJsonRenderer, PlainJsonRenderer, RawJson
from .search.query import render_searchset
from .validation import check_resource_type


class FhirView(APIView):
    """What every FHIR endpoint shares: FHIR JSON in and out, OperationOutcome errors."""

    parser_classes = [FhirJsonParser, PlainJsonParser, LegacyFhirJsonParser]
    renderer_classes = [FhirJsonRenderer, PlainJsonRenderer, FhirBrowsableAPIRenderer]
    content_negotiation_class = FhirContentNegotiation
    permission_classes = [HasFhirAccess, audit.AuditTrailIsReadOnly]

    def get_exception_handler(self):
        return fhir_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answered request leaves an AuditEvent, errors included (audit.py)."""
        response = super().finalize_response(request, response, *args, **kwargs)
        audit.audit_fhir_request(request, response)
        return response

    @property
    def base_url(self):
        return settings.FHIR["BASE_URL"]

    @property
    def policy(self):
        return get_policy(self.request)

    def page_size(self):
        return _count_param(self.request.query_params)


class ResourceViewSet(FhirView, viewsets.ViewSet):
    """Type and instance interactions on /fhir/{type} and /fhir/{type}/{id}."""

    def list(self, request, resource_type):
        """search-type (GET)."""
        return self._search(request, resource_type, list(request.query_params.lists()))

    def create(self, request, resource_type):
        stored = access.check_create(self.policy, resource_type, request.data)
        return self._resource_response(stored, status=201, location=True)

    def retrieve(self, request, resource_type, fhir_id):
        return self._resource_response(access.access_resource(self.policy, resource_type, fhir_id))

    def vread(self, request, resource_type, fhir_id, version_id):
        stored = access.access_version(self.policy, resource_type, fhir_id, version_id)
        return self._resource_response(stored)

    def update(self, request, resource_type, fhir_id):
        if_match = request.headers.get("If-Match")
        stored, created = access.check_update(
            self.policy, resource_type, fhir_id, request.data, if_match=if_match
        )
        return self._resource_response(stored, status=201 if created else 200, location=created)

    def destroy(self, request, resource_type, fhir_id):
        if_match = request.headers.get("If-Match")
        access.check_delete(self.policy, resource_type, fhir_id, if_match=if_match)
        return Response(status=204)

    def history_instance(self, request, resource_type, fhir_id):
        return self._history(request, resource_type, fhir_id)

    def history_type(self, request, resource_type):
        return self._history(request, resource_type, None)

    def _search(self, request, resource_type, items):
        return search_response(request, resource_type, items, self.base_url)

    def _history(self, request, resource_type, fhir_id):
        since = _since_param(request.query_params)
        page = access.access_history(
            self.policy,
            resource_type,
            fhir_id,
            count=self.page_size(),
            offset=_offset_param(request),
            since=since,
        )
        return Response(bundles.history_bundle(page, request, self.base_url))

    def _resource_response(self, stored, *, status=200, location=False):
        headers = {"ETag": stored.etag, "Last-Modified": http_date(stored.last_updated.timestamp())}
        if location:
            headers["Location"] = f"{self.base_url}/{stored.versioned_url}"
        prefer = self.request.headers.get("Prefer", "")
        if self.request.method != "GET" and "return=minimal" in prefer:
            return Response(status=status, headers=headers)
        return Response(RawJson(stored.content), status=status, headers=headers)


class SearchView(FhirView):
    """search-type by POST to /fhir/{type}/_search: form body parameters join those in the URL."""

    parser_classes = [FormParser]

    def post(self, request, resource_type):
        items = list(request.query_params.lists()) + list(request.data.lists())
        return search_response(request, resource_type, items, self.base_url)


def search_response(request, resource_type, items, base_url):
    check_resource_type(resource_type)
    pairs = [(key, value) for key, values in items for value in values]
    lenient = "handling=lenient" in request.headers.get("Prefer", "")
    policy = get_policy(request)
    result = access.access_search(policy, resource_type, pairs, lenient=lenient, base_url=base_url)
    return Response(RawJson(render_searchset(result)))


class SystemView(FhirView):
    """POST /fhir with a batch or transaction Bundle; GET /fhir/_history."""

    def post(self, request):
        bundle = bundles.process_bundle(request.data, base_url=self.base_url, policy=self.policy)
        return Response(bundle)


class SystemHistoryView(FhirView):
    def get(self, request):
        page = access.access_history(
            self.policy,
            count=self.page_size(),
            offset=_offset_param(request),
            since=_since_param(request.query_params),
        )
        return Response(bundles.history_bundle(page, request, self.base_url))


class CapabilityStatementView(FhirView):
    """GET /fhir/metadata: public, since clients read it before they have a token."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        return Response(capability_statement())


class UnknownEndpointView(FhirView):
    """Any other URL under /fhir: a FHIR 404 instead of Django's HTML page."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise ResourceNotFound(f"No FHIR endpoint at {request.path}")

    get = post = put = delete = patch = http_method_not_allowed


def _count_param(params):
    fhir = settings.FHIR
    raw = params.get("_count", fhir["DEFAULT_PAGE_SIZE"])
    try:
        count = int(raw)
    except ValueError:
        raise InvalidSearch(f"_count must be a whole number, not '{raw}'") from None
    return max(0, min(count, fhir["MAX_PAGE_SIZE"]))


def _offset_param(request):
    raw = request.query_params.get("_offset", "0")
    if not raw.isdigit():
        raise InvalidSearch(f"_offset must be a whole number, not '{raw}'")
    return int(raw)


def _since_param(params):
    raw = params.get("_since")
    if raw is None:
        return None
    moment = parse_datetime(raw)
    if moment is None or moment.tzinfo is None:
        raise InvalidResource(f"_since must be an instant with a time zone, not '{raw}'")
    return moment
