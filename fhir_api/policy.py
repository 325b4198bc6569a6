"""The access policy the FHIR API enforces, found on `request.auth`.

The FHIR API knows nothing of OAuth: an authentication class of the authorization layer turns
a credential into an `AccessPolicy`, and the API only asks the policy what is allowed.
Fine-grained enforcement (types x interactions x compartment x search constraints) builds on
this type.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AccessPolicy:
    """What one request may do: granted SMART scopes and the launch context they apply to."""

    scopes: tuple[str, ...] = ()
    patient: str | None = None
    fhir_user: str | None = None
    client_id: str | None = None
    context: dict = field(default_factory=dict)
