"""Structured logging: JSON in production, readable in development.

Every record carries the context bound with ``structlog.contextvars``
(request id, tenant schema, call id), including records from the stdlib
loggers of Django, Dramatiq and Channels. Phone numbers and email addresses
are masked in every record, exception text included, just before rendering.
"""

from typing import Any

import structlog

from voicedesk.core.redaction import pii_redact_processor

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def build_logging_config(fmt: str, level: str) -> dict[str, Any]:
    """Configure structlog and return the matching ``LOGGING`` dict."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    pii_redact_processor,
                    renderer,
                ],
                "foreign_pre_chain": _SHARED_PROCESSORS,
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # The scheduler logs every run of every job at INFO.
            "apscheduler": {"level": "WARNING"},
            "daphne": {"level": "WARNING" if level == "INFO" else level},
        },
    }
