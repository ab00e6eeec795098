"""LiveKit's side of the product: number provisioning (dispatch rules), webhook events and call records.

Numbers live in ``tenants``; it tells us of each registration and removal
through ``tenants.hooks.phone_number_hook_register`` and we keep LiveKit's
dispatch rules in step, as Dramatiq jobs. Webhook events and the agent
worker both open the call (``call_start`` is idempotent on the room name);
the agent finishes it with what was said, and a call LiveKit reports ended
that no agent finished is finished after a grace period, so none is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from livekit import api
from livekit.protocol import models as lk_models
from livekit.protocol import webhook

from calls.models import Call
from calls.services import call_finish, call_start
from calls.transports.livekit import rules
from tenants.models import PhoneNumber, RoutingState, Tenant
from tenants.selectors import tenant_for_phone_number
from tenants.services import phone_number_routing_set

logger = structlog.get_logger(__name__)

CARRIER = Call.Carrier.LIVEKIT


class RetryableLiveKitError(Exception):
    """LiveKit could not be reached or failed on its side (5xx): worth another try."""


# -- numbers and dispatch rules --------------------------------------------------------------


def livekit_number_provision(*, number_id: int, final_attempt: bool = False) -> str:
    """Give a number its dispatch rule (or adopt the one a crashed earlier attempt made); returns the rule id.

    LiveKit refusing the rule (4xx) marks the number failed with LiveKit's
    message. An outage raises ``RetryableLiveKitError`` and leaves it pending
    with the reason, unless ``final_attempt``: then it is marked failed too.
    """
    phone = PhoneNumber.objects.select_related("tenant").filter(pk=number_id).first()
    if phone is None:
        return ""  # removed before its rule was made
    schema_name = phone.tenant.schema_name
    try:
        existing = [rule for rule in rules.rules_list() if rule.e164 == phone.e164]
        keep = next((rule for rule in existing if rule.schema_name == schema_name), None)
        stale = [rule.rule_id for rule in existing if rule is not keep]
        if stale:
            rules.rules_delete(stale)
        rule_id = keep.rule_id if keep is not None else rules.rule_create(e164=phone.e164, schema_name=schema_name)
    except api.ServerError as exc:
        if exc.status < 500:
            phone_number_routing_set(number_id=number_id, state=RoutingState.FAILED, error=f"LiveKit: {exc.message}")
            logger.warning("livekit_rule_refused", number_id=number_id, code=exc.code)
            return ""
        return _retry_or_fail(number_id, f"LiveKit answered {exc.status}", final_attempt)
    except (OSError, TimeoutError) as exc:
        return _retry_or_fail(number_id, f"LiveKit unreachable ({type(exc).__name__})", final_attempt)
    if not phone_number_routing_set(number_id=number_id, state=RoutingState.ACTIVE, ref=rule_id):
        rules.rules_delete([rule_id])  # removed while we worked: its release found no rule yet
        return ""
    logger.info("livekit_rule_active", number_id=number_id, rule_id=rule_id)
    return rule_id


def _retry_or_fail(number_id: int, reason: str, final_attempt: bool) -> str:
    state = RoutingState.FAILED if final_attempt else RoutingState.PENDING
    suffix = "" if final_attempt else "; trying again"
    phone_number_routing_set(number_id=number_id, state=state, error=f"{reason}{suffix}.")
    if final_attempt:
        logger.error("livekit_rule_failed", number_id=number_id, reason=reason)
        return ""
    raise RetryableLiveKitError(reason)


def livekit_number_release(*, e164: str, rule_id: str = "") -> list[str]:
    """Delete the removed number's rules (by id, and any other of ours for the number); returns those deleted."""
    try:
        doomed = {rule.rule_id for rule in rules.rules_list() if rule.e164 == e164}
        if rule_id:
            doomed.add(rule_id)
        return rules.rules_delete(sorted(doomed))
    except api.ServerError as exc:
        if exc.status >= 500:
            raise RetryableLiveKitError(f"LiveKit answered {exc.status}") from exc
        raise
    except (OSError, TimeoutError) as exc:
        raise RetryableLiveKitError(f"LiveKit unreachable ({type(exc).__name__})") from exc


@dataclass(frozen=True, slots=True)
class RuleDifference:
    e164: str
    fixed: str  # what was done, in words

    def __str__(self) -> str:
        return f"{self.e164}: {self.fixed}"


def livekit_rules_sync() -> list[RuleDifference]:
    """Make LiveKit's dispatch rules match our numbers exactly; returns each difference fixed.

    A number without a rule gets one; a rule for a number we no longer have,
    for the wrong business, or a second rule for a number is deleted (the one
    recorded on the number is kept); a number whose recorded rule id or state
    is wrong is corrected.
    """
    differences: list[RuleDifference] = []
    numbers = {p.e164: p for p in PhoneNumber.objects.select_related("tenant").order_by("e164")}
    by_number: dict[str, list[rules.OurRule]] = {}
    for rule in sorted(rules.rules_list(), key=lambda r: r.rule_id):
        by_number.setdefault(rule.e164, []).append(rule)
    kept: dict[str, rules.OurRule] = {}
    doomed: list[tuple[rules.OurRule, str]] = []
    for e164, group in by_number.items():
        phone = numbers.get(e164)
        if phone is None:
            doomed += [(rule, f"deleted rule {rule.rule_id}: no business has this number") for rule in group]
            continue
        right = [rule for rule in group if rule.schema_name == phone.tenant.schema_name]
        doomed += [
            (rule, f"deleted rule {rule.rule_id}: it dispatched to another business")
            for rule in group
            if rule not in right
        ]
        if right:
            keep = next((rule for rule in right if rule.rule_id == phone.routing_ref), right[0])
            kept[e164] = keep
            doomed += [(rule, f"deleted duplicate rule {rule.rule_id}") for rule in right if rule is not keep]
    if doomed:
        rules.rules_delete([rule.rule_id for rule, _ in doomed])
        differences += [RuleDifference(rule.e164, words) for rule, words in doomed]
    for e164, phone in numbers.items():
        found = kept.get(e164)
        if found is None:
            rule_id = rules.rule_create(e164=e164, schema_name=phone.tenant.schema_name)
            phone_number_routing_set(number_id=phone.pk, state=RoutingState.ACTIVE, ref=rule_id)
            differences.append(RuleDifference(e164, f"created rule {rule_id}"))
        elif phone.routing_ref != found.rule_id or phone.routing_state != RoutingState.ACTIVE:
            phone_number_routing_set(number_id=phone.pk, state=RoutingState.ACTIVE, ref=found.rule_id)
            differences.append(RuleDifference(e164, f"recorded rule {found.rule_id} as active"))
    logger.info("livekit_rules_synced", differences=len(differences))
    return sorted(differences, key=lambda d: (d.e164, d.fixed))


# -- webhooks ----------------------------------------------------------------------------------


def _metadata_tenant(metadata: str) -> str:
    try:
        value = json.loads(metadata or "{}")
    except json.JSONDecodeError:
        return ""
    return str(value.get("tenant", "")) if isinstance(value, dict) else ""


def _tenant_for_sip_participant(attributes: dict[str, str], metadata: str, *, prefer_metadata: bool) -> Tenant | None:
    """The business a SIP call is for: the tenant our rule stamped on it (job metadata, participant attribute),
    else the dialled number's."""
    stamped = [_metadata_tenant(metadata), attributes.get(rules.TENANT_ATTRIBUTE, "")]
    if not prefer_metadata:
        stamped.reverse()
    for schema_name in filter(None, stamped):
        tenant = Tenant.objects.filter(schema_name=schema_name, is_template=False).first()
        if tenant is not None:
            return tenant
    dialled = attributes.get("sip.trunkPhoneNumber", "")
    return tenant_for_phone_number(number=dialled) if dialled else None


def livekit_call_open(
    *, room_name: str, attributes: dict[str, str], metadata: str = "", prefer_metadata: bool = False
) -> tuple[Tenant, Call] | None:
    """The SIP caller is in ``room_name``: record the ringing call (idempotent), or None for no business.

    The agent passes its job's metadata (``prefer_metadata``); webhooks have the participant's attributes.
    """
    tenant = _tenant_for_sip_participant(attributes, metadata, prefer_metadata=prefer_metadata)
    if tenant is None:
        logger.info("livekit_call_unrouted", room=room_name)
        return None
    call = call_start(
        tenant=tenant,
        carrier=CARRIER,
        carrier_call_id=room_name,
        from_number=attributes.get("sip.phoneNumber", ""),
        to_number=attributes.get("sip.trunkPhoneNumber", ""),
    )
    return tenant, call


FinishLater = Callable[[str, int, str], None]


def livekit_webhook_apply(event: webhook.WebhookEvent, *, finish_later: FinishLater) -> str:
    """Apply one verified, fresh, first-seen webhook event; returns what it did, in a word, for the log."""
    kind = event.event
    is_sip = event.participant.kind == lk_models.ParticipantInfo.SIP
    if kind == "participant_joined" and is_sip:
        opened = livekit_call_open(
            room_name=event.room.name, attributes=dict(event.participant.attributes), metadata=event.room.metadata
        )
        return "opened" if opened else "unrouted"
    if (kind == "participant_left" and is_sip) or kind == "room_finished":
        reason = "caller_hangup" if kind == "participant_left" else "room_finished"
        return livekit_call_ended(
            room_name=event.room.name, metadata=event.room.metadata, reason=reason, finish_later=finish_later
        )
    return "ignored"


def _call_for_room(room_name: str, metadata: str) -> tuple[Tenant, Call] | None:
    """The call held in ``room_name``: in the business the room's metadata names, else searched for."""
    named = _metadata_tenant(metadata)
    tenants = Tenant.objects.filter(is_template=False).exclude(schema_name="public")
    if named:
        tenants = tenants.filter(schema_name=named)
    for tenant in tenants:
        with tenant_context(tenant):
            call = Call.objects.filter(carrier=CARRIER, carrier_call_id=room_name).first()
        if call is not None:
            return tenant, call
    return None


def livekit_call_ended(*, room_name: str, reason: str, finish_later: FinishLater, metadata: str = "") -> str:
    """LiveKit says the caller or the room is gone.

    A call no agent answered is finished now. One in progress is the agent's
    to finish with what was said; if it has not within
    ``LIVEKIT_FINISH_GRACE_S`` (agent crashed, worker lost),
    ``finish_later(schema, call id, reason)`` (a delayed job) finishes it,
    so a call is always closed.
    """
    found = _call_for_room(room_name, metadata)
    if found is None:
        return "unknown"
    tenant, call = found
    if call.ended_at is not None:
        return "already_finished"
    if call.status == Call.Status.RINGING:
        with tenant_context(tenant):
            call_finish(call_id=call.pk, end_reason=f"{reason}_before_answer", outcome={}, completed=False)
        return "finished"
    transaction.on_commit(lambda: finish_later(tenant.schema_name, call.pk, reason))
    return "grace"


def livekit_call_finish_overdue(*, call_id: int, reason: str) -> bool:
    """Finish a call (in the active schema) that LiveKit ended but no agent finished; True if it had to."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None or call.ended_at is not None:
        return False
    call_finish(call_id=call.pk, end_reason=f"{reason}_agent_lost", outcome={}, completed=False)
    logger.warning("livekit_call_finished_without_agent", call_id=call_id)
    return True


def webhook_is_stale(event: webhook.WebhookEvent, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    created = datetime.fromtimestamp(event.created_at, tz=UTC)
    return abs((now - created).total_seconds()) > settings.LIVEKIT_WEBHOOK_MAX_AGE_S
