import importlib
import sys

import pytest


def test_production_settings_are_secure(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("DJANGO_DEBUG", "true")  # production ignores it
    for name in ("voicedesk.settings.prod", "voicedesk.settings.base"):
        sys.modules.pop(name, None)
    prod = importlib.import_module("voicedesk.settings.prod")
    sys.modules.pop("voicedesk.settings.base", None)
    assert prod.DEBUG is False
    assert prod.SECRET_KEY == "from-the-environment"
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
