from django.conf import settings


def test_shared_and_tenant_apps_are_exactly_these() -> None:
    assert settings.TENANT_APPS == ["calls", "tickets"]
    assert settings.SHARED_APPS == [
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
    assert not set(settings.TENANT_APPS) & set(settings.SHARED_APPS)
