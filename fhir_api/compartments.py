"""The R4 Patient compartment: which resources belong to Patient/{id}, computed at write time.

PATIENT_COMPARTMENT is the R4 (4.0.1) CompartmentDefinition for Patient
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html): for each resource type, the search
parameters that link it to a patient, with the element paths their R4 SearchParameter
expressions name (`Encounter:patient` is `Encounter.subject`, `Group:member` is
`Group.member.entity`). Types not listed are never in a patient's compartment.

A resource is in Patient/{id}'s compartment when one of those elements refers explicitly to
Patient/{id} (`Patient/123`, or our own base URL + `/Patient/123`); a reference whose type cannot
be told (another server's URL, a contained or `urn:` reference) does not count. A Patient is in
its own compartment. Membership is stored as CompartmentMembership rows, so a patient-scoped
search or read is one indexed join (patient_compartment_q) and paging stays correct.
"""

from django.db.models import Q

from .models import CompartmentMembership
from .search.paths import values_at
from .search.reference import split_reference_element

# resource type → {compartment param: element paths}
PATIENT_COMPARTMENT = {
    "Account": {"subject": ("subject",)},
    "AdverseEvent": {"subject": ("subject",)},
    "AllergyIntolerance": {
        "patient": ("patient",),
        "recorder": ("recorder",),
        "asserter": ("asserter",),
    },
    "Appointment": {"actor": ("participant.actor",)},
    "AppointmentResponse": {"actor": ("actor",)},
    "AuditEvent": {"patient": ("agent.who", "entity.what")},
    "Basic": {"patient": ("subject",), "author": ("author",)},
    "BodyStructure": {"patient": ("patient",)},
    "CarePlan": {"patient": ("subject",), "performer": ("activity.detail.performer",)},
    "CareTeam": {"patient": ("subject",), "participant": ("participant.member",)},
    "ChargeItem": {"subject": ("subject",)},
    "Claim": {"patient": ("patient",), "payee": ("payee.party",)},
    "ClaimResponse": {"patient": ("patient",)},
    "ClinicalImpression": {"subject": ("subject",)},
    "Communication": {
        "subject": ("subject",),
        "sender": ("sender",),
        "recipient": ("recipient",),
    },
    "CommunicationRequest": {
        "subject": ("subject",),
        "sender": ("sender",),
        "recipient": ("recipient",),
        "requester": ("requester",),
    },
    "Composition": {
        "subject": ("subject",),
        "author": ("author",),
        "attester": ("attester.party",),
    },
    "Condition": {"patient": ("subject",), "asserter": ("asserter",)},
    "Consent": {"patient": ("patient",)},
    "Coverage": {
        "policy-holder": ("policyHolder",),
        "subscriber": ("subscriber",),
        "beneficiary": ("beneficiary",),
        "payor": ("payor",),
    },
    "CoverageEligibilityRequest": {"patient": ("patient",)},
    "CoverageEligibilityResponse": {"patient": ("patient",)},
    "DetectedIssue": {"patient": ("patient",)},
    "DeviceRequest": {"subject": ("subject",), "performer": ("performer",)},
    "DeviceUseStatement": {"subject": ("subject",)},
    "DiagnosticReport": {"subject": ("subject",)},
    "DocumentManifest": {
        "subject": ("subject",),
        "author": ("author",),
        "recipient": ("recipient",),
    },
    "DocumentReference": {"subject": ("subject",), "author": ("author",)},
    "Encounter": {"patient": ("subject",)},
    "EnrollmentRequest": {"subject": ("candidate",)},
    "EpisodeOfCare": {"patient": ("patient",)},
    "ExplanationOfBenefit": {"patient": ("patient",), "payee": ("payee.party",)},
    "FamilyMemberHistory": {"patient": ("patient",)},
    "Flag": {"patient": ("subject",)},
    "Goal": {"patient": ("subject",)},
    "Group": {"member": ("member.entity",)},
    "ImagingStudy": {"patient": ("subject",)},
    "Immunization": {"patient": ("patient",)},
    "ImmunizationEvaluation": {"patient": ("patient",)},
    "ImmunizationRecommendation": {"patient": ("patient",)},
    "Invoice": {
        "subject": ("subject",),
        "patient": ("subject",),
        "recipient": ("recipient",),
    },
    "List": {"subject": ("subject",), "source": ("source",)},
    "MeasureReport": {"patient": ("subject",)},
    "Media": {"subject": ("subject",)},
    "MedicationAdministration": {
        "patient": ("subject",),
        "performer": ("performer.actor",),
        "subject": ("subject",),
    },
    "MedicationDispense": {
        "subject": ("subject",),
        "patient": ("subject",),
        "receiver": ("receiver",),
    },
    "MedicationRequest": {"subject": ("subject",)},
    "MedicationStatement": {"subject": ("subject",)},
    "MolecularSequence": {"patient": ("patient",)},
    "NutritionOrder": {"patient": ("patient",)},
    "Observation": {"subject": ("subject",), "performer": ("performer",)},
    "Patient": {"link": ("link.other",)},
    "Person": {"patient": ("link.target",)},
    "Procedure": {"patient": ("subject",), "performer": ("performer.actor",)},
    "Provenance": {"patient": ("target",)},
    "QuestionnaireResponse": {"subject": ("subject",), "author": ("author",)},
    "RelatedPerson": {"patient": ("patient",)},
    "RequestGroup": {"subject": ("subject",), "participant": ("action.participant",)},
    "ResearchSubject": {"individual": ("individual",)},
    "RiskAssessment": {"subject": ("subject",)},
    "Schedule": {"actor": ("actor",)},
    "ServiceRequest": {"subject": ("subject",), "performer": ("performer",)},
    "Specimen": {"subject": ("subject",)},
    "SupplyDelivery": {"patient": ("patient",)},
    "SupplyRequest": {"subject": ("deliverTo",)},
    "VisionPrescription": {"patient": ("patient",)},
}

# Types that describe no individual: directories, definitions, terminology and conformance.
# A patient's app may read and search them as shared reference data (SMART leaves this to the
# server). Every other type outside the Patient compartment (Binary, Bundle, Device, Task,
# Contract, GuidanceResponse...) can hold a patient's data the compartment cannot attribute,
# so patient-scoped access never reaches it.
SHARED_REFERENCE_TYPES = frozenset(
    {
        "ActivityDefinition",
        "AdministrableProductDefinition",
        "CapabilityStatement",
        "ChargeItemDefinition",
        "Citation",
        "ClinicalUseDefinition",
        "CodeSystem",
        "CompartmentDefinition",
        "ConceptMap",
        "DeviceDefinition",
        "Endpoint",
        "EventDefinition",
        "Evidence",
        "EvidenceReport",
        "EvidenceVariable",
        "ExampleScenario",
        "GraphDefinition",
        "HealthcareService",
        "ImplementationGuide",
        "Ingredient",
        "InsurancePlan",
        "Library",
        "Location",
        "ManufacturedItemDefinition",
        "Measure",
        "Medication",
        "MedicationKnowledge",
        "MedicinalProductDefinition",
        "MessageDefinition",
        "NamingSystem",
        "NutritionProduct",
        "ObservationDefinition",
        "OperationDefinition",
        "Organization",
        "OrganizationAffiliation",
        "PackagedProductDefinition",
        "PlanDefinition",
        "Practitioner",
        "PractitionerRole",
        "Questionnaire",
        "RegulatedAuthorization",
        "ResearchDefinition",
        "ResearchElementDefinition",
        "SearchParameter",
        "SpecimenDefinition",
        "StructureDefinition",
        "StructureMap",
        "Substance",
        "SubstanceDefinition",
        "SubscriptionTopic",
        "TerminologyCapabilities",
        "TestScript",
        "ValueSet",
    }
)

# The distinct element paths per type, walked once each.
_PATHS = {
    resource_type: tuple(dict.fromkeys(path for paths in params.values() for path in paths))
    for resource_type, params in PATIENT_COMPARTMENT.items()
}


def can_be_in_patient_compartment(resource_type):
    """False for types the R4 definition leaves out (Practitioner, Organization, Medication...)."""
    return resource_type in PATIENT_COMPARTMENT


def is_shared_reference_type(resource_type):
    """True for types a patient-scoped app may read as shared reference data (Practitioner...)."""
    return resource_type in SHARED_REFERENCE_TYPES


def get_patient_ids(resource_type, content, base_urls):
    """Ids of the Patients whose compartment holds this resource (its own id for a Patient)."""
    patient_ids = set()
    if resource_type == "Patient" and isinstance(content.get("id"), str) and content["id"]:
        patient_ids.add(content["id"])
    for path in _PATHS.get(resource_type, ()):
        for element in values_at(content, path):
            patient_id = _patient_id(element, base_urls)
            if patient_id:
                patient_ids.add(patient_id)
    return patient_ids


def _patient_id(element, base_urls):
    if not isinstance(element, dict):
        return None
    target = split_reference_element(element, base_urls)
    if target is None or target[0] != "Patient":
        return None
    return target[1]


def patient_compartment_q(patient_id, resource_type=None):
    """A Q on Resource: in Patient/{patient_id}'s compartment (of one type, if given)."""
    members = CompartmentMembership.objects.filter(patient_id=patient_id)
    if resource_type is not None:
        members = members.filter(resource_type=resource_type)
    return Q(id__in=members.values("resource_id"))
