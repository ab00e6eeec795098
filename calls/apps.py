from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls and the voice agent"

    def ready(self) -> None:
        from calls.services import agent_config_provision, tenant_recordings_erase
        from tenants.hooks import tenant_created_hook_register, tenant_erasure_hook_register

        tenant_created_hook_register(agent_config_provision)
        tenant_erasure_hook_register(tenant_recordings_erase)

        from calls.transports.livekit.tasks import livekit_number_changed
        from tenants.hooks import phone_number_hook_register

        phone_number_hook_register(livekit_number_changed)

        from calls.hooks import call_finished_hook_register
        from calls.tasks import call_transcript_on_call_finished

        call_finished_hook_register(call_transcript_on_call_finished)
