"""Settings shared by every environment. Configuration comes from the environment."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# daphne serves static files itself in development and in browser tests; in
# production a CDN or the reverse proxy serves the collected files.
SERVE_STATIC = env.bool("SERVE_STATIC", default=DEBUG)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1"])
# Addresses (or networks, e.g. 10.0.0.0/8) of the reverse proxies in front of
# the app. X-Forwarded-For/-Proto/-Host are believed only from these; from
# anyone else they are dropped, so a client cannot choose its own address.
TRUSTED_PROXIES: list[str] = env.list("VOICEDESK_TRUSTED_PROXIES", default=[])
# Who may read /metrics and the details of /readyz: these networks, or a
# request with "Authorization: Bearer $METRICS_TOKEN".
INTERNAL_NETWORKS: list[str] = env.list("VOICEDESK_INTERNAL_NETWORKS", default=["127.0.0.0/8", "::1/128"])
METRICS_TOKEN: str = env("METRICS_TOKEN", default="")
# The host that serves the public site (sign-up, login, owner admin). Tenants
# live on subdomains of it.
VOICEDESK_BASE_DOMAIN = env("VOICEDESK_BASE_DOMAIN", default="localhost")
VOICEDESK_PUBLIC_URL = env("VOICEDESK_PUBLIC_URL", default="http://localhost:8000")

SHARED_APPS = [
    "django_tenants",
    "daphne",
    "tenants",
    "billing",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "voicedesk.apps.OwnerAdminConfig",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_dramatiq",
    "dramatiq_crontab",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
]
TENANT_APPS = [
    "calls",
    "tickets",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
# The composition layer above the product apps: its commands (seed_demo, simulate_call) span them.
INSTALLED_APPS += ["voicedesk.apps.VoicedeskConfig"]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New tenants clone this migrated, empty schema instead of replaying every
# migration: provisioning stays well under a second.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True
PUBLIC_SCHEMA_URLCONF = "voicedesk.urls_public"
ROOT_URLCONF = "voicedesk.urls_tenant"
# Unknown hosts fail closed with the friendly 404 page.
DEFAULT_NOT_FOUND_TENANT_VIEW = "voicedesk.views.page_not_found"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

AUTH_USER_MODEL = "tenants.User"

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "voicedesk.web.middleware.TrustedProxyMiddleware",
    "voicedesk.web.middleware.RequestIdMiddleware",
    "voicedesk.web.middleware.HealthCheckMiddleware",
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "voicedesk.web.middleware.TenantAccessMiddleware",
    "voicedesk.web.middleware.LogContextMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

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
                "tenants.context_processors.tenant",
                "billing.context_processors.billing_notice",
            ],
        },
    },
]

WSGI_APPLICATION = "voicedesk.wsgi.application"
ASGI_APPLICATION = "voicedesk.asgi.application"
# What this process serves (see voicedesk.asgi): "web" (pages, API, live updates),
# "voice" (carrier webhooks and media streams, speech models loaded) or "all".
VOICEDESK_ROLE = env("VOICEDESK_ROLE", default="all")

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/voicedesk")}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Keys carry the schema, so one tenant never reads another's entries
        # (sign-in rate limits excepted: they count across every host).
        "KEY_FUNCTION": "voicedesk.core.cache.make_key",
        "REVERSE_KEY_FUNCTION": "voicedesk.core.cache.reverse_key",
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="vd"),
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # channels-redis blocks 5 s in BZPOPMIN; the socket must wait longer
            # than that, or an idle consumer dies with a read timeout.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": env("CHANNELS_PREFIX", default="vd-asgi"),
        },
    }
}

DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker",
    "OPTIONS": {"url": REDIS_URL, "namespace": env("DRAMATIQ_NAMESPACE", default="voicedesk")},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "dramatiq.middleware.CurrentMessage",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "voicedesk.core.dramatiq_tenancy.TenantMiddleware",
        "django_dramatiq.middleware.AdminMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
DRAMATIQ_TASKS_DATABASE = "default"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_SIGNUP_FORM_CLASS = "tenants.forms.BusinessSignupForm"
ACCOUNT_ADAPTER = "tenants.adapters.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="VoiceDesk <no-reply@voicedesk.localhost>")

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))

# The REST API on tenant hosts (voicedesk/urls_api.py; its parts in voicedesk/core/api and
# voicedesk/web/api). API keys come first so an anonymous request gets 401 with
# a Bearer challenge; signed-in members use their session (with CSRF).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "voicedesk.web.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["voicedesk.web.api.permissions.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "voicedesk.core.api.pagination.ApiPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["voicedesk.web.api.throttling.ApiRateThrottle"],
    # Per API key, else per user, per tenant; exports are heavier, so they have their own budget.
    "DEFAULT_THROTTLE_RATES": {
        "api": env("API_RATE", default="600/minute"),
        "export": env("API_EXPORT_RATE", default="30/hour"),
    },
    "EXCEPTION_HANDLER": "voicedesk.core.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VoiceDesk API",
    "DESCRIPTION": (
        "Tickets, callbacks, calls, the FAQ and the agent's configuration of one business. "
        "Call it on the business's own host with `Authorization: Bearer <API key>` "
        '(Settings → API keys), or signed in. Errors use one format: `{"detail": ...}`, '
        "or field → messages for invalid input."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["voicedesk.web.api.permissions.IsTenantMember"],
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "CallStatusEnum": "calls.models.Call.Status",
    },
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Twilio Media Streams: the auth token signs webhooks. Its absence disables the
# carrier entry point rather than accepting unsigned calls.
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
# The websocket URL the carrier connects to; derived from the request when empty.
TWILIO_STREAM_URL = env("TWILIO_STREAM_URL", default="")
# Calls one voice process runs at once (carrier streams and test calls); a
# stream beyond is refused unanswered. The carrier then offers it to the next
# of TWILIO_STREAM_RETRY_URLS (other voice processes' own addresses, or the
# proxy's stream URL again to let it pick another process), one per refusal;
# when none is left the caller hears the lines are busy and the call leaves a
# ticket with a callback.
VOICE_PROCESS_CAPACITY = env.int("VOICE_PROCESS_CAPACITY", default=12)
TWILIO_STREAM_RETRY_URLS = env.list("TWILIO_STREAM_RETRY_URLS", default=[])

# Faults. A running call writes a heartbeat (with the recording and what was
# captured so far) every CALL_HEARTBEAT_S; the sweeper finishes a call in
# progress whose heartbeat is CALL_STALE_AFTER_S old (its voice process died)
# and a call still ringing after CALL_RINGING_MAX_S (its stream never came).
# It runs every CALL_SWEEP_INTERVAL_S from the scheduler. The ticket sweep
# makes the ticket of a call finished TICKET_SWEEP_GRACE_S ago without one
# (the queue was down when it ended).
CALL_HEARTBEAT_S = env.float("CALL_HEARTBEAT_S", default=5.0)
CALL_STALE_AFTER_S = env.float("CALL_STALE_AFTER_S", default=30.0)
CALL_RINGING_MAX_S = env.float("CALL_RINGING_MAX_S", default=600.0)
CALL_SWEEP_INTERVAL_S = env.int("CALL_SWEEP_INTERVAL_S", default=15)
TICKET_SWEEP_INTERVAL_S = env.int("TICKET_SWEEP_INTERVAL_S", default=60)
TICKET_SWEEP_GRACE_S = env.float("TICKET_SWEEP_GRACE_S", default=60.0)

# LiveKit: phone numbers get SIP dispatch rules there, its webhooks open and
# close calls, and `run_livekit_agent` workers answer in its rooms. No URL:
# LiveKit is off (numbers get no rule, the webhook refuses everything).
LIVEKIT_URL = env("LIVEKIT_URL", default="")
LIVEKIT_API_KEY = env("LIVEKIT_API_KEY", default="")
LIVEKIT_API_SECRET = env("LIVEKIT_API_SECRET", default="")
# The agent name dispatch rules ask for and workers register under.
LIVEKIT_AGENT_NAME = env("LIVEKIT_AGENT_NAME", default="voicedesk-receptionist")
# Calls one agent worker process takes at once; it refuses jobs beyond.
LIVEKIT_AGENT_CAPACITY = env.int("LIVEKIT_AGENT_CAPACITY", default=4)
# Webhooks older than this (by their created_at) are refused as stale; replays within it by event id.
LIVEKIT_WEBHOOK_MAX_AGE_S = 300
# A call LiveKit says has ended but no agent finished is finished this long after.
LIVEKIT_FINISH_GRACE_S = 30

# The environment variables a business may pick on its settings page as the
# key of an OpenAI receptionist (names only; the keys stay in the environment).
DIALOGUE_KEY_REFS = env.list("DIALOGUE_KEY_REFS", default=["OPENAI_API_KEY"])
# How long "List models" waits for a model server.
DIALOGUE_MODELS_TIMEOUT_S = env.float("DIALOGUE_MODELS_TIMEOUT_S", default=3.0)

# Fernet keys that encrypt what businesses store (their speech providers' API
# keys), newest first: the first encrypts, all decrypt (``voicedesk.core.secrets``).
VOICEDESK_SECRET_KEYS = env.list("VOICEDESK_SECRET_KEYS", default=[])
# Where each cloud speech provider's API is; empty: the provider's own. A
# business's engine options may name another (``base_url``).
SPEECH_PROVIDER_BASE_URLS = {
    "elevenlabs": env("ELEVENLABS_BASE_URL", default=""),
    "cartesia": env("CARTESIA_BASE_URL", default=""),
    "assemblyai": env("ASSEMBLYAI_BASE_URL", default=""),
}
# How long "Test this key" and a voice listing wait for a provider.
SPEECH_PROVIDER_CHECK_TIMEOUT_S = env.float("SPEECH_PROVIDER_CHECK_TIMEOUT_S", default=3.0)
# The shared second level of the TTS cache (``calls.pipeline.tts_cache``): on or
# off, how long an entry lives, and the largest entry kept (about a minute of 16 kHz audio).
TTS_CACHE_REDIS = env.bool("TTS_CACHE_REDIS", default=True)
TTS_CACHE_REDIS_TTL_S = env.int("TTS_CACHE_REDIS_TTL_S", default=7 * 24 * 3600)
TTS_CACHE_REDIS_MAX_BYTES = env.int("TTS_CACHE_REDIS_MAX_BYTES", default=2_000_000)

# Stripe bills the businesses. ``STRIPE_API_BASE`` points the SDK at another
# server with Stripe's API (the loopback emulator in development and tests);
# empty means Stripe itself. No secret key: billing is off.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_METER_EVENT_NAME = env("STRIPE_METER_EVENT_NAME", default="voicedesk_call_minutes")
STRIPE_WEBHOOK_TOLERANCE_S = 300
# A past-due subscription keeps its calls answered (with a banner) for this
# many days after the payment failed; then callers hear the short message.
BILLING_PAST_DUE_GRACE_DAYS = env.int("BILLING_PAST_DUE_GRACE_DAYS", default=14)
# What the platform pays per unit of each engine, in US cents: per minute of
# speech for ``stt:<name>`` and ``tts:<name>``, per minute of audio streamed
# for ``stt_stream:<name>``, per 1,000 tokens for ``llm:<name>`` and per 1,000
# characters for ``tts_chars:<name>``. The offline engines cost only compute,
# 0 unless configured (``BILLING_OFFLINE_COMPUTE_CENTS_PER_MINUTE``); an engine
# missing here costs 0. The cloud engines carry list prices as last published
# by the vendors (verify them; a volume contract overrides them through the environment).
_OFFLINE_CENTS = env("BILLING_OFFLINE_COMPUTE_CENTS_PER_MINUTE", default="0")
BILLING_PROVIDER_UNIT_COSTS: dict[str, str] = {
    "stt:whisper": _OFFLINE_CENTS,
    "tts:offline": _OFFLINE_CENTS,
    "tts:piper": _OFFLINE_CENTS,
    "tts:espeak": _OFFLINE_CENTS,
    # AssemblyAI Universal Streaming: US$0.15 an hour of session, key terms included.
    "stt_stream:assemblyai": env("BILLING_ASSEMBLYAI_CENTS_PER_STREAM_MINUTE", default="0.25"),
    # ElevenLabs Flash v2.5 over the API: US$0.05 per 1,000 characters.
    "tts_chars:elevenlabs": env("BILLING_ELEVENLABS_CENTS_PER_1000_CHARS", default="5"),
    # Cartesia Sonic: one credit a character, about US$0.03 per 1,000 credits on a paid plan.
    "tts_chars:cartesia": env("BILLING_CARTESIA_CENTS_PER_1000_CHARS", default="3"),
}

# Offline defaults for every provider role; a tenant's agent configuration can
# pick another provider by name.
VOICEDESK_STT = env("VOICEDESK_STT", default="whisper")
VOICEDESK_TTS = env("VOICEDESK_TTS", default="offline")

SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    from voicedesk.core.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

LOG_FORMAT = env("LOG_FORMAT", default="json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")

from voicedesk.core.logging import build_logging_config  # noqa: E402

LOGGING = build_logging_config(LOG_FORMAT, LOG_LEVEL)
