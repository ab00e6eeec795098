from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self) -> None:
        from tickets.events import helpdesk_logout_listen

        helpdesk_logout_listen()
