"""What the minimal EHR pages show (the consent app's /smart/ehr/...) besides the patients
themselves (`patients.py`, shared with the patient picker): a patient's visits, and the apps
that can be launched.

Read from the FHIR store's index tables, so the pages never parse more resources than they
show.
"""

from dataclasses import dataclass

from django.db.models import F, OuterRef, Subquery
from oauth2_provider.models import get_application_model

from fhir_api.models import CompartmentMembership, DateIndex, Resource

from .patients import content_of

SmartApp = get_application_model()
RECENT_ENCOUNTERS = 20


@dataclass(frozen=True)
class EncounterChoice:
    id: str
    start: str
    description: str
    status: str


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
