"""The CapabilityStatement served at /fhir/metadata: only what this server really does."""

from functools import cache

from django.conf import settings

from .resource_types import RESOURCE_TYPES
from .search.params import get_search_params

SOFTWARE_VERSION = "0.1.0"
RELEASE_DATE = "2026-11-23"

TYPE_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
# Written by the server alone (fhir_api.audit): clients read, search and page their history.
READ_ONLY_TYPES = {"AuditEvent"}
WRITE_INTERACTIONS = {"create", "update", "delete"}
SEARCH_PARAM_DEFINITION = "http://hl7.org/fhir/SearchParameter/{type}-{name}"
COMMON_PARAM_DEFINITION = "http://hl7.org/fhir/SearchParameter/Resource-{name}"


def capability_statement():
    """The statement as a dict; security extensions are added by the authorization layer."""
    statement = dict(_base_statement())
    statement["implementation"] = {
        "description": "SMART on FHIR server",
        "url": settings.FHIR["BASE_URL"],
    }
    return statement


@cache
def _base_statement():
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "publisher": "SMART on FHIR server",
        "kind": "instance",
        "software": {"name": "smart-fhir-server", "version": SOFTWARE_VERSION},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"cors": True},
                "resource": [_resource_entry(resource_type) for resource_type in RESOURCE_TYPES],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
            }
        ],
    }


def _resource_entry(resource_type):
    read_only = resource_type in READ_ONLY_TYPES
    interactions = [
        code for code in TYPE_INTERACTIONS if not (read_only and code in WRITE_INTERACTIONS)
    ]
    return {
        "type": resource_type,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": not read_only,
        "conditionalDelete": "not-supported",
        "searchInclude": _includes(resource_type),
        "searchRevInclude": _revincludes(resource_type),
        "searchParam": [
            _search_param_entry(resource_type, param)
            for param in get_search_params(resource_type).values()
        ],
    }


def _includes(resource_type):
    return [
        f"{resource_type}:{param.name}"
        for param in get_search_params(resource_type).values()
        if param.type == "reference"
    ]


def _revincludes(target_type):
    """Every `Source:param` whose references can point at `target_type`."""
    return [
        f"{source}:{param.name}"
        for source in RESOURCE_TYPES
        for param in get_search_params(source).values()
        if param.type == "reference" and (not param.targets or target_type in param.targets)
    ]


def _search_param_entry(resource_type, param):
    if param.name.startswith("_"):
        definition = COMMON_PARAM_DEFINITION.format(name=param.name.removeprefix("_"))
    else:
        definition = SEARCH_PARAM_DEFINITION.format(type=resource_type, name=param.name)
    return {"name": param.name, "definition": definition, "type": param.type}
