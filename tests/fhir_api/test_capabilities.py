"""The CapabilityStatement is valid R4 and lists only what the server supports."""

import importlib
import inspect
import pkgutil

import fhir.resources.R4B as r4b
import pytest
from django.conf import settings
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.resource import Resource

from fhir_api.resource_types import RESOURCE_TYPES


@pytest.fixture
def statement(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    return response.json()


def test_statement_validates_as_r4b(statement):
    CapabilityStatement.model_validate(statement)


def test_statement_parses_with_the_standard_python_client(statement):
    from fhirclient.models.capabilitystatement import CapabilityStatement as ClientStatement

    parsed = ClientStatement(statement, strict=True)
    assert parsed.fhirVersion == "4.0.1"


def test_statement_describes_this_server(statement):
    assert statement["kind"] == "instance"
    assert statement["format"] == ["json"]
    assert statement["implementation"]["url"] == settings.FHIR["BASE_URL"]
    rest = statement["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system"}


def test_statement_lists_every_stored_type_and_no_type_r4b_removed(statement):
    listed = [entry["type"] for entry in statement["rest"][0]["resource"]]
    assert listed == list(RESOURCE_TYPES)
    assert "MedicinalProduct" not in listed
    assert "EffectEvidenceSynthesis" not in listed


def test_observation_search_params_are_advertised(statement):
    observation = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Observation")
    names = {param["name"] for param in observation["searchParam"]}
    assert {"patient", "subject", "code", "category", "date", "_id", "_lastUpdated"} <= names


def test_resource_types_match_the_installed_models():
    """RESOURCE_TYPES is written out for speed; this keeps it equal to what R4B knows."""
    known = set()
    for module_info in pkgutil.iter_modules(r4b.__path__):
        module = importlib.import_module(f"fhir.resources.R4B.{module_info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Resource)
                and value.__module__ == module.__name__
                and name.lower() == module_info.name
            ):
                known.add(name)
    assert set(RESOURCE_TYPES) == known - {"Resource", "DomainResource"}
