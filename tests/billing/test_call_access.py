"""The subscription's state and plan decide, through ``calls.hooks``, what a caller gets: tested through the
carrier's real voice webhook."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from twilio.request_validator import RequestValidator

from billing.models import Plan, Subscription
from billing.selectors import ServiceAccess, service_access_for_tenant, tenant_call_access
from calls import hooks
from calls.hooks import CallAccess
from calls.models import Call
from tests.factories import CallFactory, SubscriptionFactory
from tickets.models import Callback
from tickets.services import ticket_create_from_call

URL = "http://localhost/twilio/voice"
NOW = timezone.now()


def _dial(call_sid: str, *, caller: str = "+15557654321", to: str = "+15550001001"):
    params = {"CallSid": call_sid, "From": caller, "To": to}
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(URL, params)
    response = Client(HTTP_HOST="localhost").post("/twilio/voice", params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    return ElementTree.fromstring(response.content)


def _said(root: ElementTree.Element) -> str:
    assert [child.tag for child in root] == ["Say", "Hangup"]
    return root.find("Say").text or ""


def test_billing_registers_the_call_access_provider_at_start_up() -> None:
    assert hooks.call_access_provider() is tenant_call_access


def test_active_subscription_gets_the_receptionist(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.ACTIVE)
    root = _dial("CA-active")
    assert root.find("./Connect/Stream") is not None
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("status", "end_reason")) == [("ringing", "")]


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "none"},
        {"status": "incomplete"},
        {"status": "trialing", "current_period_end": NOW + timedelta(days=3)},
        {"status": "past_due", "status_since": NOW - timedelta(days=1)},
    ],
    ids=["none", "incomplete", "trialing", "past_due_in_grace"],
)
def test_every_full_service_state_gets_the_receptionist(tenant_a, fields) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, **fields)
    root = _dial("CA-full")
    assert root.find("./Connect/Stream") is not None
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("status", "end_reason")) == [("ringing", "")]


@pytest.mark.parametrize(
    ("status", "reason"),
    [("unpaid", "unpaid"), ("canceled", "canceled"), ("paused", "paused")],
)
def test_unpaid_canceled_or_paused_caller_hears_a_short_message_and_leaves_a_ticket(
    tenant_a, status: str, reason: str
) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=status)

    root = _dial("CA-closed")

    assert _said(root) == (
        "Thank you for calling Alpha Plumbing. We are not taking calls through this line right now. "
        "We have your number, and someone will call you back as soon as possible. Goodbye."
    )
    with tenant_context(tenant_a.tenant):
        call = Call.objects.get()
        assert (call.status, call.end_reason, call.answered_at) == ("abandoned", f"turned_away:{reason}", None)
        ticket = ticket_create_from_call(call_id=call.pk)  # what the call-finished hook's worker runs
        assert (ticket.subject, ticket.callback_number, ticket.status) == (
            "Missed call: the line was not taking calls",
            "+15557654321",
            "new",
        )
        assert list(Callback.objects.values_list("ticket_id", "phone")) == [(ticket.pk, "+15557654321")]


def test_a_trial_that_ended_is_not_taking_calls(tenant_a) -> None:
    SubscriptionFactory(
        tenant=tenant_a.tenant, status=Subscription.Status.TRIALING, current_period_end=NOW - timedelta(minutes=1)
    )
    _said(_dial("CA-trial"))
    with tenant_context(tenant_a.tenant):
        assert Call.objects.get().end_reason == "turned_away:trial_ended"


def test_a_turned_away_caller_without_caller_id_is_asked_to_call_again(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.UNPAID)
    said = _said(_dial("CA-anon", caller=""))
    assert said.endswith("right now. Please call again later. Goodbye.")
    with tenant_context(tenant_a.tenant):
        ticket = ticket_create_from_call(call_id=Call.objects.get().pk)
        assert (ticket.callback_number, Callback.objects.count()) == ("", 0)


def test_a_carrier_retry_of_a_turned_away_call_gets_the_same_message_and_one_call(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.CANCELED)
    first, second = _said(_dial("CA-retry")), _said(_dial("CA-retry"))
    assert first == second
    with tenant_context(tenant_a.tenant):
        assert list(Call.objects.values_list("end_reason", flat=True)) == ["turned_away:canceled"]


def test_past_due_keeps_answering_within_the_grace_period(tenant_a, settings) -> None:
    settings.BILLING_PAST_DUE_GRACE_DAYS = 14
    SubscriptionFactory(
        tenant=tenant_a.tenant, status=Subscription.Status.PAST_DUE, status_since=NOW - timedelta(days=13)
    )
    assert _dial("CA-grace").find("./Connect/Stream") is not None


def test_past_due_after_the_grace_period_is_not_taking_calls(tenant_a, settings) -> None:
    settings.BILLING_PAST_DUE_GRACE_DAYS = 14
    SubscriptionFactory(
        tenant=tenant_a.tenant, status=Subscription.Status.PAST_DUE, status_since=NOW - timedelta(days=14, minutes=1)
    )
    _said(_dial("CA-late"))
    with tenant_context(tenant_a.tenant):
        assert Call.objects.get().end_reason == "turned_away:past_due"


def test_a_call_beyond_the_plans_concurrent_calls_hears_the_lines_are_busy_and_leaves_a_ticket(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant)  # Starter: two calls at once
    with tenant_context(tenant_a.tenant):
        CallFactory(status=Call.Status.IN_PROGRESS, answered_at=NOW)
        CallFactory(status=Call.Status.RINGING)
        CallFactory(status=Call.Status.COMPLETED)  # over: does not count

    root = _dial("CA-third")

    assert _said(root) == (
        "Thank you for calling Alpha Plumbing. All our lines are busy right now. "
        "We have your number, and someone will call you back as soon as possible. Goodbye."
    )
    with tenant_context(tenant_a.tenant):
        call = Call.objects.get(carrier_call_id="CA-third")
        assert call.end_reason == "turned_away:over_capacity"
        ticket = ticket_create_from_call(call_id=call.pk)
        assert (ticket.subject, ticket.callback_number) == ("Missed call: all lines were busy", "+15557654321")


def test_stale_calls_do_not_hold_a_line(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant)
    with tenant_context(tenant_a.tenant):
        stuck = CallFactory(status=Call.Status.IN_PROGRESS)
        never_connected = CallFactory(status=Call.Status.RINGING)
        Call.objects.filter(pk=stuck.pk).update(started_at=NOW - timedelta(hours=3))
        Call.objects.filter(pk=never_connected.pk).update(started_at=NOW - timedelta(minutes=6))
        CallFactory(status=Call.Status.IN_PROGRESS)
    assert _dial("CA-second").find("./Connect/Stream") is not None


def test_without_a_plan_there_is_no_concurrent_call_limit(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        for _ in range(5):
            CallFactory(status=Call.Status.IN_PROGRESS)
    assert _dial("CA-sixth").find("./Connect/Stream") is not None
    assert not Subscription.objects.filter(tenant=tenant_a.tenant).exists()


def test_a_failing_provider_never_loses_a_caller(tenant_a, monkeypatch) -> None:
    def broken(tenant):
        raise RuntimeError("billing database down")

    monkeypatch.setattr(hooks, "_call_access_provider", [broken])
    assert hooks.call_access_for(tenant_a.tenant) == CallAccess()


@pytest.mark.parametrize(
    ("status", "period_end", "expected"),
    [
        ("none", None, ServiceAccess(full_service=True)),
        ("incomplete", None, ServiceAccess(full_service=True)),
        ("active", None, ServiceAccess(full_service=True)),
        ("trialing", NOW + timedelta(days=1), ServiceAccess(full_service=True)),
    ],
)
def test_states_with_full_service_and_no_banner(tenant_a, status, period_end, expected) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, status=status, current_period_end=period_end)
    assert service_access_for_tenant(tenant=tenant_a.tenant, now=NOW) == expected


def test_past_due_banner_names_the_last_day_of_grace(tenant_a, settings) -> None:
    settings.BILLING_PAST_DUE_GRACE_DAYS = 14
    since = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    SubscriptionFactory(tenant=tenant_a.tenant, status="past_due", status_since=since)
    access = service_access_for_tenant(tenant=tenant_a.tenant, now=since + timedelta(days=1))
    assert access == ServiceAccess(
        full_service=True,
        notice="Your last payment did not go through. Please update your card before December 4 "
        "to keep your receptionist answering calls.",
        grace_until=since + timedelta(days=14),
    )


def test_the_concurrent_limit_is_the_plans(tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, plan=None)
    assert tenant_call_access(tenant_a.tenant) == CallAccess(max_concurrent_calls=None)
    Subscription.objects.filter(tenant=tenant_a.tenant).update(plan=Plan.objects.get(code="growth"))
    assert tenant_call_access(tenant_a.tenant) == CallAccess(max_concurrent_calls=5)


def test_a_turned_away_call_is_not_metered(tenant_a) -> None:
    from billing.services import usage_record_call

    SubscriptionFactory(tenant=tenant_a.tenant, status=Subscription.Status.UNPAID)
    _dial("CA-free")
    with tenant_context(tenant_a.tenant):
        assert usage_record_call(tenant=tenant_a.tenant, call_id=Call.objects.get().pk) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_media_stream_for_a_turned_away_call_is_refused_and_changes_nothing(tenant_a) -> None:
    from channels.db import database_sync_to_async

    from calls.transports.twilio.twiml import stream_token_issue
    from tests.calls.transports.twilio.test_consumer import _call, _connect, _start

    await database_sync_to_async(SubscriptionFactory)(tenant=tenant_a.tenant, status=Subscription.Status.UNPAID)
    await database_sync_to_async(_dial)("CA-sneaky")

    @database_sync_to_async
    def turned_away_call():
        with tenant_context(tenant_a.tenant):
            return Call.objects.get(carrier_call_id="CA-sneaky")

    call = await turned_away_call()
    token = stream_token_issue(tenant=tenant_a.tenant, call=call)  # as if a token had been handed out
    communicator = await _connect()
    await communicator.send_to(text_data=_start(token, "CA-sneaky"))
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 4008}
    await communicator.wait()
    stored = await _call(tenant_a.tenant, call.pk)
    assert (stored.status, stored.end_reason, stored.answered_at) == ("abandoned", "turned_away:unpaid", None)
