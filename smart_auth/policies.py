"""From the SMART scopes of an access token to the FHIR API's AccessPolicy.

Each clinical scope becomes one `Grant` in FHIR terms (fhir_api.policy), which the API
enforces; nothing of OAuth crosses over. v1 and v2 permissions were already normalised to v2
letters by `parse_scope` (read → rs, write → cud, * → cruds). What a grant reaches depends on
the scope's context:

- `patient/`: the compartment of the token's `patient`. Without a patient in context the
  scope gives nothing.
- `user/`: what the user may reach. A patient user (fhirUser is a Patient) reaches their own
  compartment; a RelatedPerson or Person user nothing, since whose records they may see is not
  modelled; anyone else is a clinician and reaches every patient, the rule the patient picker
  already applies. A token without a user gets nothing from user/ scopes.
- `system/`: everything of the type; the client's registration already limited the scopes.

Granular constraints (`?category=…`) become the grant's criteria, percent-decoded as a query
string would be. Grants depend only on the token's claims, so they are built once per
distinct (scopes, patient, fhirUser) and kept in process memory; no database query.
"""

from functools import lru_cache
from urllib.parse import unquote

from fhir_api.policy import AccessPolicy, Grant

from .scopes import parse_scopes

NO_REACH = object()
_UNMODELLED_USERS = ("RelatedPerson", "Person")


def get_access_policy(claims, *, has_user):
    """The AccessPolicy of a verified access token's claims; `has_user`: a person approved it."""
    scope = claims.get("scope", "")
    patient = claims.get("patient") or None
    fhir_user = claims.get("fhirUser") or None
    return AccessPolicy(
        grants=get_grants(scope, patient, fhir_user, has_user),
        scopes=tuple(scope.split()),
        patient=patient,
        fhir_user=fhir_user,
        client_id=claims.get("client_id"),
        context={key: claims[key] for key in ("encounter", "fhirContext") if key in claims},
    )


@lru_cache(maxsize=4096)
def get_grants(scope, patient, fhir_user, has_user):
    """The grants of a space-separated scope string in this launch context (a tuple)."""
    grants = []
    for parsed in parse_scopes(scope):
        if not parsed.is_clinical:
            continue
        reach = _reach(parsed.context, patient, fhir_user, has_user)
        if reach is NO_REACH:
            continue
        criteria = tuple((name, unquote(value)) for name, value in parsed.constraints)
        grants.append(
            Grant(
                parsed.resource_type,
                frozenset(parsed.permissions),
                patient=reach,
                criteria=criteria,
            )
        )
    return tuple(dict.fromkeys(grants))


def _reach(context, patient, fhir_user, has_user):
    """The patient id a scope's grant is limited to, None for every patient, or NO_REACH."""
    if context == "patient":
        return patient or NO_REACH
    if context == "user":
        if not has_user:
            return NO_REACH
        user_type, _, user_id = (fhir_user or "").rstrip("/").rpartition("/")
        user_type = user_type.rpartition("/")[2]
        if user_type == "Patient":
            return user_id or NO_REACH
        if user_type in _UNMODELLED_USERS:
            return NO_REACH
        return None
    return None  # system/
