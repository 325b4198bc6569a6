"""Who may use the FHIR API at all; what they may do is the AccessPolicy's business."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from .policy import FULL_ACCESS, AccessPolicy


class HasFhirAccess(BasePermission):
    """A staff user's session, or a credential the authorization layer turned into a policy."""

    def has_permission(self, request, view):
        if isinstance(request.auth, AccessPolicy):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def get_policy(request):
    """The policy to enforce: the credential's, or full access for a staff session.

    A credential's policy wins even when its user is staff: a token never gives more than
    its grants.
    """
    if isinstance(request.auth, AccessPolicy):
        return request.auth
    user = request.user
    if user and user.is_authenticated and user.is_staff:
        return FULL_ACCESS
    raise NotAuthenticated()
