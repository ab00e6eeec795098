"""Cache keys: per tenant schema, except the counters that must span every host."""

from __future__ import annotations

from django_tenants.utils import get_public_schema_name

from voicedesk.core.tenancy import current_schema

# allauth's rate-limit counters (failed sign-ins per account and per address)
# must count an account's attempts on every business host together, or an
# attacker gets a fresh allowance on each subdomain.
PLATFORM_WIDE_PREFIXES = ("allauth:rl:",)


def make_key(key: str, key_prefix: str, version: int) -> str:
    """The stored key: schema, prefix, version, key (the django-tenants layout)."""
    schema = get_public_schema_name() if key.startswith(PLATFORM_WIDE_PREFIXES) else current_schema()
    return f"{schema}:{key_prefix}:{version}:{key}"


def reverse_key(key: str) -> str:
    return key.split(":", 3)[3]
