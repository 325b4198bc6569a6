"""The search parameters this server supports, with the element paths their values come from.

Names, types and targets follow the R4 (4.0.1) SearchParameter definitions. Their FHIRPath
expressions are written here as plain dotted element paths, walked through lists: a choice
element such as `Observation.effective` is listed once per R4 type it can take
(`effectiveDateTime`, `effectivePeriod`, ...), and `X.where(resolve() is Patient)` becomes the
path of X with targets ("Patient",), because extraction keeps only references to a target type.
Only what is listed is indexed (each parameter costs write time and space), and only what is
indexed can be searched; the CapabilityStatement is built from this registry.

`_id` and `_lastUpdated` are answered from the Resource row itself, so they have no index rows.
"""

from dataclasses import dataclass

TOKEN, STRING, DATE, REFERENCE = "token", "string", "date", "reference"
TYPES = (TOKEN, STRING, DATE, REFERENCE)


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # token | string | date | reference
    paths: tuple[str, ...]
    # Resource types a reference may point to; empty means any.
    targets: tuple[str, ...] = ()


def _p(name, type_, *paths, targets=()):
    return SearchParam(name, type_, paths, tuple(targets))


COMMON = {
    "_id": _p("_id", TOKEN, "id"),
    "_lastUpdated": _p("_lastUpdated", DATE, "meta.lastUpdated"),
}

# Target lists shared by several resource types (R4 reference targets).
_PATIENT = ("Patient",)
_SUBJECT = ("Patient", "Group")
_OBSERVATION_SUBJECT = ("Patient", "Group", "Device", "Location")
_PERFORMERS = (
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "CareTeam",
    "Patient",
    "RelatedPerson",
)
_ACTORS = ("Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device")
_ASSERTERS = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
_CLINICIANS = ("Practitioner", "PractitionerRole", "Organization")
_ENCOUNTER = ("Encounter",)


def _person_params():
    """identifier, name parts, gender, telecom and address: shared by Patient and Practitioner."""
    return [
        _p("identifier", TOKEN, "identifier"),
        _p("active", TOKEN, "active"),
        # `name` matches any part of a HumanName: text, family, given, prefix, suffix.
        _p("name", STRING, "name"),
        _p("family", STRING, "name.family"),
        _p("given", STRING, "name.given"),
        _p("gender", TOKEN, "gender"),
        _p("telecom", TOKEN, "telecom"),
        _p("address", STRING, "address"),
        _p("address-city", STRING, "address.city"),
        _p("address-state", STRING, "address.state"),
        _p("address-postalcode", STRING, "address.postalCode"),
        _p("address-country", STRING, "address.country"),
    ]


def _subject_params(subject_targets=_SUBJECT):
    """patient (subject.where(resolve() is Patient)) and subject."""
    return [
        _p("patient", REFERENCE, "subject", targets=_PATIENT),
        _p("subject", REFERENCE, "subject", targets=subject_targets),
    ]


_BY_TYPE = {
    "Patient": [
        *_person_params(),
        _p("birthdate", DATE, "birthDate"),
        _p("death-date", DATE, "deceasedDateTime"),
        _p("language", TOKEN, "communication.language"),
        _p("organization", REFERENCE, "managingOrganization", targets=("Organization",)),
        _p(
            "general-practitioner",
            REFERENCE,
            "generalPractitioner",
            targets=("Organization", "Practitioner", "PractitionerRole"),
        ),
        _p("link", REFERENCE, "link.other", targets=("Patient", "RelatedPerson")),
    ],
    "Practitioner": [
        *_person_params(),
        _p("communication", TOKEN, "communication"),
    ],
    "Encounter": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("class", TOKEN, "class"),
        _p("type", TOKEN, "type"),
        *_subject_params(),
        _p("date", DATE, "period"),
        _p(
            "participant",
            REFERENCE,
            "participant.individual",
            targets=("Practitioner", "PractitionerRole", "RelatedPerson"),
        ),
        _p("practitioner", REFERENCE, "participant.individual", targets=("Practitioner",)),
        _p("participant-type", TOKEN, "participant.type"),
        _p("service-provider", REFERENCE, "serviceProvider", targets=("Organization",)),
        _p("location", REFERENCE, "location.location", targets=("Location",)),
        _p("reason-code", TOKEN, "reasonCode"),
        _p(
            "reason-reference",
            REFERENCE,
            "reasonReference",
            targets=("Condition", "Procedure", "Observation", "ImmunizationRecommendation"),
        ),
        _p("diagnosis", REFERENCE, "diagnosis.condition", targets=("Condition", "Procedure")),
        _p("episode-of-care", REFERENCE, "episodeOfCare", targets=("EpisodeOfCare",)),
        _p("based-on", REFERENCE, "basedOn", targets=("ServiceRequest",)),
        _p("part-of", REFERENCE, "partOf", targets=_ENCOUNTER),
        _p("appointment", REFERENCE, "appointment", targets=("Appointment",)),
    ],
    "Observation": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("code", TOKEN, "code"),
        _p("category", TOKEN, "category"),
        _p("combo-code", TOKEN, "code", "component.code"),
        _p("component-code", TOKEN, "component.code"),
        *_subject_params(_OBSERVATION_SUBJECT),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p(
            "date",
            DATE,
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveTiming.event",
            "effectiveInstant",
        ),
        _p("performer", REFERENCE, "performer", targets=_PERFORMERS),
        _p("value-concept", TOKEN, "valueCodeableConcept"),
        _p("value-date", DATE, "valueDateTime", "valuePeriod"),
        _p("value-string", STRING, "valueString"),
        _p("data-absent-reason", TOKEN, "dataAbsentReason"),
        _p("method", TOKEN, "method"),
        _p(
            "based-on",
            REFERENCE,
            "basedOn",
            targets=(
                "CarePlan",
                "DeviceRequest",
                "ImmunizationRecommendation",
                "MedicationRequest",
                "NutritionOrder",
                "ServiceRequest",
            ),
        ),
        _p(
            "derived-from",
            REFERENCE,
            "derivedFrom",
            targets=(
                "DocumentReference",
                "ImagingStudy",
                "Media",
                "QuestionnaireResponse",
                "Observation",
                "MolecularSequence",
            ),
        ),
        _p(
            "has-member",
            REFERENCE,
            "hasMember",
            targets=("Observation", "QuestionnaireResponse", "MolecularSequence"),
        ),
        _p(
            "part-of",
            REFERENCE,
            "partOf",
            targets=(
                "MedicationAdministration",
                "MedicationDispense",
                "MedicationStatement",
                "Procedure",
                "Immunization",
                "ImagingStudy",
            ),
        ),
        _p("specimen", REFERENCE, "specimen", targets=("Specimen",)),
        _p("device", REFERENCE, "device", targets=("Device", "DeviceMetric")),
        _p("focus", REFERENCE, "focus"),
    ],
    "Condition": [
        _p("identifier", TOKEN, "identifier"),
        _p("code", TOKEN, "code"),
        _p("category", TOKEN, "category"),
        _p("clinical-status", TOKEN, "clinicalStatus"),
        _p("verification-status", TOKEN, "verificationStatus"),
        _p("severity", TOKEN, "severity"),
        _p("body-site", TOKEN, "bodySite"),
        _p("stage", TOKEN, "stage.summary"),
        _p("evidence", TOKEN, "evidence.code"),
        _p("evidence-detail", REFERENCE, "evidence.detail"),
        *_subject_params(),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p("asserter", REFERENCE, "asserter", targets=_ASSERTERS),
        _p("onset-date", DATE, "onsetDateTime", "onsetPeriod"),
        _p("abatement-date", DATE, "abatementDateTime", "abatementPeriod"),
        _p("recorded-date", DATE, "recordedDate"),
    ],
    "AllergyIntolerance": [
        _p("identifier", TOKEN, "identifier"),
        _p("clinical-status", TOKEN, "clinicalStatus"),
        _p("verification-status", TOKEN, "verificationStatus"),
        _p("type", TOKEN, "type"),
        _p("category", TOKEN, "category"),
        _p("criticality", TOKEN, "criticality"),
        _p("code", TOKEN, "code", "reaction.substance"),
        _p("manifestation", TOKEN, "reaction.manifestation"),
        _p("severity", TOKEN, "reaction.severity"),
        _p("route", TOKEN, "reaction.exposureRoute"),
        _p("patient", REFERENCE, "patient", targets=_PATIENT),
        _p("recorder", REFERENCE, "recorder", targets=_ASSERTERS),
        _p("asserter", REFERENCE, "asserter", targets=_ASSERTERS),
        _p("date", DATE, "recordedDate"),
        _p("onset", DATE, "reaction.onset"),
        _p("last-date", DATE, "lastOccurrence"),
    ],
    "MedicationRequest": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("intent", TOKEN, "intent"),
        _p("category", TOKEN, "category"),
        _p("priority", TOKEN, "priority"),
        _p("code", TOKEN, "medicationCodeableConcept"),
        _p("medication", REFERENCE, "medicationReference", targets=("Medication",)),
        *_subject_params(),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p("requester", REFERENCE, "requester", targets=_ACTORS),
        _p("intended-performer", REFERENCE, "performer", targets=(*_ACTORS, "CareTeam")),
        _p("intended-performertype", TOKEN, "performerType"),
        _p("intended-dispenser", REFERENCE, "dispenseRequest.performer", targets=("Organization",)),
        _p("authoredon", DATE, "authoredOn"),
        _p("date", DATE, "dosageInstruction.timing.event"),
    ],
    "Procedure": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("code", TOKEN, "code"),
        _p("category", TOKEN, "category"),
        *_subject_params(),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        # Procedure.performed[x] is also string, Age or Range; those carry no instant.
        _p("date", DATE, "performedDateTime", "performedPeriod"),
        _p("performer", REFERENCE, "performer.actor", targets=_ACTORS),
        _p("location", REFERENCE, "location", targets=("Location",)),
        _p("reason-code", TOKEN, "reasonCode"),
        _p(
            "reason-reference",
            REFERENCE,
            "reasonReference",
            targets=(
                "Condition",
                "Observation",
                "Procedure",
                "DiagnosticReport",
                "DocumentReference",
            ),
        ),
        _p("based-on", REFERENCE, "basedOn", targets=("CarePlan", "ServiceRequest")),
        _p(
            "part-of",
            REFERENCE,
            "partOf",
            targets=("Procedure", "Observation", "MedicationAdministration"),
        ),
    ],
    "Immunization": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("status-reason", TOKEN, "statusReason"),
        _p("vaccine-code", TOKEN, "vaccineCode"),
        _p("patient", REFERENCE, "patient", targets=_PATIENT),
        # Immunization.occurrence[x] is dateTime or string; only the dateTime is a date.
        _p("date", DATE, "occurrenceDateTime"),
        _p("location", REFERENCE, "location", targets=("Location",)),
        _p("lot-number", STRING, "lotNumber"),
        _p("manufacturer", REFERENCE, "manufacturer", targets=("Organization",)),
        _p("performer", REFERENCE, "performer.actor", targets=_CLINICIANS),
        _p("reaction", REFERENCE, "reaction.detail", targets=("Observation",)),
        _p("reaction-date", DATE, "reaction.date"),
        _p("reason-code", TOKEN, "reasonCode"),
        _p(
            "reason-reference",
            REFERENCE,
            "reasonReference",
            targets=("Condition", "Observation", "DiagnosticReport"),
        ),
        _p("series", STRING, "protocolApplied.series"),
        _p("target-disease", TOKEN, "protocolApplied.targetDisease"),
    ],
    "DiagnosticReport": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("code", TOKEN, "code"),
        _p("category", TOKEN, "category"),
        _p("conclusion", TOKEN, "conclusionCode"),
        *_subject_params(_OBSERVATION_SUBJECT),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p("date", DATE, "effectiveDateTime", "effectivePeriod"),
        _p("issued", DATE, "issued"),
        _p("performer", REFERENCE, "performer", targets=(*_CLINICIANS, "CareTeam")),
        _p(
            "results-interpreter",
            REFERENCE,
            "resultsInterpreter",
            targets=(*_CLINICIANS, "CareTeam"),
        ),
        _p("result", REFERENCE, "result", targets=("Observation",)),
        _p("specimen", REFERENCE, "specimen", targets=("Specimen",)),
        _p("media", REFERENCE, "media.link", targets=("Media",)),
        _p(
            "based-on",
            REFERENCE,
            "basedOn",
            targets=(
                "CarePlan",
                "ImmunizationRecommendation",
                "MedicationRequest",
                "NutritionOrder",
                "ServiceRequest",
            ),
        ),
    ],
    "DocumentReference": [
        _p("identifier", TOKEN, "masterIdentifier", "identifier"),
        _p("status", TOKEN, "status"),
        _p("type", TOKEN, "type"),
        _p("category", TOKEN, "category"),
        *_subject_params(("Patient", "Practitioner", "Group", "Device")),
        _p("encounter", REFERENCE, "context.encounter", targets=("Encounter", "EpisodeOfCare")),
        _p("date", DATE, "date"),
        _p("period", DATE, "context.period"),
        _p("author", REFERENCE, "author", targets=_ACTORS),
        _p("authenticator", REFERENCE, "authenticator", targets=_CLINICIANS),
        _p("custodian", REFERENCE, "custodian", targets=("Organization",)),
        _p("contenttype", TOKEN, "content.attachment.contentType"),
        _p("format", TOKEN, "content.format"),
        _p("language", TOKEN, "content.attachment.language"),
        _p("description", STRING, "description"),
        _p("event", TOKEN, "context.event"),
        _p("facility", TOKEN, "context.facilityType"),
        _p("setting", TOKEN, "context.practiceSetting"),
        _p("security-label", TOKEN, "securityLabel"),
        _p("relation", TOKEN, "relatesTo.code"),
        _p("relatesto", REFERENCE, "relatesTo.target", targets=("DocumentReference",)),
        _p("related", REFERENCE, "context.related"),
    ],
    "Organization": [
        _p("identifier", TOKEN, "identifier"),
        _p("active", TOKEN, "active"),
        _p("name", STRING, "name", "alias"),
        _p("type", TOKEN, "type"),
        _p("address", STRING, "address"),
        _p("address-city", STRING, "address.city"),
        _p("address-state", STRING, "address.state"),
        _p("address-postalcode", STRING, "address.postalCode"),
        _p("partof", REFERENCE, "partOf", targets=("Organization",)),
    ],
    "PractitionerRole": [
        _p("identifier", TOKEN, "identifier"),
        _p("active", TOKEN, "active"),
        _p("role", TOKEN, "code"),
        _p("specialty", TOKEN, "specialty"),
        _p("practitioner", REFERENCE, "practitioner", targets=("Practitioner",)),
        _p("organization", REFERENCE, "organization", targets=("Organization",)),
        _p("location", REFERENCE, "location", targets=("Location",)),
        _p("date", DATE, "period"),
    ],
    "Location": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("name", STRING, "name", "alias"),
        _p("type", TOKEN, "type"),
        _p("address", STRING, "address"),
        _p("address-city", STRING, "address.city"),
        _p("address-state", STRING, "address.state"),
        _p("address-postalcode", STRING, "address.postalCode"),
        _p("organization", REFERENCE, "managingOrganization", targets=("Organization",)),
        _p("partof", REFERENCE, "partOf", targets=("Location",)),
    ],
    "Medication": [
        _p("identifier", TOKEN, "identifier"),
        _p("code", TOKEN, "code"),
        _p("status", TOKEN, "status"),
        _p("form", TOKEN, "form"),
        _p("manufacturer", REFERENCE, "manufacturer", targets=("Organization",)),
    ],
    "CarePlan": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("intent", TOKEN, "intent"),
        _p("category", TOKEN, "category"),
        *_subject_params(),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p("date", DATE, "period"),
        _p("care-team", REFERENCE, "careTeam", targets=("CareTeam",)),
        _p("goal", REFERENCE, "goal", targets=("Goal",)),
    ],
    "CareTeam": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("category", TOKEN, "category"),
        *_subject_params(),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p("date", DATE, "period"),
        _p("participant", REFERENCE, "participant.member", targets=_PERFORMERS),
    ],
    "Goal": [
        _p("identifier", TOKEN, "identifier"),
        _p("lifecycle-status", TOKEN, "lifecycleStatus"),
        _p("achievement-status", TOKEN, "achievementStatus"),
        _p("category", TOKEN, "category"),
        *_subject_params(("Patient", "Group", "Organization")),
        _p("start-date", DATE, "startDate"),
        _p("target-date", DATE, "target.dueDate"),
    ],
    "ServiceRequest": [
        _p("identifier", TOKEN, "identifier"),
        _p("status", TOKEN, "status"),
        _p("intent", TOKEN, "intent"),
        _p("priority", TOKEN, "priority"),
        _p("code", TOKEN, "code"),
        _p("category", TOKEN, "category"),
        *_subject_params(("Patient", "Group", "Location", "Device")),
        _p("encounter", REFERENCE, "encounter", targets=_ENCOUNTER),
        _p("authored", DATE, "authoredOn"),
        _p("occurrence", DATE, "occurrenceDateTime", "occurrencePeriod", "occurrenceTiming.event"),
        _p("requester", REFERENCE, "requester", targets=_ACTORS),
        _p(
            "performer",
            REFERENCE,
            "performer",
            targets=(*_ACTORS, "CareTeam", "HealthcareService"),
        ),
        _p(
            "based-on",
            REFERENCE,
            "basedOn",
            targets=("CarePlan", "ServiceRequest", "MedicationRequest"),
        ),
    ],
    "AuditEvent": [
        # What administrators look for: when, which kind, by whom, about whom, how it ended.
        _p("date", DATE, "recorded"),
        _p("type", TOKEN, "type"),
        _p("subtype", TOKEN, "subtype"),
        _p("action", TOKEN, "action"),
        _p("outcome", TOKEN, "outcome"),
        _p("agent", REFERENCE, "agent.who", targets=_ACTORS),
        _p("agent-name", STRING, "agent.name"),
        _p("entity", REFERENCE, "entity.what"),
        _p("patient", REFERENCE, "agent.who", "entity.what", targets=_PATIENT),
    ],
    "Provenance": [
        _p("target", REFERENCE, "target"),
        _p("patient", REFERENCE, "target", targets=_PATIENT),
        _p("agent", REFERENCE, "agent.who", targets=_ACTORS),
        _p("recorded", DATE, "recorded"),
    ],
}

_REGISTRY = {
    resource_type: COMMON | {param.name: param for param in params}
    for resource_type, params in _BY_TYPE.items()
}


def get_search_params(resource_type):
    """Name → SearchParam for `resource_type`: `_id` and `_lastUpdated` for every type."""
    return dict(_REGISTRY.get(resource_type, COMMON))
