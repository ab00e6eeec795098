from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self) -> None:
        from calls.hooks import call_finished_hook_register, call_transfer_hook_register
        from tickets.tasks import ticket_generate_on_call_finished, ticket_on_call_transfer
        from voicedesk.core.events import helpdesk_logout_listen

        helpdesk_logout_listen()
        call_finished_hook_register(ticket_generate_on_call_finished)
        call_transfer_hook_register(ticket_on_call_transfer)
