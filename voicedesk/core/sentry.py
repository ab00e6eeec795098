"""Optional error reporting to Sentry (``SENTRY_DSN``), with callers' numbers and emails masked."""

from __future__ import annotations

from typing import Any

from voicedesk.core.redaction import pii_mask_value

# Identifiers Sentry needs intact; nothing personal is in them.
_KEEP = frozenset({"event_id", "timestamp", "start_timestamp", "release", "environment", "platform", "sdk"})


def sentry_event_scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """``before_send``: mask phone numbers and emails anywhere in the event (messages, exceptions, extras)."""
    return {key: value if key in _KEEP else pii_mask_value(value) for key, value in event.items()}


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    """Report errors to ``dsn``; no request bodies, cookies or user details are sent."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration()],
        max_request_body_size="never",
        before_send=sentry_event_scrub,  # type: ignore[arg-type]
        traces_sample_rate=traces_sample_rate,
    )
