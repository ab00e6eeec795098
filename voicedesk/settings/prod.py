"""Production: secrets from the environment only, secure cookies, HSTS, DEBUG off."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import SECRET_KEY, TWILIO_AUTH_TOKEN, VOICEDESK_SECRET_KEYS, env

# The development settings' stand-ins are public (they are in this
# repository): a production process that got one refuses to start.
DEVELOPMENT_SECRETS = {
    "dev-only-insecure-key-not-for-production",
    "test-only-insecure-key",
    "dev-twilio-auth-token",
    "gsaHmXIUWc_xRahg56HMCxTMbH_9Q733T6WHMhChmVw=",
    "yMoiCfMApwLbS2DRqak8rNro-OtLmbVG97roehOtYxk=",
}
if SECRET_KEY in DEVELOPMENT_SECRETS or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a long random value (at least 32 characters).")
if TWILIO_AUTH_TOKEN in DEVELOPMENT_SECRETS:
    raise ImproperlyConfigured("TWILIO_AUTH_TOKEN is the development token; set the account's real auth token.")
if DEVELOPMENT_SECRETS.intersection(VOICEDESK_SECRET_KEYS):
    raise ImproperlyConfigured("VOICEDESK_SECRET_KEYS holds a development key; generate new Fernet keys.")

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
