from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.selectors import tenant_call_access, tenant_plan_limits
        from billing.services import tenant_billing_erase
        from billing.tasks import usage_meter_on_call_finished
        from calls.hooks import call_access_provider_register, call_finished_hook_register
        from tenants.hooks import tenant_erasure_hook_register, tenant_limits_provider_register

        call_finished_hook_register(usage_meter_on_call_finished)
        call_access_provider_register(tenant_call_access)
        tenant_limits_provider_register(tenant_plan_limits)
        tenant_erasure_hook_register(tenant_billing_erase)
