"""POST /smart/launch: an EHR starts an EHR launch for a registered app (SMART App Launch 2.2).

The EHR authenticates as the client registry does (an admin JWT from POST /auth/token, or an
`X-API-Key`), but never with a browser session: this is a JSON API, without CSRF protection,
so a session cookie must not be enough to call it. The launch it makes belongs to the app and
to no person: whoever signs in when the app authorizes may use it, once.

    {"clientId": "...", "patient": "123", "encounter": "456",
     "fhirContext": [{"reference": "DiagnosticReport/7"}], "needPatientBanner": false}
    → 201 {"launch": "...", "launchUrl": "<launch URI>?iss=<FHIR base>&launch=...",
           "expiresIn": 300}
"""

from django.conf import settings
from oauth2_provider.models import get_application_model
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .api import ADMIN_AUTHENTICATION
from .launch import (
    InvalidLaunchContext,
    clean_launch_context,
    do_create_launch,
    get_launch_url,
)

SmartApp = get_application_model()


class LaunchRequestSerializer(serializers.Serializer):
    """The launch request: which app, and the context the EHR has open."""

    clientId = serializers.CharField(max_length=100)
    patient = serializers.CharField(max_length=64)
    encounter = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    fhirContext = serializers.JSONField(required=False, default=list)
    needPatientBanner = serializers.BooleanField(required=False, default=True)

    def to_internal_value(self, data):
        """Refuse members this API does not know: a misspelt one would otherwise be lost."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field: the fields are " + _FIELDS] for name in unknown}
                )
        return super().to_internal_value(data)

    def validate_clientId(self, value):
        app = SmartApp.objects.filter(client_id=value).first()
        if app is None or not app.is_active:
            raise serializers.ValidationError("No active app has this client id")
        if not app.launch_uri:
            raise serializers.ValidationError(
                "This app has no launch URI: register its launchUri before launching it"
            )
        self.application = app
        return value

    def validate(self, attrs):
        try:
            attrs["fhirContext"] = clean_launch_context(
                attrs["patient"], attrs["encounter"], attrs["fhirContext"]
            )
        except InvalidLaunchContext as error:
            raise serializers.ValidationError({error.field: [error.message]}) from None
        return attrs

    def save(self):
        """Create the launch; the response body."""
        data = self.validated_data
        handle = do_create_launch(
            None,
            self.application,
            patient=data["patient"],
            encounter=data["encounter"],
            fhir_context=data["fhirContext"],
            need_patient_banner=data["needPatientBanner"],
        )
        return {
            "launch": handle,
            "launchUrl": get_launch_url(self.application, handle),
            "expiresIn": settings.SMART["LAUNCH_LIFETIME"],
        }


_FIELDS = ", ".join(LaunchRequestSerializer._declared_fields)


class LaunchView(APIView):
    """POST /smart/launch (admin JWT or API key): a launch value and the URL to open."""

    authentication_classes = [
        auth for auth in ADMIN_AUTHENTICATION if not issubclass(auth, SessionAuthentication)
    ]
    permission_classes = [IsAdminUser]

    def post(self, request):
        serializer = LaunchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(
            serializer.save(),
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )
