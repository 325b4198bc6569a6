"""Checking a resource against the R4 rules before it is stored.

Validation happens on write only: reads and searches serve the stored JSON as it is, which
is why a write must never store something the models reject.
"""

import re

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .exceptions import InvalidResource, ResourceNotFound, ValidationFailed
from .resource_types import RESOURCE_TYPE_SET

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def check_resource_type(resource_type):
    """Raise 404 for a type this server does not know (FHIR: unsupported type is 404)."""
    if resource_type not in RESOURCE_TYPE_SET:
        raise ResourceNotFound(f"Resource type '{resource_type}' is not supported")


def check_id(fhir_id):
    if not ID_PATTERN.fullmatch(fhir_id or ""):
        raise InvalidResource(f"'{fhir_id}' is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")


def check_resource(resource_type, data):
    """Validate `data` as an R4 resource of `resource_type`; raise 400 or 422 naming the element."""
    if not isinstance(data, dict):
        raise InvalidResource("The body must be a JSON object holding a FHIR resource")
    actual = data.get("resourceType")
    if actual != resource_type:
        raise InvalidResource(
            f"resourceType '{actual}' does not match the type in the URL, '{resource_type}'",
            expression=["resourceType"],
        )
    try:
        get_fhir_model_class(resource_type).model_validate(data)
    except ValidationError as error:
        raise _validation_failed(resource_type, error) from None
    except (ValueError, TypeError) as error:  # fhir.resources raises these for some checks
        raise ValidationFailed(f"{resource_type}: {error}") from None


def _validation_failed(resource_type, error):
    problems = error.errors(include_url=False)
    paths = [_element_path(resource_type, problem["loc"]) for problem in problems]
    messages = [f"{path}: {problem['msg']}" for path, problem in zip(paths, problems, strict=True)]
    return ValidationFailed("; ".join(messages[:10]), expression=paths[:10])


def _element_path(resource_type, loc):
    """('name', 0, 'given') -> 'Patient.name[0].given', FHIRPath-like as OperationOutcome wants."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith("function-"):
            path += f".{part}"
    return path
