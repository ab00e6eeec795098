"""Dramatiq middleware that runs every message in the schema it was sent from.

The schema is stamped on the message when it is enqueued, activated in the
worker thread before the actor runs, and reset to public afterwards, so a
task never inherits the tenant of the task before it.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from django_tenants.utils import get_public_schema_name, get_tenant_model
from dramatiq.middleware import SkipMessage

from voicedesk.core.tenancy import current_schema, schema_activate

OPTION = "tenant_schema"
logger = structlog.get_logger(__name__)


class TenantMiddleware(dramatiq.Middleware):
    @property
    def actor_options(self) -> set[str]:
        return {OPTION}

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int) -> None:
        message.options.setdefault(OPTION, current_schema())

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        schema = message.options.get(OPTION) or get_public_schema_name()
        tenant = None
        if schema != get_public_schema_name():
            # Only a real business's schema: never the template new tenants are
            # cloned from, nor a schema whose tenant is gone.
            tenant = get_tenant_model().objects.filter(schema_name=schema, is_template=False).first()
            if tenant is None:
                logger.error("dramatiq_message_schema_refused", schema=schema, actor=message.actor_name)
                raise SkipMessage(f"no business has schema {schema!r}")
        schema_activate(tenant)
        structlog.contextvars.bind_contextvars(tenant=schema, message_id=message.message_id)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        schema_activate(None)
        structlog.contextvars.unbind_contextvars("tenant", "message_id")

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self.after_process_message(broker, message)


def send_in_schema(actor: dramatiq.Actor[Any, Any], schema_name: str, *args: Any, **kwargs: Any) -> None:
    """Send ``actor`` now, to run in ``schema_name`` whatever schema this connection is on."""
    options: dict[str, Any] = {OPTION: schema_name}
    actor.send_with_options(args=args, kwargs=kwargs, **options)


def send_to_each_tenant(actor: dramatiq.Actor[Any, Any]) -> int:
    """Send ``actor`` once in every business's schema (never public or the template); return how many were sent.

    A periodic sweep sends this from the one scheduler; the per-tenant
    messages spread over every worker.
    """
    schemas = (
        get_tenant_model()
        .objects.exclude(schema_name=get_public_schema_name())
        .filter(is_template=False)
        .values_list("schema_name", flat=True)
    )
    sent = 0
    for schema_name in schemas:
        send_in_schema(actor, schema_name)
        sent += 1
    return sent
