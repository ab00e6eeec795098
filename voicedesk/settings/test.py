"""Tests: real PostgreSQL and Redis, fast hashing, mail kept in memory."""

import os
import uuid

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-insecure-key")
os.environ.setdefault("LOG_FORMAT", "console")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Each test process gets its own Redis namespaces (broker queues, channel
# groups, cache keys): messages, rate limits and cached values never leak
# between runs or xdist workers. Servers started by a test inherit them.
# xdist workers inherit the controller's environment, and every worker has
# tenants of the same names, so the worker id is part of each namespace:
# otherwise one worker's sockets hear the other's events for "alpha".
_RUN = uuid.uuid4().hex[:12]
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
for _name, _base in (
    ("DRAMATIQ_NAMESPACE", "voicedesk-test"),
    ("CHANNELS_PREFIX", "vd-test-asgi"),
    ("CACHE_KEY_PREFIX", "vd-test"),
):
    _value = os.environ.get(_name) or f"{_base}-{_RUN}"
    if _WORKER and not _value.endswith(f"-{_WORKER}"):
        _value = f"{_value}-{_WORKER}"
    os.environ[_name] = _value

from .base import *  # noqa: E402
from .base import ALLOWED_HOSTS, BASE_DIR, env  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Servers that tests start as subprocesses write their mail to files the test reads.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "test-mail"))
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
# Per xdist worker: both workers have a tenant "alpha" with a call 1, whose
# recording would be the same file (one worker's new call emptied the other's).
# Not taken from the environment: xdist workers inherit the controller's.
# Servers a test starts get the worker's folder through it.
MEDIA_ROOT = BASE_DIR / "var" / "test-media" / (_WORKER or "main")
os.environ["MEDIA_ROOT"] = str(MEDIA_ROOT)
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="test-twilio-auth-token")
# Worker and consumer threads open their own connections; closing them after
# each unit of work lets the test database be dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Two test runs on one server (two checkouts, or a run beside the dev
# server's tests) need their own databases.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_voicedesk")}

# Encrypts stored provider keys. Public, like the secret key above, and kept out of
# the environment, so processes started from here do not inherit it.
VOICEDESK_SECRET_KEYS = env.list("VOICEDESK_SECRET_KEYS", default=["yMoiCfMApwLbS2DRqak8rNro-OtLmbVG97roehOtYxk="])
# Tests count what engines and emulators are asked: a sentence another test
# left in Redis would answer instead. Tests of the shared cache turn it on.
TTS_CACHE_REDIS = env.bool("TTS_CACHE_REDIS", default=False)
