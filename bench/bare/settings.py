"""Settings of the bare Django project: the framework's ceiling under our gunicorn settings.

No apps, no database, the two middlewares any production Django keeps; one JSON view.
"""

import os

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "bench-bare-ceiling-no-secrets-here")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.bare.app"
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES = {}
USE_TZ = True
