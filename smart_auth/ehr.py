"""What the minimal EHR pages show (the consent app's /smart/ehr/...): patients listed by name,
one patient's visits, and the apps that can be launched.

Read from the FHIR store's index tables, like `patients.py` does for the patient picker, so
the pages never parse more resources than they show.
"""

from dataclasses import dataclass

from django.db.models import F, OuterRef, Subquery
from oauth2_provider.models import get_application_model

from fhir_api.models import CompartmentMembership, DateIndex, Resource, StringIndex
from fhir_api.search.string import normalise

from .patients import PAGE_SIZE, PatientPage, _choice, content_of

SmartApp = get_application_model()
RECENT_ENCOUNTERS = 20


@dataclass(frozen=True)
class EncounterChoice:
    id: str
    start: str
    description: str
    status: str


def list_patients(name="", page=1):
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


def get_recent_encounters(patient_id, limit=RECENT_ENCOUNTERS):
    """The patient's latest encounters (by period start, newest first), for a launch's visit."""
    members = CompartmentMembership.objects.filter(
        patient_id=patient_id, resource_type="Encounter"
    ).values("resource_id")
    starts = DateIndex.objects.filter(resource=OuterRef("pk"), param="date").order_by("low")
    rows = (
        Resource.objects.filter(id__in=members, resource_type="Encounter", deleted=False)
        .annotate(start=Subquery(starts.values("low")[:1]))
        .order_by(F("start").desc(nulls_last=True), "fhir_id")
        .only("fhir_id", "content")[:limit]
    )
    return [_encounter_choice(row) for row in rows]


def describe_visit(encounter_id):
    """A visit in a few words for the consent page ("Check-up, 2026-03-01 (Encounter/7)")."""
    row = (
        Resource.objects.filter(resource_type="Encounter", fhir_id=encounter_id, deleted=False)
        .only("fhir_id", "content")
        .first()
    )
    if row is None:
        return f"Encounter/{encounter_id}"
    choice = _encounter_choice(row)
    words = f"{choice.description}, {choice.start}" if choice.start else choice.description
    return f"{words} (Encounter/{encounter_id})"


def _encounter_choice(row):
    resource = content_of(row)
    period = resource.get("period") or {}
    return EncounterChoice(
        id=row.fhir_id,
        start=period.get("start", "")[:10],
        description=_describe_encounter(resource),
        status=resource.get("status", ""),
    )


def _describe_encounter(resource):
    """The encounter's type in words, else its class ("Ambulatory"), else "Encounter"."""
    for concept in resource.get("type") or []:
        text = concept.get("text") or next(
            (c.get("display") for c in concept.get("coding") or [] if c.get("display")), ""
        )
        if text:
            return text
    encounter_class = resource.get("class") or {}
    return encounter_class.get("display") or encounter_class.get("code") or "Encounter"


def get_launchable_apps():
    """Active apps with a launch URI, by name: the apps an EHR page offers to launch."""
    return SmartApp.objects.filter(is_active=True).exclude(launch_uri="").order_by("name", "pk")
