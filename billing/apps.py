from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.tasks import usage_meter_on_call_finished
        from calls.hooks import call_finished_hook_register

        call_finished_hook_register(usage_meter_on_call_finished)
