"""Tenant-schema models: tickets, their audit trail and notes, callbacks and unanswered questions.

Users live in the public schema. References to them from tenant tables use
``db_constraint=False`` and ``DO_NOTHING``: deleting a user from the public
schema must not make Django look for tenant rows in the public schema.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models


def _user_reference(**kwargs: object) -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        **kwargs,  # type: ignore[arg-type]
    )


class Ticket(models.Model):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Source(models.TextChoices):
        PHONE = "phone", "Phone"
        WEB = "web", "Web"
        API = "api", "API"

    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    summary = models.TextField(blank=True, help_text="What the call was about, written by the agent.")
    caller_name = models.CharField(max_length=200, blank=True)
    callback_number = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)
    category = models.CharField(max_length=50, blank=True, db_index=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PHONE)
    assignee = _user_reference()
    # SLA: when the ticket must be resolved, within the tenant's business hours.
    # While pending (waiting on the customer) the clock stops: the pause is
    # added to ``due_at`` when the ticket leaves pending.
    due_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # One ticket per call, however often ticket generation is retried.
    call = models.OneToOneField("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket")
    captured = models.JSONField(default=dict, blank=True)
    faq_answered = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="ticket_status_created"),
            models.Index(fields=["priority", "-created_at"], name="ticket_priority_created"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            models.Index(fields=["due_at"], name="ticket_due"),
            GinIndex(fields=["tags"], name="ticket_tags"),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.subject}"

    @property
    def number(self) -> str:
        """Per-tenant ticket number: every tenant schema has its own id sequence."""
        return f"T-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def is_overdue(self) -> bool:
        from django.utils import timezone

        return self.is_open and self.sla_paused_at is None and self.due_at is not None and self.due_at < timezone.now()


S = Ticket.Status
CLOSED_STATUSES = frozenset({S.RESOLVED, S.CLOSED})
# Allowed status transitions (django-helpdesk's STATUS_CHOICES_FLOW). Closed is
# final, as in Zendesk: a new problem is a new ticket.
STATUS_FLOW: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.PENDING, S.RESOLVED, S.CLOSED}),
    S.PENDING: frozenset({S.OPEN, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}


class FaqAnswer(models.Model):
    """A question the agent answered on the call, and the FAQ entry the answer came from."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="faq_answers")
    faq_entry = models.ForeignKey("calls.FaqEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The entry's question when it answered: the entry may be edited or deleted later.
    question = models.CharField(max_length=500)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.question


class TicketNote(models.Model):
    """An internal note on a ticket; never shown to the caller."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    author = _user_reference()
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.body[:40]


class UnansweredQuestion(models.Model):
    """A caller question the FAQ could not answer; someone must follow up."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CONVERTED = "converted", "Added to the FAQ"
        DISMISSED = "dismissed", "Dismissed"

    question = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    faq_entry = models.ForeignKey("calls.FaqEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    call = models.ForeignKey("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="unanswered_questions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.question


class Callback(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "", "Pending"
        REACHED = "reached", "Reached"
        NO_ANSWER = "no_answer", "No answer"
        VOICEMAIL = "voicemail", "Voicemail"
        WRONG_NUMBER = "wrong_number", "Wrong number"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="callback")
    assignee = _user_reference()
    phone = models.CharField(max_length=32, blank=True)
    priority = models.CharField(max_length=10, choices=Ticket.Priority.choices, default=Ticket.Priority.NORMAL)
    reason = models.CharField(max_length=200, blank=True)
    requested_window = models.CharField(max_length=100, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The last attempt's outcome; pending until the queue is done with it.
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "created_at"]
        indexes = [models.Index(fields=["completed_at", "due_at"], name="callback_queue")]

    def __str__(self) -> str:
        return f"Callback for {self.ticket}"

    @property
    def is_overdue(self) -> bool:
        from django.utils import timezone

        return self.completed_at is None and self.due_at is not None and self.due_at < timezone.now()


class CallbackAttempt(models.Model):
    """One try at calling the customer back, as logged by an agent."""

    callback = models.ForeignKey(Callback, on_delete=models.CASCADE, related_name="attempt_log")
    actor = _user_reference()
    outcome = models.CharField(max_length=20, choices=Callback.Outcome.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.created_at:%Y-%m-%d %H:%M}"


class TicketChange(models.Model):
    """The audit trail: one row per change of a ticket field."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    # Empty for the system (the voice agent, SLA jobs).
    actor = _user_reference()
    field = models.CharField(max_length=50)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value!r} -> {self.new_value!r}"
