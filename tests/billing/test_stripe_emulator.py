"""The emulator speaks Stripe's protocol as the real SDK expects it."""

from __future__ import annotations

import time
import urllib.request

import pytest
import stripe

from billing.stripe_emulator import StripeEmulator, form_decode, query_string, webhook_signature
from tests.billing.conftest import API_KEY, WEBHOOK_SECRET


@pytest.fixture
def emulator() -> StripeEmulator:
    emulator = StripeEmulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emulator: StripeEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": emulator.url})


def _meter(client: stripe.StripeClient) -> stripe.billing.Meter:
    return client.v1.billing.meters.create(
        {"display_name": "Minutes", "event_name": "minutes", "default_aggregation": {"formula": "sum"},
         "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
         "value_settings": {"event_payload_key": "value"}}
    )  # fmt: skip


def test_form_encoding_round_trips_nested_lists_and_maps() -> None:
    params = {"line_items": [{"price": "p1", "quantity": 1}, {"price": "p2"}], "payload": {"value": "3"}, "x": True}
    assert form_decode(query_string(params)) == {
        "line_items": [{"price": "p1", "quantity": "1"}, {"price": "p2"}],
        "payload": {"value": "3"},
        "x": "true",
    }


def test_webhook_signature_is_what_the_sdk_verifies() -> None:
    payload = b'{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}'
    header = webhook_signature(payload, WEBHOOK_SECRET, int(time.time()))
    event = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET, tolerance=300)
    assert (event.id, event.type) == ("evt_1", "invoice.paid")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other", tolerance=300)


def test_a_wrong_key_is_refused_like_stripe_does(emulator: StripeEmulator) -> None:
    bad = stripe.StripeClient("sk_test_wrong", base_addresses={"api": emulator.url})
    with pytest.raises(stripe.AuthenticationError) as excinfo:
        bad.v1.customers.create({"email": "a@b.test"})
    assert excinfo.value.http_status == 401


def test_missing_objects_and_params_get_stripe_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as param:
        client.v1.products.create({})
    assert (param.value.http_status, param.value.param) == (400, "name")


def test_idempotency_keys_replay_and_refuse_other_params(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create({"email": "a@b.test"}, {"idempotency_key": "k-1"})
    again = client.v1.customers.create({"email": "a@b.test"}, {"idempotency_key": "k-1"})
    assert first.id == again.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@b.test"}, {"idempotency_key": "k-1"})


def test_meter_events_count_once_per_identifier_and_sum_in_summaries(client: stripe.StripeClient) -> None:
    meter = _meter(client)
    customer = client.v1.customers.create({"email": "a@b.test"})
    now = int(time.time())
    for identifier, value in (("u-1", "3"), ("u-2", "4")):
        client.v1.billing.meter_events.create(
            {"event_name": "minutes", "identifier": identifier, "timestamp": now,
             "payload": {"stripe_customer_id": customer.id, "value": value}}
        )  # fmt: skip
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        client.v1.billing.meter_events.create(
            {"event_name": "minutes", "identifier": "u-1", "payload": {"stripe_customer_id": customer.id, "value": "3"}}
        )
    assert duplicate.value.code == "meter_event_duplicate_identifier"
    summary = client.v1.billing.meters.event_summaries.list(
        meter.id, {"customer": customer.id, "start_time": now - 60, "end_time": now + 60}
    )
    assert [s.aggregated_value for s in summary.data] == [7.0]


def test_meter_events_too_old_are_refused(client: stripe.StripeClient) -> None:
    _meter(client)
    customer = client.v1.customers.create({})
    with pytest.raises(stripe.InvalidRequestError) as old:
        client.v1.billing.meter_events.create(
            {"event_name": "minutes", "timestamp": int(time.time()) - 36 * 86400,
             "payload": {"stripe_customer_id": customer.id, "value": "1"}}
        )  # fmt: skip
    assert old.value.param == "timestamp"


def test_checkout_pays_on_the_hosted_page_and_emits_the_subscription_events(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    meter = _meter(client)
    product = client.v1.products.create({"name": "Plan"})
    base = client.v1.prices.create(
        {"product": product.id, "currency": "usd", "unit_amount": 4900, "recurring": {"interval": "month"}}
    )
    metered = client.v1.prices.create(
        {"product": product.id, "currency": "usd", "billing_scheme": "tiered", "tiers_mode": "graduated",
         "tiers": [{"up_to": 300, "unit_amount": 0}, {"up_to": "inf", "unit_amount_decimal": "12.5"}],
         "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id}}
    )  # fmt: skip
    assert [t["up_to"] for t in metered.tiers] == [300, None]
    with pytest.raises(stripe.InvalidRequestError) as quantity:
        client.v1.checkout.sessions.create(
            {"mode": "subscription", "success_url": "http://x/ok", "line_items": [{"price": metered.id, "quantity": 1}]}
        )
    assert quantity.value.param == "line_items[0][quantity]"
    session = client.v1.checkout.sessions.create(
        {"mode": "subscription", "customer_email": "a@b.test", "client_reference_id": "acme",
         "success_url": "http://127.0.0.1:9/ok?s={CHECKOUT_SESSION_ID}",
         "line_items": [{"price": base.id, "quantity": 1}, {"price": metered.id}],
         "subscription_data": {"metadata": {"tenant": "acme"}}}
    )  # fmt: skip
    assert session.status == "open"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as paid:
        opener.open(urllib.request.Request(session.url, data=b"", method="POST"))  # noqa: S310
    assert paid.value.code == 303
    assert paid.value.headers["Location"] == f"http://127.0.0.1:9/ok?s={session.id}"

    completed = client.v1.checkout.sessions.retrieve(session.id)
    subscription = client.v1.subscriptions.retrieve(completed.subscription)
    assert (completed.status, subscription.status, subscription.metadata["tenant"]) == ("complete", "active", "acme")
    assert [e["type"] for e in emulator.state.events] == [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ]
    assert emulator.state.events[2]["data"]["object"]["amount_paid"] == 4900
    invoice = emulator.state.events[2]["data"]["object"]
    with urllib.request.urlopen(invoice["hosted_invoice_url"], timeout=5) as page:  # noqa: S310 (loopback emulator)
        shown = page.read().decode()
    assert f"<h1>Invoice {invoice['id']}</h1><p>Status: paid</p><p>Amount due: 49.00 USD</p>" in shown
