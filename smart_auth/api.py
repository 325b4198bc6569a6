"""The client registry API: /smart/apps (as the API contract shows) and POST /auth/token.

Both sit behind admin credentials only: an admin JWT from /auth/token, an `X-API-Key`, or a
staff session (for DRF's browsable API). A SMART access token is refused here.
"""

from django.contrib.auth import authenticate
from oauth2_provider.models import get_application_model
from rest_framework import status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from .authentication import AdminJWTAuthentication, ApiKeyAuthentication
from .serializers import AdminLoginSerializer, SmartAppSerializer
from .tokens import default_token_signer

SmartApp = get_application_model()

ADMIN_AUTHENTICATION = [AdminJWTAuthentication, ApiKeyAuthentication, SessionAuthentication]


class SmartAppViewSet(viewsets.ModelViewSet):
    """Registered SMART apps. DELETE removes the app and with it every token it holds."""

    queryset = SmartApp.objects.order_by("pk")
    serializer_class = SmartAppSerializer
    authentication_classes = ADMIN_AUTHENTICATION
    permission_classes = [IsAdminUser]
    http_method_names = ["get", "post", "put", "delete", "head", "options"]


class AdminTokenView(APIView):
    """POST {"username", "password"} of a staff user → an admin JWT for the client registry."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "admin_login"

    def post(self, request):
        serializer = AdminLoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request, **serializer.validated_data)
        if user is None or not user.is_staff:
            return Response(
                {"error": "invalid_grant", "error_description": "Invalid staff credentials"},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={
                    "WWW-Authenticate": 'Bearer realm="smart-apps"',
                    "Cache-Control": "no-store",
                },
            )
        token, expires_in = default_token_signer.make_admin_token(user)
        return Response(
            {"access_token": token, "token_type": "Bearer", "expires_in": expires_in},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
