"""Help desk at scale: the inbox page and the ticket list API with 10,000 tickets and 10,000 calls.

Runs against a scratch database ``voicedesk_bench_helpdesk`` with DEBUG off
(cached templates, as in production). Requests go through Django's full
middleware stack in process (tenant resolution by Host, session, membership
check), so the figures exclude only the network and the ASGI server.
Prints p50/p95/max latency and the number of SQL queries per request.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from _django import django_setup

if TYPE_CHECKING:
    from tenants.models import Tenant, User

TICKETS = 10_000
CALLS = 10_000
CATEGORIES = ["leak", "no hot water", "blocked drain", "installation", "billing", "general"]
REASONS = [
    "kitchen sink is leaking",
    "no hot water since this morning",
    "shower drain is blocked",
    "quote for a new boiler",
    "question about my invoice",
    "toilet keeps running",
    "burst pipe in the basement",
    "low water pressure upstairs",
]
NAMES = ["Maria Gonzalez", "James Carter", "Aisha Patel", "Tom Nguyen", "Linda Brooks", "Omar Haddad", "Eva Novak"]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _fill(tenant: Tenant, members: list[User]) -> None:
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from calls.models import Call, Utterance
    from tickets.models import Callback, Ticket

    rng = random.Random(7)
    now = timezone.now()
    with tenant_context(tenant):
        calls = Call.objects.bulk_create(
            Call(
                carrier=Call.Carrier.TWILIO,
                carrier_call_id=f"CA{index:032d}",
                from_number=f"+1555{rng.randrange(10**7):07d}",
                to_number="+15550109999",
                status=Call.Status.COMPLETED if rng.random() > 0.1 else Call.Status.ABANDONED,
                end_reason="caller_hangup",
                answered_at=now,
                ended_at=now,
            )
            for index in range(CALLS)
        )
        Utterance.objects.bulk_create(
            Utterance(call=call, speaker=speaker, text=text, start_s=float(turn * 4), end_s=float(turn * 4 + 3))
            for call in calls
            for turn, (speaker, text) in enumerate(
                [
                    ("agent", "Thanks for calling Bench Plumbing, how can I help?"),
                    ("caller", f"Hi, my {rng.choice(REASONS)}."),
                    ("agent", "I can help with that. May I have your name?"),
                    ("caller", f"It's {rng.choice(NAMES)}."),
                ]
            )
        )
        statuses = [s for s, _ in Ticket.Status.choices]
        priorities = [p for p, _ in Ticket.Priority.choices]
        tickets = Ticket.objects.bulk_create(
            Ticket(
                subject=rng.choice(REASONS).capitalize(),
                summary="Caller reported a problem and asked for a callback.",
                caller_name=rng.choice(NAMES),
                callback_number=call.from_number,
                category=rng.choice(CATEGORIES),
                tags=rng.sample(["vip", "repeat", "landlord", "weekend"], k=rng.randrange(3)),
                priority=rng.choices(priorities, weights=[2, 6, 2, 1])[0],
                status=rng.choices(statuses, weights=[3, 3, 1, 2, 4])[0],
                source=Ticket.Source.PHONE,
                assignee=rng.choice([*members, None]),
                due_at=now + timedelta(hours=rng.randrange(-48, 96)),
                call=call,
            )
            for call in calls[:TICKETS]
        )
        Callback.objects.bulk_create(
            Callback(ticket=ticket, phone=ticket.callback_number, priority=ticket.priority, due_at=ticket.due_at)
            for ticket in tickets
            if rng.random() < 0.3
        )
        # Spread the rows over half a year, as a busy business would have them.
        for ticket in tickets:
            ticket.created_at = now - timedelta(minutes=rng.randrange(0, 180 * 24 * 60))
        Ticket.objects.bulk_update(tickets, ["created_at"], batch_size=2000)
        for call in calls:
            call.started_at = now - timedelta(minutes=rng.randrange(0, 180 * 24 * 60))
        Call.objects.bulk_update(calls, ["started_at"], batch_size=2000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per URL (after 10 warm-up ones)")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_DEBUG", "false")
    django_setup("voicedesk_bench_helpdesk")
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tenants.models import Membership, User
    from tenants.services import membership_add, tenant_create

    call_command("migrate_schemas", verbosity=0)
    call_command("platform_init", verbosity=0)
    owner = User.objects.create_user(email="owner@bench.example", password="x" * 16)
    tenant = tenant_create(name="Bench Plumbing", slug="bench", owner=owner)
    members: list[User] = [owner]
    for index in range(4):
        user = User.objects.create_user(email=f"agent{index}@bench.example", password="x" * 16)
        membership_add(tenant=tenant, user=user, role=Membership.Role.AGENT, actor=owner)
        members.append(user)
    started = time.perf_counter()
    _fill(tenant, members)
    print(f"filled {TICKETS} tickets and {CALLS} calls in {time.perf_counter() - started:.1f} s", flush=True)

    client = Client(HTTP_HOST="bench.localhost")
    client.force_login(owner)
    # (label, url, held to the 50 ms target)
    urls = [
        ("inbox page", "/tickets/", True),
        ("ticket list API", "/api/tickets/", True),
        ("inbox, open + high", "/tickets/?status=open&priority=high", False),
        ("inbox, search", "/tickets/?q=boiler", False),
        ("inbox, page 100", "/tickets/?page=100", False),
        ("ticket list API, open + high", "/api/tickets/?status=open&priority=high", False),
        ("call history", "/calls/", False),
        ("call history, transcript search", "/calls/?q=boiler", False),
    ]
    failed = False
    for label, url, held in urls:
        for _ in range(10):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
        durations: list[float] = []
        queries: list[int] = []
        for _ in range(args.requests):
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                response = client.get(url)
                durations.append((time.perf_counter() - began) * 1000)
            queries.append(len(captured))
        p95 = _percentile(durations, 0.95)
        target = ("  (target p95 <= 50 ms: " + ("met)" if p95 <= 50 else "MISSED)")) if held else ""
        failed |= held and p95 > 50
        print(
            f"{label:32s} p50 {statistics.median(durations):6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {max(durations):6.1f} ms  queries/request {min(queries)}-{max(queries)}{target}",
            flush=True,
        )
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
