"""FHIR JSON in: application/fhir+json, application/json, legacy application/json+fhir."""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class FhirJsonParser(BaseParser):
    media_type = "application/fhir+json"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as error:
            raise ParseError(f"The body is not valid JSON: {error}") from None


class PlainJsonParser(FhirJsonParser):
    media_type = "application/json"


class LegacyFhirJsonParser(FhirJsonParser):
    media_type = "application/json+fhir"
