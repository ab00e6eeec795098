"""Usage metering actors. The tenant schema comes from the message (TenantMiddleware)."""

import dramatiq
from django_tenants.utils import get_tenant_model, schema_context
from dramatiq_crontab import cron

from billing.services import usage_record_call, usage_unmetered_call_ids
from voicedesk.tenancy import current_tenant


@dramatiq.actor(max_retries=5, min_backoff=1_000, max_backoff=60_000)
def usage_meter_call(call_id: int) -> None:
    usage_record_call(tenant=current_tenant(), call_id=call_id)


@dramatiq.actor(max_retries=3)
def usage_meter_tenant() -> None:
    tenant = current_tenant()
    for call_id in usage_unmetered_call_ids(tenant=tenant):
        usage_record_call(tenant=tenant, call_id=call_id)


@cron("*/10 * * * *")
@dramatiq.actor(max_retries=0)
def usage_meter_sweep() -> None:
    """Catch calls whose metering message was lost: one message per tenant."""
    tenants = get_tenant_model().objects.exclude(schema_name="public").filter(is_template=False)
    for schema_name in tenants.values_list("schema_name", flat=True):
        with schema_context(schema_name):
            usage_meter_tenant.send()
