"""The demo build's entry point: ``demo_data_build`` fills a tenant with the demo month."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import datetime

import structlog
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from calls.models import Call
from tenants.models import Membership, Tenant, User
from tenants.services import membership_add
from tickets.models import Callback, Ticket, UnansweredQuestion
from voicedesk.demo.builder import DemoBuilder
from voicedesk.demo.story import DEMO_AGENTS, DEMO_RECORDINGS, DEMO_SEED

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoResult:
    """What the demo tenant holds after a build; ``created`` is False when it already had data."""

    created: bool
    calls: int
    tickets: int
    callbacks: int
    unanswered_questions: int
    recordings: int


def demo_data_build(
    *,
    tenant: Tenant,
    admin: User,
    now: datetime | None = None,
    seed: int = DEMO_SEED,
    recordings: int = DEMO_RECORDINGS,
) -> DemoResult:
    """Fill ``tenant`` with a month of demo activity; do nothing if it already has calls.

    ``admin`` is the business's owner or admin; two demo agents join the team.
    ``now`` is when the story ends (default: the current time); it must not
    be in the future. Recordings need the ``espeak-ng`` program and are
    skipped without it.
    """
    with tenant_context(tenant):
        if Call.objects.exists():
            return _result(created=False)
    real_now = timezone.now()
    if now is not None and now > real_now:
        # The backdating tells story times from real ones by the real time being later.
        raise ValueError(f"the demo's now ({now.isoformat()}) must not be in the future")
    now = (now or real_now).replace(microsecond=0)
    staff = [admin, *_demo_agents(tenant=tenant, actor=admin)]
    with tenant_context(tenant):
        builder = DemoBuilder(tenant=tenant, staff=staff, now=now, rng=random.Random(seed))
        builder.plan(recordings=recordings if shutil.which("espeak-ng") else 0)
        with transaction.atomic():
            builder.run()
        result = _result(created=True)
    logger.info("demo_data_built", tenant=tenant.schema_name, calls=result.calls, tickets=result.tickets)
    return result


def _result(*, created: bool) -> DemoResult:
    return DemoResult(
        created=created,
        calls=Call.objects.count(),
        tickets=Ticket.objects.count(),
        callbacks=Callback.objects.count(),
        unanswered_questions=UnansweredQuestion.objects.count(),
        recordings=Call.objects.exclude(recording="").count(),
    )


def _demo_agents(*, tenant: Tenant, actor: User) -> list[User]:
    """Two agents who work the queue; they cannot sign in (no password)."""
    agents = []
    for email, first, last in DEMO_AGENTS:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=None, first_name=first, last_name=last)
        if not Membership.objects.filter(user=user, tenant=tenant).exists():
            membership_add(tenant=tenant, user=user, role=Membership.Role.AGENT, actor=actor)
        agents.append(user)
    return agents
