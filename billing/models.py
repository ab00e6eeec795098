"""Public-schema billing records: metered usage per tenant."""

from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    """Seconds of handled calls, reported to Stripe by the metering job."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_records")
    call_id = models.BigIntegerField()
    seconds = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "call_id"], name="usage_record_tenant_call_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.schema_name}: {self.seconds}s"
