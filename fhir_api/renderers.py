"""FHIR JSON out: stored resources are written as the text they were stored as, never re-parsed."""

import orjson
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer


class RawJson(str):
    """JSON text that is already a complete document (a stored resource, a built Bundle)."""


class FhirJsonRenderer(BaseRenderer):
    media_type = "application/fhir+json"
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        pretty = _wants_pretty(renderer_context)
        if isinstance(data, RawJson | bytes):
            if not pretty:
                return data.encode() if isinstance(data, str) else data
            data = orjson.loads(bytes(data) if isinstance(data, bytes) else str(data))
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 if pretty else 0)


class PlainJsonRenderer(FhirJsonRenderer):
    """The same JSON for clients that ask for application/json (fhirclient does)."""

    media_type = "application/json"


class FhirBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's HTML view for people exploring the API in a browser; the JSON is always pretty."""

    def get_default_renderer(self, view):
        return _PrettyRenderer()


class _PrettyRenderer(FhirJsonRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        context = dict(renderer_context or {}, pretty=True)
        return super().render(data, accepted_media_type, context)


def _wants_pretty(renderer_context):
    context = renderer_context or {}
    if context.get("pretty"):
        return True
    request = context.get("request")
    return request is not None and request.query_params.get("_pretty") == "true"
