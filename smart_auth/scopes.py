"""SMART scopes: parsing (v1 and v2, granular), coverage, plain-language descriptions.

Pure functions over strings: no database, no request, so they are tested without Django.

- v1 (SMART 1.0): `patient/Observation.read`, `user/*.write`, `system/*.*`.
- v2 (SMART 2.x): `patient/Observation.rs`, permissions a non-empty subsequence of `cruds`
  (letters in that order, none twice), optionally narrowed by search constraints
  `patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory`.
- context and identity: `launch`, `launch/patient`, `launch/encounter`, `openid`, `fhirUser`,
  `profile`, `offline_access`, `online_access`.

v1 permissions map to v2 letters as the IG recommends (read → rs, write → cud, * → cruds), so a
v1 registration covers the v2 requests it implies and the other way round. Anything else is not
a scope this server grants: `parse_scope` returns None and the scope is dropped from a grant.
"""

import re
from dataclasses import dataclass, field

from oauth2_provider.scopes import BaseScopes

CLINICAL = "clinical"
IDENTITY = "identity"
LAUNCH = "launch"
ACCESS = "access"

CRUDS = "cruds"
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
CONTEXTS = ("patient", "user", "system")

IDENTITY_SCOPES = ("openid", "fhirUser", "profile")
LAUNCH_SCOPES = ("launch", "launch/patient", "launch/encounter")
ACCESS_SCOPES = ("offline_access", "online_access")

_CLINICAL_RE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})"
    r"\.(?P<permissions>[a-z*]+)(?:\?(?P<query>.+))?$"
)
_PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.\-]*$")


@dataclass(frozen=True)
class Scope:
    """One parsed scope. Clinical scopes fill the fields after `kind`; others leave them empty."""

    text: str
    kind: str
    context: str = ""
    resource_type: str = ""
    # Normalised v2 letters in `cruds` order, whatever the version written.
    permissions: str = ""
    # Search constraints of a granular scope, as written: (("category", "system|code"),).
    constraints: tuple = field(default=())
    version: int = 2

    @property
    def is_clinical(self):
        return self.kind == CLINICAL

    def covers(self, other):
        """True if granting `self` already allows everything `other` would."""
        if not (self.is_clinical and other.is_clinical):
            return self.text == other.text
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and set(other.permissions) <= set(self.permissions)
            and set(self.constraints) <= set(other.constraints)
        )


def parse_scope(text):
    """The Scope for `text`, or None if it is not a scope this server understands."""
    if text in IDENTITY_SCOPES:
        return Scope(text, IDENTITY)
    if text in LAUNCH_SCOPES:
        return Scope(text, LAUNCH)
    if text in ACCESS_SCOPES:
        return Scope(text, ACCESS)
    match = _CLINICAL_RE.match(text)
    if match is None:
        return None
    permissions, version = _parse_permissions(match["permissions"])
    if permissions is None:
        return None
    constraints = _parse_constraints(match["query"]) if match["query"] else ()
    if constraints is None or (constraints and version == 1):
        return None
    return Scope(
        text,
        CLINICAL,
        context=match["context"],
        resource_type=match["type"],
        permissions=permissions,
        constraints=constraints,
        version=version,
    )


def _parse_permissions(raw):
    """(v2 letters, version) or (None, 0): `read`/`write`/`*` are v1, `cruds` subsequences v2."""
    if raw in V1_PERMISSIONS:
        return V1_PERMISSIONS[raw], 1
    position = 0
    for letter in raw:
        position = CRUDS.find(letter, position)
        if position < 0:
            return None, 0  # unknown letter, out of order or repeated: never reinterpret
        position += 1
    return (raw, 2) if raw else (None, 0)


def _parse_constraints(query):
    """Granular constraints `a=b&c=d` as ((a, b), (c, d)), kept as written; None if malformed."""
    pairs = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if (
            not sep
            or not value
            or not _PARAM_NAME_RE.match(name)
            or any(c.isspace() for c in value)
        ):
            return None
        pairs.append((name, value))
    return tuple(pairs)


def parse_scopes(scopes):
    """Parsed scopes of a space-separated string or a list, understood ones only, in order."""
    texts = scopes.split() if isinstance(scopes, str) else scopes
    parsed = (parse_scope(text) for text in dict.fromkeys(texts))
    return [scope for scope in parsed if scope is not None]


def is_valid_scope(text):
    return parse_scope(text) is not None


def is_covered(scope_text, registered):
    """True if `scope_text` is one of `registered` or implied by one of them."""
    scope = parse_scope(scope_text)
    if scope is None:
        return False
    return any(allowed.covers(scope) for allowed in parse_scopes(registered))


def filter_registered(requested, registered):
    """The requested scopes an app registered for `registered` may get, in request order.

    A scope the app is not registered for, or one this server does not understand, is dropped.
    """
    allowed = parse_scopes(registered)
    granted = []
    for scope in parse_scopes(requested):
        if any(entry.covers(scope) for entry in allowed):
            granted.append(scope.text)
    return granted


def needs_patient(scopes):
    """True if a grant of `scopes` needs a patient in context (launch/patient or patient/…)."""
    parsed = parse_scopes(scopes)
    return any(
        s.text == "launch/patient" or (s.is_clinical and s.context == "patient") for s in parsed
    )


def has_refresh_access(scopes):
    texts = set(scopes.split() if isinstance(scopes, str) else scopes)
    return bool(texts & set(ACCESS_SCOPES))


# --- Plain-language descriptions for the consent page ---------------------------------------

RESOURCE_WORDS = {
    "*": "health records",
    "Patient": "demographics (name, birth date, contact details)",
    "Observation": "observations (lab results, vital signs and other measurements)",
    "Condition": "conditions and health problems",
    "AllergyIntolerance": "allergies",
    "MedicationRequest": "prescriptions",
    "MedicationStatement": "medication lists",
    "MedicationDispense": "dispensed medications",
    "Medication": "medication details",
    "Immunization": "immunizations",
    "Procedure": "procedures",
    "Encounter": "visits and hospital stays",
    "DiagnosticReport": "test reports",
    "DocumentReference": "clinical documents",
    "CarePlan": "care plans",
    "CareTeam": "care teams",
    "Goal": "health goals",
    "Device": "medical devices",
    "Coverage": "insurance coverage",
    "ServiceRequest": "orders and referrals",
    "Specimen": "specimens",
    "Practitioner": "clinician profiles",
    "PractitionerRole": "clinician roles",
    "Organization": "organizations",
    "Location": "locations",
    "Provenance": "record history",
    "QuestionnaireResponse": "questionnaire answers",
    "RelatedPerson": "related people",
}

CATEGORY_WORDS = {
    "laboratory": "lab results",
    "vital-signs": "vital signs",
    "social-history": "social history",
    "survey": "survey answers",
    "sdoh": "social needs information",
    "imaging": "imaging results",
    "exam": "exam findings",
    "procedure": "procedure results",
    "therapy": "therapy results",
    "activity": "activity measurements",
    "problem-list-item": "problem list",
    "encounter-diagnosis": "visit diagnoses",
    "health-concern": "health concerns",
}

OTHER_DESCRIPTIONS = {
    "openid": "Confirm your identity to the app",
    "fhirUser": "Know who you are (your user record)",
    "profile": "See your name and profile",
    "launch": "Use the patient and visit open in your current session",
    "launch/encounter": "Know which visit you are working in",
    "offline_access": "Keep access after you close the app, until you revoke it",
    "online_access": "Keep access while you are signed in",
}


def describe_scope(scope_text, *, for_patient=True):
    """A short sentence for a person approving `scope_text` ("Read your lab results").

    `for_patient` says whose data a patient/ scope touches: the reader's own ("your") or, for
    a clinician, the patient they pick.
    """
    if scope_text == "launch/patient":
        return (
            "Know which patient record is yours"
            if for_patient
            else "Know which patient's record you choose"
        )
    if scope_text in OTHER_DESCRIPTIONS:
        return OTHER_DESCRIPTIONS[scope_text]
    scope = parse_scope(scope_text)
    if scope is None or not scope.is_clinical:
        return scope_text
    verbs = _verbs(scope.permissions)
    things = _things(scope)
    if scope.context == "patient":
        owner = "your" if for_patient else "the selected patient's"
        if scope.resource_type == "*":
            owner = "all of " + owner
        return f"{verbs} {owner} {things}"
    if scope.context == "user":
        return f"{verbs} {things} you have access to"
    return f"{verbs} any {things} on this server"


def _verbs(permissions):
    words = []
    if "r" in permissions or "s" in permissions:
        words.append("read")
    if "c" in permissions:
        words.append("add")
    if "u" in permissions:
        words.append("change")
    if "d" in permissions:
        words.append("delete")
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return text[0].upper() + text[1:]


def _things(scope):
    for name, value in scope.constraints:
        if name == "category" and value.rsplit("|", 1)[-1] in CATEGORY_WORDS:
            return CATEGORY_WORDS[value.rsplit("|", 1)[-1]]
    words = RESOURCE_WORDS.get(scope.resource_type)
    if words is None:
        words = re.sub(r"(?<!^)(?=[A-Z])", " ", scope.resource_type).lower() + " records"
    if scope.constraints:
        conditions = " and ".join(f"{n} is {v.rsplit('|', 1)[-1]}" for n, v in scope.constraints)
        words += f" where {conditions}"
    return words


# Listed in scopes_supported (the seed's list plus the v2 and context scopes that work here).
SUPPORTED_SCOPES = {
    "openid": OTHER_DESCRIPTIONS["openid"],
    "fhirUser": OTHER_DESCRIPTIONS["fhirUser"],
    "profile": OTHER_DESCRIPTIONS["profile"],
    "launch": OTHER_DESCRIPTIONS["launch"],
    "launch/patient": "Know which patient is in context",
    "launch/encounter": OTHER_DESCRIPTIONS["launch/encounter"],
    "offline_access": OTHER_DESCRIPTIONS["offline_access"],
    "online_access": OTHER_DESCRIPTIONS["online_access"],
    "patient/*.read": "Read any resource for the patient in context",
    "patient/*.write": "Write resources for the patient in context",
    "patient/*.rs": "Read and search any resource for the patient in context",
    "patient/*.cruds": "Full access to the patient in context",
    "user/*.read": "Read resources the current user may access",
    "user/*.write": "Write resources the current user may access",
    "user/*.rs": "Read and search resources the current user may access",
    "user/*.cruds": "Full access to what the current user may access",
    "system/*.read": "System-level read access",
    "system/*.rs": "Read and search any resource on this server (backend services)",
}


class SmartScopes(BaseScopes):
    """DOT's SCOPES_BACKEND_CLASS: any understood SMART scope the app is registered for.

    DOT's default backend only knows a fixed SCOPES dict, which cannot hold every
    `patient/Type.rs?category=…` combination.
    """

    def get_all_scopes(self):
        return SUPPORTED_SCOPES

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        registered = application.scope_list if application is not None else []
        requested = getattr(request, "scopes", None) if request is not None else None
        if requested:
            return filter_registered(requested, registered)
        return registered

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return []
