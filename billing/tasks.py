"""Billing actors. The tenant schema comes from the message (TenantMiddleware)."""

import dramatiq
from django_tenants.utils import get_tenant_model, schema_context
from dramatiq_crontab import cron

from billing import services
from calls.hooks import CallFinished
from voicedesk.core.dramatiq_tenancy import send_in_schema
from voicedesk.core.tenancy import current_tenant


@dramatiq.actor(max_retries=5, min_backoff=1_000, max_backoff=60_000)
def usage_meter_call(call_id: int) -> None:
    services.usage_record_call(tenant=current_tenant(), call_id=call_id)


def usage_meter_on_call_finished(event: CallFinished) -> None:
    """Call-finished hook: meter the call's seconds in the call's schema."""
    send_in_schema(usage_meter_call, event.schema_name, event.call_id)


@dramatiq.actor(max_retries=3)
def usage_meter_tenant() -> None:
    tenant = current_tenant()
    for call_id in services.usage_unmetered_call_ids(tenant=tenant):
        services.usage_record_call(tenant=tenant, call_id=call_id)


@cron("*/10 * * * *")
@dramatiq.actor(max_retries=0)
def usage_meter_sweep() -> None:
    """Catch calls whose metering message was lost: one message per tenant."""
    tenants = get_tenant_model().objects.exclude(schema_name="public").filter(is_template=False)
    for schema_name in tenants.values_list("schema_name", flat=True):
        with schema_context(schema_name):
            usage_meter_tenant.send()


@dramatiq.actor(max_retries=10, min_backoff=1_000, max_backoff=300_000)
def stripe_event_process(event_pk: int) -> None:
    services.stripe_event_process(event_pk=event_pk)


@dramatiq.actor(max_retries=5, min_backoff=5_000, max_backoff=600_000)
def usage_report(tenant_id: int) -> None:
    """Send one business's unreported minutes to Stripe (public schema: usage rows live there)."""
    services.usage_report_tenant(tenant=get_tenant_model().objects.get(pk=tenant_id))


@cron("*/15 * * * *")
@dramatiq.actor(max_retries=0)
def usage_report_sweep() -> None:
    """Every quarter hour: one reporting message per business with a Stripe customer."""
    for tenant_id in services.usage_report_tenant_ids():
        usage_report.send(tenant_id)
