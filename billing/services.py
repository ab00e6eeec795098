"""Usage metering: the seconds of every finished call, once per call."""

from __future__ import annotations

import math

import structlog
from django.db import IntegrityError, transaction

from billing.models import UsageRecord
from calls.models import Call
from tenants.models import Tenant
from voicedesk.tenancy import current_schema

logger = structlog.get_logger(__name__)


def usage_record_call(*, tenant: Tenant, call_id: int) -> UsageRecord | None:
    """Meter a finished call in ``tenant``'s schema; a second run returns the same record.

    Calls are billed by the started minute's seconds rounded up, from answer
    to hang-up. Unanswered calls cost nothing and are not recorded.
    """
    if current_schema() != tenant.schema_name:
        raise RuntimeError(f"usage_record_call for {tenant.schema_name} with schema {current_schema()} active")
    existing = UsageRecord.objects.filter(tenant=tenant, call_id=call_id).first()
    if existing is not None:
        return existing
    call = Call.objects.get(pk=call_id)
    duration = call.duration_seconds
    if duration is None:
        return None
    try:
        with transaction.atomic():
            record = UsageRecord.objects.create(tenant=tenant, call_id=call_id, seconds=math.ceil(duration))
    except IntegrityError:
        return UsageRecord.objects.get(tenant=tenant, call_id=call_id)
    logger.info("usage_recorded", call_id=call_id, seconds=record.seconds)
    return record


def usage_unmetered_call_ids(*, tenant: Tenant) -> list[int]:
    """Finished, answered calls of ``tenant`` that have no usage record yet."""
    metered = UsageRecord.objects.filter(tenant=tenant).values_list("call_id", flat=True)
    return list(
        Call.objects.filter(ended_at__isnull=False, answered_at__isnull=False)
        .exclude(pk__in=list(metered))
        .values_list("pk", flat=True)
    )
