"""Content negotiation with FHIR's `_format` parameter, which overrides the Accept header."""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation

from .renderers import FhirBrowsableAPIRenderer, FhirJsonRenderer, PlainJsonRenderer

JSON_FORMATS = {"json", "application/fhir+json", "application/json", "application/json+fhir"}
HTML_FORMATS = {"html", "text/html"}


class FhirContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        requested = request.query_params.get("_format")
        if requested is None:
            accept = request.META.get("HTTP_ACCEPT", "")
            if "html" not in accept:
                # Anything but a browser gets FHIR JSON, whatever odd Accept value it sent
                # (*/*, application/json, or none at all).
                renderer = _by_class(renderers, _json_class_for(accept))
                return renderer, renderer.media_type
            return super().select_renderer(request, renderers, format_suffix)
        requested = requested.split(";")[0].strip().replace(" ", "+")
        if requested in JSON_FORMATS:
            renderer = _by_class(renderers, _json_class_for(requested))
        elif requested in HTML_FORMATS:
            renderer = _by_class(renderers, FhirBrowsableAPIRenderer)
        else:
            raise NotAcceptable(f"_format '{requested}' is not supported; this server speaks JSON")
        return renderer, renderer.media_type


def _json_class_for(media):
    if "application/json" in media and "fhir" not in media:
        return PlainJsonRenderer
    return FhirJsonRenderer


def _by_class(renderers, cls):
    return next(renderer for renderer in renderers if type(renderer) is cls)
