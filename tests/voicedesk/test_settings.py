import importlib
import os
import subprocess
import sys

import pytest
from django.conf import settings


def test_production_settings_are_secure(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", "from-the-environment-" + "s" * 32)
    monkeypatch.setenv("DJANGO_DEBUG", "true")  # production ignores it
    for name in ("voicedesk.settings.prod", "voicedesk.settings.base"):
        sys.modules.pop(name, None)
    prod = importlib.import_module("voicedesk.settings.prod")
    sys.modules.pop("voicedesk.settings.base", None)
    assert prod.DEBUG is False
    assert prod.SECRET_KEY == "from-the-environment-" + "s" * 32
    assert (prod.SESSION_COOKIE_SECURE, prod.CSRF_COOKIE_SECURE, prod.SECURE_SSL_REDIRECT) == (True, True, True)
    assert prod.SECURE_HSTS_SECONDS == 31536000
    assert prod.SECURE_HSTS_INCLUDE_SUBDOMAINS is True


def test_secret_key_only_comes_from_the_environment(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    sys.modules.pop("voicedesk.settings.base", None)
    try:
        with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
            importlib.import_module("voicedesk.settings.base")
    finally:
        sys.modules.pop("voicedesk.settings.base", None)


def _manage_check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "CRITICAL"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_entry_points_default_to_production_settings() -> None:
    for path in ("manage.py", "voicedesk/asgi.py", "voicedesk/wsgi.py"):
        source = (settings.BASE_DIR / path).read_text()
        assert 'setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.prod")' in source, path


def test_an_unconfigured_process_refuses_to_start() -> None:
    result = _manage_check({})
    assert result.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_SECRET_KEY": "dev-only-insecure-key-not-for-production"}, "Set DJANGO_SECRET_KEY to a long random"),
        ({"DJANGO_SECRET_KEY": "short"}, "Set DJANGO_SECRET_KEY to a long random"),
        (
            {"DJANGO_SECRET_KEY": "x" * 50, "TWILIO_AUTH_TOKEN": "dev-twilio-auth-token"},
            "TWILIO_AUTH_TOKEN is the development token",
        ),
        (
            {"DJANGO_SECRET_KEY": "x" * 50, "VOICEDESK_SECRET_KEYS": "yMoiCfMApwLbS2DRqak8rNro-OtLmbVG97roehOtYxk="},
            "VOICEDESK_SECRET_KEYS holds a development key",
        ),
    ],
)
def test_production_refuses_the_development_secrets(overrides: dict[str, str], message: str) -> None:
    result = _manage_check(overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_real_secrets() -> None:
    result = _manage_check({"DJANGO_SECRET_KEY": "k" * 50, "TWILIO_AUTH_TOKEN": "a-real-looking-token"})
    assert result.returncode == 0, result.stderr
