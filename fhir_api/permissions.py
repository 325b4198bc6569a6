"""Who may use the FHIR API at all; what they may do is the AccessPolicy's business."""

from rest_framework.permissions import BasePermission

from .policy import AccessPolicy


class HasFhirAccess(BasePermission):
    """A staff user's session, or a credential the authorization layer turned into a policy."""

    def has_permission(self, request, view):
        if isinstance(request.auth, AccessPolicy):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)
