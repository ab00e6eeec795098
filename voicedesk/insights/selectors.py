"""Reads across calls, tickets, numbers and billing for the overview page. The tenant's schema must be active."""

from __future__ import annotations

from dataclasses import dataclass

from billing.models import Subscription
from calls.models import AgentConfig, Call, FaqEntry, default_business_hours
from calls.selectors import schema_check
from calls.services import DEFAULT_FAQS
from tenants.models import AuditEvent, PhoneNumber, Tenant
from tickets.models import CLOSED_STATUSES, Ticket
from tickets.selectors import callbacks_waiting


def dashboard_counts(*, tenant: Tenant) -> dict[str, int]:
    """Figures for the overview page; callbacks count until the queue is done with them.

    Test calls from the dashboard are not calls the business received.

    A callback of a resolved or closed ticket is not waiting for anyone, whatever its row says.
    """
    schema_check(tenant=tenant)
    return {
        "calls": Call.objects.filter(is_test=False).count(),
        "open_tickets": Ticket.objects.exclude(status__in=CLOSED_STATUSES).count(),
        "pending_callbacks": callbacks_waiting().count(),
    }


@dataclass(frozen=True, slots=True)
class OnboardingStep:
    """One step of going live: whether it is done, what it means, and the page (URL name) that does it."""

    key: str
    label: str
    done: bool
    hint: str
    url_name: str


# The steps without which callers do not reach a paid receptionist.
LIVE_STEPS = frozenset({"plan", "number"})


def onboarding_is_live(steps: list[OnboardingStep]) -> bool:
    """Whether the business is live: a paid or trialing subscription and a number."""
    return all(step.done for step in steps if step.key in LIVE_STEPS)


# What a business's details are: who it is, where (time zone) and when it is open.
_DETAIL_FIELDS = frozenset({"business_name", "timezone", "business_hours"})


def onboarding_checklist(*, tenant: Tenant) -> list[OnboardingStep]:
    """The steps to go live, in the order a new business takes them, each done or not from its real state.

    - plan and payment: the subscription is active or trialing;
    - phone number: a number rings this business;
    - business details: the time zone or opening hours differ from the defaults, or someone changed them;
    - greeting and FAQ: a greeting is set, or the FAQ holds an entry of the business's own;
    - test call: a call has been received, through the number or the browser's test call.

    The business is live (``onboarding_is_live``) once it has a plan and a number.
    """
    schema_check(tenant=tenant)
    config = AgentConfig.objects.first()
    details_changed = any(
        _DETAIL_FIELDS.intersection(event.data.get("fields", []))
        for event in AuditEvent.objects.filter(tenant=tenant, action="agent_config.updated").only("data")
    )
    details = config is not None and (
        config.timezone != "UTC" or config.business_hours != default_business_hours() or details_changed
    )
    stock_faqs = set(DEFAULT_FAQS)
    own_faq = any(pair not in stock_faqs for pair in FaqEntry.objects.values_list("question", "answer"))
    agent = config is not None and (bool(config.greeting.strip()) or own_faq)
    subscription = Subscription.objects.filter(tenant=tenant).first()
    paid = subscription is not None and subscription.status in (
        Subscription.Status.ACTIVE,
        Subscription.Status.TRIALING,
    )
    return [
        OnboardingStep("plan", "Plan and payment", paid,
                       "Choose a plan and add a card.", "billing:page"),
        OnboardingStep("number", "Phone number", PhoneNumber.objects.filter(tenant=tenant).exists(),
                       "A number you own that rings your receptionist.", "phone_numbers:list"),
        OnboardingStep("details", "Business details", details,
                       "Your time zone and opening hours, so callbacks are due in your hours.", "settings:agent"),
        OnboardingStep("agent", "Greeting and FAQ", agent,
                       "How the receptionist greets callers and the answers it gives.", "settings:faq"),
        OnboardingStep("test_call", "A test call", Call.objects.exists(),
                       "Call your number, or make a test call from your browser: this step is done when the first "
                       "call arrives.", "calls:test_call"),
    ]  # fmt: skip
