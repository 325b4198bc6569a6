"""The bare Django project's one view, its URLs and its WSGI application.

DJANGO_SETTINGS_MODULE=bench.bare.settings gunicorn bench.bare.app:application
"""

from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path


def hello(request):
    return JsonResponse({"resourceType": "Basic", "id": "bare", "code": {"text": "ceiling"}})


urlpatterns = [path("", hello)]
application = get_wsgi_application()
