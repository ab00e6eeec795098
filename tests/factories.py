"""Factories. Tenant-schema ones must be used inside a tenant context."""

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from billing.models import Plan, Subscription
from calls.models import Call, FaqEntry, TurnLatency, Utterance
from tenants.models import Membership, User
from tickets.models import Callback, Ticket, TicketNote, UnansweredQuestion

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.django.Password(PASSWORD)


class MembershipFactory(factory.django.DjangoModelFactory):
    """Public schema: pass ``tenant``."""

    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Membership.Role.AGENT


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """Public schema: pass ``tenant``; the plan is the default Starter plan (``plan=None`` for none)."""

    class Meta:
        model = Subscription
        django_get_or_create = ("tenant",)

    plan = factory.LazyFunction(lambda: Plan.objects.get(code="starter"))
    status = Subscription.Status.ACTIVE
    stripe_customer_id = factory.Sequence(lambda n: f"cus_test{n}")
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_test{n}")


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    carrier = Call.Carrier.TWILIO
    carrier_call_id = factory.Sequence(lambda n: f"CA{n:032d}")
    from_number = "+15557654321"
    to_number = "+15550001001"
    status = Call.Status.COMPLETED


def outcome(**overrides: Any) -> dict[str, Any]:
    """A captured-call outcome as the session stores it on ``Call.captured``."""
    base: dict[str, Any] = {
        "fields": {"name": "Maria Gonzalez", "callback_number": "+15552013344", "reason": "my kitchen sink is leaking"},
        "reason": "my kitchen sink is leaking",
        "category": "leak",
        "priority": "normal",
        "faq_answered": ["What are your opening hours?"],
        "unanswered_questions": [],
        "wants_human": False,
        "callback_requested": True,
        "confirmed": True,
        "completed": True,
        "resolved": False,
        "summary": "Leak: my kitchen sink is leaking.",
    }
    return base | overrides


class UtteranceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Utterance

    call = factory.SubFactory(CallFactory)
    speaker = Utterance.Speaker.CALLER
    text = "Hi, my kitchen sink is leaking."
    start_s = factory.Sequence(lambda n: float(n * 3))
    end_s = factory.LazyAttribute(lambda u: u.start_s + 2.5)
    confidence = 0.92


class TurnLatencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TurnLatency

    call = factory.SubFactory(CallFactory)
    turn_index = factory.Sequence(lambda n: n)
    pause_ms = 150.0
    transcript_ms = 420.0
    endpoint_ms = 430.0
    decision_ms = 450.0
    first_audio_ms = 560.0
    first_frame_ms = 640.0


class FaqEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FaqEntry

    question = factory.Sequence(lambda n: f"Question number {n}?")
    answer = "An answer."


class TicketFactory(factory.django.DjangoModelFactory):
    """A ticket as the web form makes it; use ``ticket_create_from_call`` for phone tickets."""

    class Meta:
        model = Ticket

    subject = factory.Sequence(lambda n: f"Leaking tap number {n}")
    description = "Water under the sink."
    caller_name = "Maria Gonzalez"
    callback_number = "+15552013344"
    category = "leak"
    priority = Ticket.Priority.NORMAL
    status = Ticket.Status.NEW
    source = Ticket.Source.WEB
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class TicketNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketNote

    ticket = factory.SubFactory(TicketFactory)
    body = "Called the landlord."


class CallbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Callback

    ticket = factory.SubFactory(TicketFactory)
    phone = "+15552013344"
    priority = Ticket.Priority.NORMAL
    reason = "Leaking tap"
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=4))


class UnansweredQuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UnansweredQuestion

    question = factory.Sequence(lambda n: f"Do you service boilers of type {n}?")
    ticket = factory.SubFactory(TicketFactory)
