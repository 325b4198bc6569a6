"""Finding patients for the patient picker and the EHR's patient list: a name search over the
FHIR store's index, ordered as a person looks for a name."""

import json
from dataclasses import dataclass

from django.db.models import F, OuterRef, Subquery

from fhir_api.models import Resource, StringIndex
from fhir_api.search.string import normalise

PAGE_SIZE = 20


@dataclass(frozen=True)
class PatientChoice:
    id: str
    name: str
    birth_date: str
    gender: str


@dataclass(frozen=True)
class PatientPage:
    patients: list
    page: int
    has_next: bool


def search_patients(name="", page=1):
    """Patients whose name starts with `name` (any part, case and accents ignored), ordered by
    family then given name as a person looks for them, PAGE_SIZE a page."""
    rows = Resource.objects.filter(resource_type="Patient", deleted=False)
    if name.strip():
        matching = StringIndex.objects.filter(
            resource_type="Patient", param="name", value__startswith=normalise(name.strip())
        ).values("resource_id")
        rows = rows.filter(id__in=matching)
    rows = rows.annotate(family=_first_name_part("family"), given=_first_name_part("given"))
    page = max(1, page)
    start = (page - 1) * PAGE_SIZE
    ordered = rows.order_by(
        F("family").asc(nulls_last=True), F("given").asc(nulls_last=True), "fhir_id"
    )
    found = list(ordered.only("fhir_id", "content")[start : start + PAGE_SIZE + 1])
    patients = [_choice(row) for row in found[:PAGE_SIZE]]
    return PatientPage(patients=patients, page=page, has_next=len(found) > PAGE_SIZE)


def _first_name_part(param):
    """The alphabetically first indexed (normalised) `family` or `given` name of a Patient."""
    parts = StringIndex.objects.filter(resource=OuterRef("pk"), param=param).order_by("value")
    return Subquery(parts.values("value")[:1])


def get_patient(patient_id):
    """The PatientChoice of one Patient (to name the record being shared), or None."""
    row = (
        Resource.objects.filter(resource_type="Patient", fhir_id=patient_id, deleted=False)
        .only("fhir_id", "content")
        .first()
    )
    return _choice(row) if row is not None else None


def content_of(row):
    """A stored resource's JSON object ({} if it is not one)."""
    try:
        content = json.loads(row.content)
    except ValueError:
        return {}
    return content if isinstance(content, dict) else {}


def _choice(row):
    resource = content_of(row)
    return PatientChoice(
        id=row.fhir_id,
        name=display_name(resource) or row.fhir_id,
        birth_date=resource.get("birthDate", ""),
        gender=resource.get("gender", ""),
    )


def display_name(resource):
    """ "Given Family" from the first HumanName (its `text` if present)."""
    for name in resource.get("name") or []:
        if name.get("text"):
            return name["text"]
        parts = [*(name.get("given") or []), name.get("family") or ""]
        text = " ".join(part for part in parts if part)
        if text:
            return text
    return ""
