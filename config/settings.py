"""Settings, all read from the environment (django-environ) with development defaults.

Every setting a deployment changes is an environment variable documented in the README.
Development defaults are safe only because DEBUG is on; with DEBUG off the settings that
must be chosen by the operator (SECRET_KEY, ALLOWED_HOSTS, PUBLIC_BASE_URL) have no default.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
    PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
else:
    # No defaults: a production deployment must choose these (ImproperlyConfigured if unset).
    SECRET_KEY = env("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    PUBLIC_BASE_URL = env("PUBLIC_BASE_URL")

PUBLIC_BASE_URL = PUBLIC_BASE_URL.rstrip("/")
FHIR_BASE_URL = PUBLIC_BASE_URL + "/fhir"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "corsheaders",
    "csp",
    "axes",
    "fhir_api",
    "smart_auth",
    "consent",
]

MIDDLEWARE = [
    # The client's address, read through TRUSTED_PROXIES, in REMOTE_ADDR for all below.
    "config.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # CORS on the app-facing endpoints only (CORS_URLS_REGEX); it answers preflights itself.
    "corsheaders.middleware.CorsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Stores the AuditEvents a request records in one write once its response is produced.
    "fhir_api.audit_log.AuditMiddleware",
    # Per-client and per-address budgets of POST /smart/token (429 with Retry-After).
    "smart_auth.token_limits.TokenRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sign-in lockouts (django-axes) as 429 answers; last, as axes requires.
    "axes.middleware.AxesMiddleware",
    "smart_auth.lockout.JsonLoginLockoutMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite file by default; DATABASE_URL=postgres://... for PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers proceed while one writer commits; IMMEDIATE transactions take the write
    # lock up front, so two writers queue instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Before each request's first statement: a connection the database dropped (a restart, a
    # failover) is replaced instead of failing that request. config.postgresql makes the check
    # free while the connection's socket is quiet (a `SELECT 1` otherwise).
    DATABASES["default"].setdefault(
        "CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=True)
    )
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "config.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
# Shared by every worker and host: the database cache by default, Redis when CACHE_URL is set.
# Never the per-process memory cache: replay records and rate limits must be seen by all workers.
if "CACHE_URL" in env:
    CACHES = {"default": env.cache("CACHE_URL")}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
            # Django's default of 300 entries would evict live rate-limit counters under load.
            "OPTIONS": {"MAX_ENTRIES": env.int("DB_CACHE_MAX_ENTRIES", default=100_000)},
        }
    }
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache":
    raise environ.ImproperlyConfigured(
        "CACHE_URL must name a shared cache (redis:// or dbcache://), not the per-process locmem"
    )

# --- Auth, sessions, security ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    # The first entry hashes user passwords: PBKDF2, deliberately slow.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    # Client secrets only (OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"]): they are 128 random
    # characters, so a fast salted SHA-256 is as safe as PBKDF2 and keeps a confidential
    # token request near a millisecond instead of ~250 ms of CPU. Never first in this list.
    "smart_auth.hashers.ClientSecretHasher",
]
# The pages for people are the `consent` app's (sign in, consent, Connected apps).
LOGIN_URL = "consent:login"
LOGIN_REDIRECT_URL = "consent:connected-apps"
LOGOUT_REDIRECT_URL = "consent:login"
# A stale or cookieless form gets a page that says what to do next (403).
CSRF_FAILURE_VIEW = "consent.views.csrf_failure"

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_HTTPS = PUBLIC_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = USE_HTTPS
CSRF_COOKIE_SECURE = USE_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=USE_HTTPS and not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if USE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = USE_HTTPS
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    # Preloading commits the whole domain to HTTPS in browsers for good; it is the operator's
    # decision (SECURE_HSTS_PRELOAD=true), so its absence is not reported as a problem.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin: no URL of these pages (an authorization request, a consent page's id) ever
# reaches an app or another site, while same-origin form posts keep their Referer and Origin,
# which Django's CSRF check needs over HTTPS (no-referrer would send "Origin: null").
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No script reads the CSRF cookie: forms (and DRF's browsable API) carry the token in the page.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks, e.g.
# "10.0.0.0/8"): the client address used by lockouts, rate limits and the audit trail
# (config/proxies.py). Empty: REMOTE_ADDR is the client and the header is ignored.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise environ.ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network"
        ) from None

# Content-Security-Policy (django-csp): no inline script or style anywhere, nothing from
# other origins, never framed. The pages' only script is Django admin's and DRF's browsable
# API's, all from our static files. form-action is left out on purpose: the consent form's
# answer is a redirect to the app, and browsers apply form-action to that redirect too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

# CORS (django-cors-headers) for what browser apps call: the FHIR API, the token, revocation
# and introspection endpoints, discovery, the JWKS and the style document. Any origin, never
# with credentials: these take bearer tokens or client credentials, not cookies, so another
# origin gains nothing it could not get from a server. Never the pages for people or the
# admin APIs (/smart/login, /smart/authorize..., /smart/manage, /smart/ehr/, /smart/launch,
# /smart/apps, /auth/token, /admin/): they are not matched, so they get no CORS headers.
CORS_URLS_REGEX = r"^/(fhir(/.*)?|smart/(token|revoke|introspect|style\.json)|\.well-known/[^/]+)$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "prefer",
    "if-match",
    "if-none-match",
    "if-none-exist",
    "if-modified-since",
    "x-requested-with",
]
CORS_EXPOSE_HEADERS = [
    "Location",
    "Content-Location",
    "ETag",
    "Last-Modified",
    "Retry-After",
    "WWW-Authenticate",
]

# Sign-in lockout (django-axes, smart_auth/lockout.py): LOGIN_FAILURE_LIMIT failed sign-ins
# lock the account, LOGIN_ADDRESS_FAILURE_LIMIT lock the address, for LOGIN_LOCKOUT_MINUTES
# after the last one. Failures are kept in the database, shared by every host.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_HANDLER = "smart_auth.lockout.LoginLockoutHandler"
AXES_LOCKOUT_CALLABLE = "smart_auth.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.proxies.client_address"
# Attempts while locked are refused uncounted, so the lock lifts when the page says it will.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False

# --- Internationalisation, static files -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- SMART authorization server (django-oauth-toolkit) --------------------------------------
# The issuer of every token and of the OpenID configuration; the FHIR base is the audience.
SMART_ISSUER = env("SMART_ISSUER", default=PUBLIC_BASE_URL).rstrip("/")
SMART = {
    # Lifetimes in seconds. Access tokens are short because the FHIR API trusts their claims.
    "ACCESS_TOKEN_LIFETIME": env.int("SMART_ACCESS_TOKEN_SECONDS", default=900),
    # Backend services (client_credentials) tokens: no refresh, so short (SMART advises 300).
    "BACKEND_TOKEN_LIFETIME": env.int("SMART_BACKEND_TOKEN_SECONDS", default=300),
    # Apps' JWKS URLs (private_key_jwt): fetched with this timeout (seconds, whole exchange)
    # and size cap (bytes), cached for the response's Cache-Control max-age but no longer
    # than JWKS_CACHE_SECONDS, refetched for an unknown kid at most once per
    # JWKS_REFETCH_SECONDS. Loopback and private addresses only when allowed (tests, dev).
    "JWKS_FETCH_TIMEOUT": env.float("SMART_JWKS_FETCH_TIMEOUT", default=5.0),
    "JWKS_MAX_BYTES": env.int("SMART_JWKS_MAX_BYTES", default=64 * 1024),
    "JWKS_CACHE_SECONDS": env.int("SMART_JWKS_CACHE_SECONDS", default=3600),
    "JWKS_REFETCH_SECONDS": env.int("SMART_JWKS_REFETCH_SECONDS", default=60),
    "JWKS_ALLOW_PRIVATE_ADDRESSES": env.bool("SMART_JWKS_ALLOW_PRIVATE_ADDRESSES", default=False),
    # An offline_access refresh token dies after this long unused (rotation renews it).
    "OFFLINE_REFRESH_LIFETIME": env.int("SMART_OFFLINE_REFRESH_SECONDS", default=90 * 24 * 3600),
    "ID_TOKEN_LIFETIME": env.int("SMART_ID_TOKEN_SECONDS", default=3600),
    "ADMIN_TOKEN_LIFETIME": env.int("SMART_ADMIN_TOKEN_SECONDS", default=900),
    # Rate limits (smart_auth/ratelimit.py), as "requests/unit" (s, min, hour, day), counted
    # in the shared cache. Per app: token requests that succeed (an app's token_rate_limit
    # overrides it); per client address: token requests that fail or name no client; per app:
    # FHIR API requests (an app's api_rate_limit overrides it). Over a limit: 429, Retry-After.
    "TOKEN_RATE_LIMIT": env("SMART_TOKEN_RATE_LIMIT", default="1200/min"),
    "TOKEN_ADDRESS_RATE_LIMIT": env("SMART_TOKEN_ADDRESS_RATE_LIMIT", default="300/min"),
    "API_RATE_LIMIT": env("SMART_API_RATE_LIMIT", default="6000/min"),
    # An EHR launch handle must be used this soon after the EHR creates it.
    "LAUNCH_LIFETIME": env.int("SMART_LAUNCH_SECONDS", default=300),
    # An authorization request waiting for login and consent expires after this long.
    "PENDING_REQUEST_LIFETIME": env.int("SMART_PENDING_REQUEST_SECONDS", default=900),
    # The RS256 signing key (PEM text, or a file holding it). Required in production; in
    # development a key is generated on first use and stored in the database for all workers.
    "SIGNING_KEY_PEM": env("SMART_SIGNING_KEY_PEM", default="")
    or (
        Path(env("SMART_SIGNING_KEY_FILE")).read_text()
        if env("SMART_SIGNING_KEY_FILE", default="")
        else ""
    ),
    "GENERATE_SIGNING_KEY": env.bool("SMART_GENERATE_SIGNING_KEY", default=DEBUG),
    # The person-facing pages are the `consent` app's; smart_auth reaches them only by URL
    # name and template name, never by import. /smart/authorize redirects to the consent page
    # (reversed with the pending request's id); discovery's management_endpoint is Connected
    # apps; an unknown app or untrusted redirect URI gets the error page, never a redirect.
    "CONSENT_URL_NAME": "consent:consent",
    "MANAGEMENT_URL_NAME": "consent:connected-apps",
    "ERROR_TEMPLATE": "consent/error.html",
    # Audience of the admin JWTs from POST /auth/token; never the FHIR base.
    "ADMIN_AUDIENCE": SMART_ISSUER + "/smart/apps",
    # Served at /smart/style.json as the token response's smart_style_url.
    "STYLE": {
        "color_background": "#f5f7fa",
        "color_error": "#b00020",
        "color_highlight": "#1565c0",
        "color_modal_backdrop": "",
        "color_success": "#2e7d32",
        "color_text": "#1f2933",
        "dim_border_radius": "4px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, sans-serif",
        "font_family_heading": "system-ui, sans-serif",
    },
}

# Apps are DOT's swapped Application model; the token models stay DOT's own, named here so
# migrations of the side tables that point at them can refer to the settings.
OAUTH2_PROVIDER_APPLICATION_MODEL = "smart_auth.SmartApp"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 (a model)
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "smart_auth.validator.SmartValidator",
    # Per-grant access token lifetimes (backend services get short ones).
    "OAUTH2_SERVER_CLASS": "smart_auth.server.SmartServer",
    "SCOPES_BACKEND_CLASS": "smart_auth.scopes.SmartScopes",
    # DOT insists on a static SCOPES dict; the backend above accepts every SMART scope.
    "SCOPES": {"openid": "Sign you in", "fhirUser": "Know who you are"},
    "DEFAULT_SCOPES": [],
    "APPLICATION_ADMIN_CLASS": "smart_auth.admin.SmartAppAdmin",
    "ACCESS_TOKEN_GENERATOR": "smart_auth.tokens.generate_access_token",
    # Without this oauthlib would make refresh tokens JWTs too.
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": SMART["ACCESS_TOKEN_LIFETIME"],
    "ID_TOKEN_EXPIRE_SECONDS": SMART["ID_TOKEN_LIFETIME"],
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "REFRESH_TOKEN_EXPIRE_SECONDS": SMART["OFFLINE_REFRESH_LIFETIME"],
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "CLIENT_SECRET_HASHER": "smart_client_sha256",
    "PKCE_REQUIRED": True,
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": SMART_ISSUER,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # http redirect URIs (and so loopback callbacks) only while developing.
    "ALLOWED_REDIRECT_URI_SCHEMES": env.list(
        "SMART_REDIRECT_URI_SCHEMES", default=["https", "http"] if DEBUG else ["https"]
    ),
    "REQUEST_APPROVAL_PROMPT": "force",
    # RFC 9700 (OAuth 2.0 Security BCP): adopt every compliant behaviour now.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# --- Django REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # SMART access tokens first, so a 401 carries a Bearer challenge.
        "smart_auth.authentication.SmartBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Per-app budget of the FHIR API (smart_auth/throttling.py); the admin login's by address.
    "DEFAULT_THROTTLE_CLASSES": ["smart_auth.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"admin_login": env("SMART_ADMIN_LOGIN_RATE", default="30/min")},
    # Throttles key on REMOTE_ADDR, which config.proxies has already resolved; DRF's default
    # (None) would trust any X-Forwarded-For a client sends.
    "NUM_PROXIES": 0,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "UNAUTHENTICATED_USER": None,
}

# --- FHIR API -------------------------------------------------------------------------------
FHIR = {
    "BASE_URL": FHIR_BASE_URL,
    "DEFAULT_PAGE_SIZE": env.int("FHIR_DEFAULT_PAGE_SIZE", default=20),
    "MAX_PAGE_SIZE": env.int("FHIR_MAX_PAGE_SIZE", default=500),
    # Entries accepted in one batch or transaction Bundle.
    "MAX_BUNDLE_ENTRIES": env.int("FHIR_MAX_BUNDLE_ENTRIES", default=10000),
    # PostgreSQL: commit each request's AuditEvents without waiting for the disk (every read
    # writes one). A crash of the database server itself may lose the last fraction of a
    # second of audit events, never corrupt them; tokens, codes and resources always wait.
    "AUDIT_SYNCHRONOUS_COMMIT": env.bool("AUDIT_SYNCHRONOUS_COMMIT", default=False),
    # Requests queue their AuditEvents; a process that queued some moves the queue into the
    # store (where AuditEvent searches find them) after a response, at most this often.
    # Reading AuditEvents through the FHIR API always drains first. "off": only then, or by
    # `manage.py drain_audit_events --every 1` run as a process of its own (no request waits).
    "AUDIT_DRAIN_SECONDS": (
        None
        if env("AUDIT_DRAIN_SECONDS", default="1").lower() == "off"
        else env.float("AUDIT_DRAIN_SECONDS", default=1.0)
    ),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=50 * 1024 * 1024)

# --- Demo data ------------------------------------------------------------------------------
DEMO_PASSWORD = env("DEMO_PASSWORD", default="smart-demo-2026")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
