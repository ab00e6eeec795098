"""Tenant-schema models: the ticket a call becomes, and its callback."""

from __future__ import annotations

from django.db import models


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
    summary = models.TextField(blank=True)
    caller_name = models.CharField(max_length=200, blank=True)
    callback_number = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)
    category = models.CharField(max_length=50, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PHONE)
    # One ticket per call, however often ticket generation is retried.
    call = models.OneToOneField("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket")
    captured = models.JSONField(default=dict, blank=True)
    faq_answered = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"T-{self.pk}: {self.subject}"

    @property
    def number(self) -> str:
        return f"T-{self.pk}"


class UnansweredQuestion(models.Model):
    """A caller question the FAQ could not answer; someone must follow up."""

    question = models.TextField()
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
    phone = models.CharField(max_length=32, blank=True)
    priority = models.CharField(max_length=10, choices=Ticket.Priority.choices, default=Ticket.Priority.NORMAL)
    reason = models.CharField(max_length=200, blank=True)
    requested_window = models.CharField(max_length=100, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "created_at"]

    def __str__(self) -> str:
        return f"Callback for {self.ticket}"


class TicketChange(models.Model):
    """The audit trail: one row per change of a ticket field."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="User id (public schema); empty for the system.")
    field = models.CharField(max_length=50)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value!r} -> {self.new_value!r}"
