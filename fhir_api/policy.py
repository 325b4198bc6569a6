"""The access policy the FHIR API enforces, found on `request.auth`.

The FHIR API knows nothing of OAuth: an authentication class of the authorization layer turns
a credential into an `AccessPolicy`, and the API only asks the policy what is allowed. A
policy is a union of `Grant`s, each in FHIR terms: a resource type (or "*"), the interactions
it allows, and which resources of that type it reaches (one patient's compartment, and search
criteria they must match). `access.py` turns a policy into SQL filters and write checks.

Interactions are the SMART v2 letters: c (create), r (read, vread, instance history),
u (update), d (delete), s (search, type and system history).
"""

from dataclasses import dataclass, field

CREATE, READ, UPDATE, DELETE, SEARCH = "c", "r", "u", "d", "s"
INTERACTIONS = frozenset("cruds")


@dataclass(frozen=True)
class Grant:
    """Interactions on one resource type, limited to the resources they reach.

    `patient`: only resources in Patient/{patient}'s compartment (None: every patient's).
    Shared reference types (compartments.SHARED_REFERENCE_TYPES: Practitioner, Organization,
    Medication, definitions...) are read and searched under a patient grant, never written;
    other types outside the compartment (Binary, Task...) are out of a patient grant's reach.
    `criteria`: search criteria, as (name, value) pairs in FHIR search syntax, that every
    resource reached must match (all of them; a comma in a value means "or").
    """

    resource_type: str  # a type, or "*" for every type
    interactions: frozenset = INTERACTIONS
    patient: str | None = None
    criteria: tuple = ()

    def covers(self, resource_type, interaction):
        return interaction in self.interactions and self.resource_type in ("*", resource_type)


@dataclass(frozen=True)
class AccessPolicy:
    """What one request may do: the grants of its credential, plus who and what it is for.

    `full_access` is for staff sessions and administration: every interaction on everything.
    Otherwise only what a grant allows is allowed; no grants means nothing is. The other
    fields describe the credential (for audit and for views that need the context); they
    grant nothing.
    """

    grants: tuple[Grant, ...] = ()
    full_access: bool = False
    scopes: tuple[str, ...] = ()
    patient: str | None = None
    fhir_user: str | None = None
    client_id: str | None = None
    context: dict = field(default_factory=dict)

    def grants_for(self, resource_type, interaction):
        """The grants allowing `interaction` on `resource_type` (or on "*")."""
        return [grant for grant in self.grants if grant.covers(resource_type, interaction)]


FULL_ACCESS = AccessPolicy(full_access=True)
