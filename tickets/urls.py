"""Help desk pages on a tenant's host: inbox, tickets, callback queue, unanswered questions."""

from django.urls import URLPattern, URLResolver, path

from tickets.views import callbacks, inbox, questions, ticket

app_name = "tickets"

urlpatterns: list[URLPattern | URLResolver] = [
    path("tickets/", inbox.inbox, name="inbox"),
    path("tickets/new/", inbox.ticket_new, name="new"),
    path("tickets/<int:pk>/", ticket.ticket_detail, name="detail"),
    path("tickets/<int:pk>/activity/", ticket.ticket_activity_fragment, name="activity"),
    path("tickets/<int:pk>/update/", ticket.ticket_update_view, name="update"),
    path("tickets/<int:pk>/assign/", ticket.ticket_assign_view, name="assign"),
    path("tickets/<int:pk>/notes/", ticket.ticket_note_add_view, name="note_add"),
    path("callbacks/", callbacks.callback_queue_view, name="callback_queue"),
    path("callbacks/next/", callbacks.callback_next_view, name="callback_next"),
    path("callbacks/<int:pk>/", callbacks.callback_detail, name="callback_detail"),
    path("callbacks/<int:pk>/outcome/", callbacks.callback_outcome, name="callback_outcome"),
    path("questions/", questions.question_list, name="question_list"),
    path("questions/<int:pk>/faq/", questions.question_to_faq, name="question_to_faq"),
    path("questions/<int:pk>/dismiss/", questions.question_dismiss, name="question_dismiss"),
]
