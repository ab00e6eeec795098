"""A Stripe API server on loopback, for development, tests and benchmarks.

Stripe publishes no server that runs here, so this one speaks the part of
Stripe's wire protocol the product uses, as the real ``stripe`` SDK sends it:
form-encoded requests with bracketed keys, ``Authorization: Bearer``,
``Idempotency-Key`` replays, Stripe's error objects, and the objects of the
pinned API version. Covered: customers, products, prices, billing meters,
meter events (deduplicated on ``identifier``) and their summaries, Checkout
sessions in subscription mode with a hosted payment page, Billing Portal
sessions with a hosted page, subscriptions and invoices (with a hosted invoice page). Webhooks are signed
exactly as Stripe signs them (``Stripe-Signature: t=...,v1=...``).

State lives in memory. ``/_emulator/...`` endpoints (not Stripe's) move a
subscription through the states a real one reaches over weeks: a failed
payment, cancellation, a new billing period. ``hang_after_meter_events``
makes Stripe go silent after taking an event, to kill a sender mid-run.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import structlog

logger = structlog.get_logger(__name__)

API_VERSION = "2026-10-28.endive"
SUBSCRIPTION_STATUSES = ("incomplete", "trialing", "active", "past_due", "canceled", "unpaid", "paused")
PERIOD_S = 30 * 24 * 3600
Json = dict[str, Any]


class StripeError(Exception):
    """An error Stripe answers with: its HTTP status and its ``error`` object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error") -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.body: Json = {"error": {"type": type_, "message": message}}
        if param:
            self.body["error"]["param"] = param
        if code:
            self.body["error"]["code"] = code


def form_decode(body: str) -> Json:
    """Stripe's form encoding: ``a[b][0][c]=v`` becomes ``{"a": {"b": [{"c": "v"}]}}``."""
    root: Json = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = key.partition("[")
        path = [head, *(part.rstrip("]") for part in rest.split("["))] if rest else [head]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    result: Json = _lists_from_indexes(root)
    return result


def _lists_from_indexes(node: Any) -> Any:
    """Dicts keyed "0", "1", ... (bracketed indexes) become lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {key: _lists_from_indexes(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def webhook_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``payload``."""
    signed = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signed}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _require(params: Json, *names: str) -> None:
    for name in names:
        if params.get(name) in (None, ""):
            raise StripeError(400, f"Missing required param: {name}.", param=name)


@dataclass
class StripeState:
    """Every object the emulator holds, by id, and what it has sent."""

    objects: dict[str, Json] = field(default_factory=dict)
    meter_events: dict[str, Json] = field(default_factory=dict)  # by identifier
    idempotency: dict[str, tuple[str, int, Json]] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # (event id, HTTP status)


class StripeEmulator:
    """The emulated Stripe account. ``start`` serves it on loopback; ``url`` is its base address."""

    def __init__(self, *, api_key: str = "sk_test_emulator", webhook_url: str = "", webhook_secret: str = "",
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.api_key = api_key
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.clock = clock
        self.state = StripeState()
        self._lock = threading.RLock()
        # ``hang_after_meter_events``: Stripe takes the n-th meter event, then answers nothing until ``resume``.
        self._hang_after: int | None = None
        self._resumed = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StripeEmulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.resume()
        self._server.shutdown()
        self._server.server_close()

    def now(self) -> int:
        return int(self.clock())

    # -- faults ----------------------------------------------------------------
    def hang_after_meter_events(self, count: int) -> None:
        """Once ``count`` meter events are stored, hold the answer to the last one (and every request after it)
        until ``resume``: Stripe has the event, its sender never hears so. A sender killed meanwhile died
        between Stripe taking an event and marking it sent."""
        self._resumed.clear()
        self._hang_after = count

    def resume(self) -> None:
        """Answer again (``hang_after_meter_events``)."""
        self._hang_after = None
        self._resumed.set()

    def _hang_if_asked(self) -> None:
        if self._hang_after is not None and len(self.state.meter_events) >= self._hang_after:
            self._resumed.wait()

    # -- objects ---------------------------------------------------------------
    def _store(self, obj: Json) -> Json:
        self.state.objects[obj["id"]] = obj
        return obj

    def get(self, object_id: str, kind: str) -> Json:
        obj = self.state.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise StripeError(404, f"No such {kind.split('.')[-1]}: '{object_id}'", param="id", code="resource_missing")
        return obj

    def _list(self, kind: str, url: str, match: Callable[[Json], bool] = lambda _: True) -> Json:
        data = [obj for obj in self.state.objects.values() if obj["object"] == kind and match(obj)]
        return {"object": "list", "data": data, "has_more": False, "url": url}

    def customer_create(self, params: Json) -> Json:
        return self._store({
            "id": _new_id("cus"), "object": "customer", "created": self.now(), "livemode": False,
            "email": params.get("email"), "name": params.get("name"), "metadata": params.get("metadata", {}),
        })  # fmt: skip

    def product_create(self, params: Json) -> Json:
        _require(params, "name")
        return self._store({
            "id": params.get("id") or _new_id("prod"), "object": "product", "name": params["name"], "active": True,
            "created": self.now(), "livemode": False, "metadata": params.get("metadata", {}),
        })  # fmt: skip

    def price_create(self, params: Json) -> Json:
        _require(params, "currency", "product")
        self.get(params["product"], "product")
        recurring = params.get("recurring")
        if recurring is not None:
            recurring = {
                "interval": recurring.get("interval", "month"), "interval_count": 1,
                "usage_type": recurring.get("usage_type", "licensed"), "meter": recurring.get("meter"),
            }  # fmt: skip
            if recurring["usage_type"] == "metered":
                if not recurring["meter"]:
                    raise StripeError(400, "Metered prices require a meter.", param="recurring[meter]")
                self.get(recurring["meter"], "billing.meter")
        tiers = None
        if params.get("billing_scheme") == "tiered":
            if params.get("tiers_mode") not in ("graduated", "volume") or not params.get("tiers"):
                raise StripeError(400, "Tiered prices need tiers_mode and tiers.", param="tiers")
            tiers = [{"up_to": None if tier.get("up_to") == "inf" else int(tier["up_to"]),
                      "unit_amount_decimal": str(tier.get("unit_amount_decimal", tier.get("unit_amount", "0"))),
                      "flat_amount": None} for tier in params["tiers"]]  # fmt: skip
            if tiers[-1]["up_to"] is not None:
                raise StripeError(400, "The last tier must have up_to=inf.", param="tiers")
            amount: Any = None
        else:
            amount = params.get("unit_amount_decimal", params.get("unit_amount"))
            if amount is None:
                raise StripeError(400, "Missing required param: unit_amount.", param="unit_amount")
        return self._store({
            "id": _new_id("price"), "object": "price", "active": True, "created": self.now(), "livemode": False,
            "currency": params["currency"], "product": params["product"], "nickname": params.get("nickname"),
            "unit_amount": int(float(amount)) if amount is not None and float(amount).is_integer() else None,
            "unit_amount_decimal": None if amount is None else str(amount), "recurring": recurring,
            "billing_scheme": "tiered" if tiers else "per_unit", "tiers_mode": params.get("tiers_mode"), "tiers": tiers,
            "type": "recurring" if recurring else "one_time", "metadata": params.get("metadata", {}),
        })  # fmt: skip

    def meter_create(self, params: Json) -> Json:
        _require(params, "display_name", "event_name")
        if any(m["event_name"] == params["event_name"] for m in self.state.objects.values()
               if m["object"] == "billing.meter" and m["status"] == "active"):  # fmt: skip
            raise StripeError(400, f"An active meter with event_name {params['event_name']} already exists.",
                              param="event_name")  # fmt: skip
        aggregation = (params.get("default_aggregation") or {}).get("formula", "sum")
        return self._store({
            "id": _new_id("mtr"), "object": "billing.meter", "created": self.now(), "livemode": False,
            "display_name": params["display_name"], "event_name": params["event_name"], "status": "active",
            "default_aggregation": {"formula": aggregation},
            "customer_mapping": params.get("customer_mapping")
            or {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": params.get("value_settings") or {"event_payload_key": "value"},
            "event_time_window": None,
        })  # fmt: skip

    def meter_event_create(self, params: Json) -> Json:
        _require(params, "event_name", "payload")
        now = self.now()
        timestamp = int(params.get("timestamp") or now)
        if timestamp < now - 35 * 24 * 3600 or timestamp > now + 5 * 60:
            raise StripeError(400, "Timestamp must be within the past 35 days and at most 5 minutes in the future.",
                              param="timestamp")  # fmt: skip
        identifier = params.get("identifier") or _new_id("mev")
        if identifier in self.state.meter_events:
            # Stripe: identifiers are unique; a repeat is refused and nothing is counted twice.
            raise StripeError(400, f"An event already exists with identifier {identifier}.",
                              param="identifier", code="meter_event_duplicate_identifier")  # fmt: skip
        meter = next((m for m in self.state.objects.values() if m["object"] == "billing.meter"
                      and m["event_name"] == params["event_name"] and m["status"] == "active"), None)  # fmt: skip
        if meter is None:
            raise StripeError(400, f"No active meter with event_name {params['event_name']}.", param="event_name")
        payload = params["payload"]
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        if not payload.get(customer_key):
            raise StripeError(400, f"Missing {customer_key} in payload.", param=f"payload[{customer_key}]")
        self.get(payload[customer_key], "customer")
        try:
            float(payload.get(value_key, "1"))
        except ValueError as exc:
            raise StripeError(400, f"Invalid {value_key}: must be a number.", param=f"payload[{value_key}]") from exc
        event = {"object": "billing.meter_event", "created": now, "livemode": False, "event_name": params["event_name"],
                 "identifier": identifier, "payload": payload, "timestamp": timestamp}  # fmt: skip
        self.state.meter_events[identifier] = event
        self._hang_if_asked()
        return event

    def meter_event_summaries(self, meter_id: str, params: Json, url: str) -> Json:
        meter = self.get(meter_id, "billing.meter")
        _require(params, "customer", "start_time", "end_time")
        start, end = int(params["start_time"]), int(params["end_time"])
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        values = [float(e["payload"].get(value_key, "1")) for e in self.state.meter_events.values()
                  if e["event_name"] == meter["event_name"] and e["payload"].get(customer_key) == params["customer"]
                  and start <= e["timestamp"] < end]  # fmt: skip
        formula = meter["default_aggregation"]["formula"]
        total = (
            float(len(values)) if formula == "count" else (values[-1] if formula == "last" and values else sum(values))
        )
        summary = {"id": _new_id("mtrusg"), "object": "billing.meter_event_summary", "aggregated_value": total,
                   "start_time": start, "end_time": end, "livemode": False, "meter": meter_id}  # fmt: skip
        return {"object": "list", "data": [summary], "has_more": False, "url": url}

    def checkout_session_create(self, params: Json) -> Json:
        _require(params, "mode", "success_url")
        if params["mode"] != "subscription":
            raise StripeError(400, "Only subscription mode is emulated.", param="mode")
        items = params.get("line_items") or []
        if not items:
            raise StripeError(400, "Missing required param: line_items.", param="line_items")
        for index, item in enumerate(items):
            price = self.get(item.get("price", ""), "price")
            metered = (price["recurring"] or {}).get("usage_type") == "metered"
            if metered and item.get("quantity"):
                raise StripeError(400, "Quantity should not be specified where usage_type is `metered`.",
                                  param=f"line_items[{index}][quantity]")  # fmt: skip
        if params.get("customer"):
            self.get(params["customer"], "customer")
        session_id = _new_id("cs_test")
        return self._store({
            "id": session_id, "object": "checkout.session", "mode": "subscription", "status": "open",
            "payment_status": "unpaid", "created": self.now(), "livemode": False,
            "customer": params.get("customer"), "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata", {}),
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
            "subscription": None, "line_items_requested": items,
            "subscription_data": params.get("subscription_data", {}),
            "url": f"{self.url}/c/pay/{session_id}",
        })  # fmt: skip

    def checkout_complete(self, session_id: str) -> Json:
        """The customer paid on the hosted page: customer, subscription, paid invoice, and their webhooks."""
        session = self.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise StripeError(400, "This Checkout Session is no longer active.", code="checkout_session_inactive")
        if not session["customer"]:
            session["customer"] = self.customer_create({"email": session["customer_email"]})["id"]
        sub_data = session["subscription_data"] or {}
        trial_days = int(sub_data.get("trial_period_days") or 0)
        now = self.now()
        subscription = self._store({
            "id": _new_id("sub"), "object": "subscription", "customer": session["customer"], "created": now,
            "livemode": False, "status": "trialing" if trial_days else "active", "cancel_at_period_end": False,
            "canceled_at": None, "ended_at": None, "metadata": sub_data.get("metadata", {}),
            "trial_end": now + trial_days * 86400 if trial_days else None,
            "items": {"object": "list", "has_more": False, "url": "/v1/subscription_items", "data": [
                {"id": _new_id("si"), "object": "subscription_item", "price": self.get(item["price"], "price"),
                 "quantity": int(item["quantity"]) if item.get("quantity") else None,
                 "current_period_start": now, "current_period_end": now + PERIOD_S}
                for item in session["line_items_requested"]]},
        })  # fmt: skip
        session.update({"status": "complete", "payment_status": "paid", "subscription": subscription["id"]})
        self.event_emit("checkout.session.completed", session)
        self.event_emit("customer.subscription.created", subscription)
        self.event_emit("invoice.paid", self._invoice(subscription, paid=True))
        return session

    def _invoice(self, subscription: Json, *, paid: bool) -> Json:
        base = sum(int(item["price"]["unit_amount"] or 0) * (item["quantity"] or 0)
                   for item in subscription["items"]["data"]
                   if (item["price"]["recurring"] or {}).get("usage_type") != "metered")  # fmt: skip
        invoice_id = _new_id("in")
        return self._store({
            "id": invoice_id, "object": "invoice", "customer": subscription["customer"], "created": self.now(),
            "livemode": False, "status": "paid" if paid else "open", "currency": "usd",
            "amount_due": base, "amount_paid": base if paid else 0, "attempt_count": 1,
            "hosted_invoice_url": f"{self.url}/i/{invoice_id}",
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": subscription["id"], "metadata": {}}},
        })  # fmt: skip

    def portal_session_create(self, params: Json) -> Json:
        _require(params, "customer")
        self.get(params["customer"], "customer")
        session_id = _new_id("bps")
        return self._store({
            "id": session_id, "object": "billing_portal.session", "customer": params["customer"],
            "return_url": params.get("return_url"), "created": self.now(), "livemode": False,
            "url": f"{self.url}/p/session/{session_id}",
        })  # fmt: skip

    def subscription_update(self, subscription_id: str, params: Json) -> Json:
        subscription = self.get(subscription_id, "subscription")
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = params["cancel_at_period_end"] in ("true", True)
        if "metadata" in params:
            subscription["metadata"] = {**subscription["metadata"], **params["metadata"]}
        self.event_emit("customer.subscription.updated", subscription)
        return subscription

    def subscription_cancel(self, subscription_id: str) -> Json:
        subscription = self.get(subscription_id, "subscription")
        if subscription["status"] == "canceled":
            raise StripeError(400, "This subscription is already canceled.", code="resource_missing")
        now = self.now()
        subscription.update({"status": "canceled", "canceled_at": now, "ended_at": now})
        self.event_emit("customer.subscription.deleted", subscription)
        return subscription

    def subscription_status_set(self, subscription_id: str, status: str) -> Json:
        """Emulator control: the subscription reached ``status`` (dunning, recovery...)."""
        if status not in SUBSCRIPTION_STATUSES:
            raise StripeError(400, f"Unknown status {status}.", param="status")
        if status == "canceled":
            return self.subscription_cancel(subscription_id)
        subscription = self.get(subscription_id, "subscription")
        previous = subscription["status"]
        subscription["status"] = status
        if status == "past_due":
            self.event_emit("invoice.payment_failed", self._invoice(subscription, paid=False))
        elif status == "active" and previous in ("past_due", "unpaid"):
            self.event_emit("invoice.paid", self._invoice(subscription, paid=True))
        self.event_emit("customer.subscription.updated", subscription, previous={"status": previous})
        return subscription

    # -- webhooks --------------------------------------------------------------
    def event_emit(self, event_type: str, obj: Json, *, previous: Json | None = None) -> Json:
        data: Json = {"object": json.loads(json.dumps(obj))}
        if previous:
            data["previous_attributes"] = previous
        event = {"id": _new_id("evt"), "object": "event", "api_version": API_VERSION, "created": self.now(),
                 "type": event_type, "data": data, "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}}  # fmt: skip
        self.state.events.append(event)
        if self.webhook_url:
            self.event_deliver(event)
        return event

    def event_deliver(self, event: Json, *, timestamp: int | None = None) -> int:
        """POST ``event`` to the webhook endpoint, signed; returns the HTTP status (0 when unreachable)."""
        body = json.dumps(event).encode()
        signature = webhook_signature(body, self.webhook_secret, timestamp if timestamp is not None else self.now())
        request = urllib.request.Request(  # noqa: S310 (the configured loopback endpoint)
            self.webhook_url, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature,
                     "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        self.state.deliveries.append((event["id"], status))
        logger.info("stripe_emulator_webhook", event_type=event["type"], status=status)
        return status

    # -- HTTP ----------------------------------------------------------------
    def api(self, method: str, path: str, params: Json, url: str) -> Json:
        """Route one authenticated API request."""
        parts = [p for p in path.split("/") if p][1:]  # drop "v1"
        routes: dict[tuple[str, ...], Callable[[], Json]] = {
            ("POST", "customers"): lambda: self.customer_create(params),
            ("POST", "products"): lambda: self.product_create(params),
            ("POST", "prices"): lambda: self.price_create(params),
            ("POST", "billing", "meters"): lambda: self.meter_create(params),
            ("GET", "billing", "meters"): lambda: self._list("billing.meter", url),
            ("POST", "billing", "meter_events"): lambda: self.meter_event_create(params),
            ("POST", "checkout", "sessions"): lambda: self.checkout_session_create(params),
            ("POST", "billing_portal", "sessions"): lambda: self.portal_session_create(params),
            ("GET", "prices"): lambda: self._list("price", url),
        }
        key = (method, *parts)
        if key in routes:
            return routes[key]()
        kinds = {"customers": "customer", "prices": "price", "products": "product", "subscriptions": "subscription",
                 "invoices": "invoice", "checkout": "checkout.session"}  # fmt: skip
        if method == "GET" and len(parts) == 4 and parts[:2] == ["billing", "meters"] and parts[3] == "event_summaries":
            return self.meter_event_summaries(parts[2], params, url)
        if method == "GET" and len(parts) == 3 and parts[:2] == ["checkout", "sessions"]:
            return self.get(parts[2], "checkout.session")
        if method == "GET" and len(parts) == 2 and parts[0] in kinds:
            return self.get(parts[1], kinds[parts[0]])
        if method == "GET" and parts == ["subscriptions"]:
            customer = params.get("customer")
            return self._list("subscription", url, lambda s: customer in (None, s["customer"]))
        if method == "POST" and len(parts) == 2 and parts[0] == "subscriptions":
            return self.subscription_update(parts[1], params)
        if method == "DELETE" and len(parts) == 2 and parts[0] == "subscriptions":
            return self.subscription_cancel(parts[1])
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")


def _handler_for(emulator: StripeEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            try:
                with emulator._lock:
                    if split.path.startswith("/v1/"):
                        self._api(method, split.path, body or split.query)
                    elif split.path.startswith(("/c/pay/", "/p/session/", "/i/")):
                        self._hosted_page(method, split.path, form_decode(body))
                    elif split.path.startswith("/_emulator/"):
                        self._control(method, split.path, form_decode(body))
                    else:
                        raise StripeError(404, f"Unrecognized request URL ({method}: {split.path}).")
            except StripeError as exc:
                self._json(exc.status, exc.body)
            except (BrokenPipeError, ConnectionResetError):
                # The client went away (killed while the emulator hung); nobody is left to answer.
                self.close_connection = True

        def _api(self, method: str, path: str, encoded: str) -> None:
            if self.headers.get("Authorization", "") != f"Bearer {emulator.api_key}":
                raise StripeError(401, "Invalid API Key provided.", type_="invalid_request_error")
            params = form_decode(encoded)
            key = self.headers.get("Idempotency-Key") if method == "POST" else None
            if key:
                fingerprint = hashlib.sha256(
                    f"{method} {path} {json.dumps(params, sort_keys=True)}".encode()
                ).hexdigest()
                replay = emulator.state.idempotency.get(key)
                if replay is not None:
                    if replay[0] != fingerprint:
                        raise StripeError(400, "Keys for idempotent requests can only be used with the same parameters"
                                          " they were first used with.", type_="idempotency_error")  # fmt: skip
                    self._json(replay[1], replay[2], replayed=True)
                    return
            try:
                status, result = 200, emulator.api(method, path, params, path)
            except StripeError as exc:
                status, result = exc.status, exc.body
            if key and status < 500:
                emulator.state.idempotency[key] = (fingerprint, status, result)
            self._json(status, result)

        def _hosted_page(self, method: str, path: str, form: Json) -> None:
            object_id = path.rsplit("/", 1)[-1]
            if path.startswith("/i/"):
                invoice = emulator.get(object_id, "invoice")
                currency = invoice["currency"].upper()
                self._html(
                    f"<h1>Invoice {html.escape(invoice['id'])}</h1><p>Status: {html.escape(invoice['status'])}</p>"
                    f"<p>Amount due: {invoice['amount_due'] / 100:.2f} {currency}</p>"
                    f"<p>Amount paid: {invoice['amount_paid'] / 100:.2f} {currency}</p>"
                )
                return
            if path.startswith("/c/pay/"):
                session = emulator.get(object_id, "checkout.session")
                if method == "POST":
                    emulator.checkout_complete(object_id)
                    self._redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", object_id))
                    return
                prices = ", ".join(html.escape(i["price"]) for i in session["line_items_requested"])
                self._html(f'<h1>Checkout</h1><p>Subscribe: {prices}</p><form method="post">'
                           f'<button type="submit">Subscribe</button></form>'
                           f'<a href="{html.escape(session["cancel_url"] or "/")}">Cancel</a>')  # fmt: skip
                return
            portal = emulator.get(object_id, "billing_portal.session")
            subscriptions = [s for s in emulator.state.objects.values()
                             if s["object"] == "subscription" and s["customer"] == portal["customer"]]  # fmt: skip
            if method == "POST":
                for subscription in subscriptions:
                    if subscription["id"] == form.get("cancel") and subscription["status"] != "canceled":
                        emulator.subscription_cancel(subscription["id"])
                self._redirect(portal["return_url"] or "/")
                return
            rows = "".join(
                f'<li>{html.escape(s["id"])}: {html.escape(s["status"])} <form method="post">'
                f'<button name="cancel" value="{html.escape(s["id"])}">Cancel subscription</button></form></li>'
                for s in subscriptions
            )
            self._html(
                f'<h1>Billing</h1><ul>{rows}</ul><a href="{html.escape(portal["return_url"] or "/")}">Return</a>'
            )

        def _control(self, method: str, path: str, form: Json) -> None:
            parts = [p for p in path.split("/") if p][1:]
            if method == "GET" and parts == ["events"]:
                self._json(200, {"object": "list", "data": emulator.state.events})
            elif method == "POST" and len(parts) == 3 and parts[0] == "subscriptions" and parts[2] == "status":
                self._json(200, emulator.subscription_status_set(parts[1], str(form.get("status", ""))))
            else:
                raise StripeError(404, f"Unrecognized emulator URL ({method}: {path}).")

        def _json(self, status: int, body: Json, *, replayed: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", _new_id("req"))
            self.send_header("Stripe-Version", API_VERSION)
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(data)

        def _html(self, body: str) -> None:
            data = f"<!doctype html><html><body>{body}</body></html>".encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def query_string(params: Json) -> str:
    """Stripe's form encoding of ``params`` (the inverse of ``form_decode``), for tests and tools."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else key, item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append((prefix, str(value).lower() if isinstance(value, bool) else str(value)))

    walk("", params)
    return urlencode(pairs)
