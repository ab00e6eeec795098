"""Check a scenario's ``expect`` against what the product stored for the call.

``fetch_stored_call`` polls the tenant's schema for the ``Call`` (by the
carrier's CallSid) and its ``Ticket``, which a Dramatiq worker creates after
the call ends. ``check_expectations`` is pure: it compares a
``StoredCall`` snapshot with the scenario and returns readable mismatches.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, Final

import phonenumbers
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from calls.models import Call
from tenants.models import Tenant
from tickets.models import Callback, Ticket, UnansweredQuestion
from voicedesk.simulator.scenario import Expectations

TICKET_WAIT_S: Final = 30.0
_POLL_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class StoredTicket:
    """The ticket fields ``expect`` can check."""

    number: str
    caller_name: str
    callback_number: str
    category: str
    priority: str
    status: str
    summary: str
    faq_answered: tuple[str, ...]
    unanswered_questions: int
    callback_requested: bool


# The stages of a caller turn as stored, in the order they happen.
TURN_STAGES: tuple[str, ...] = (
    "pause_ms", "transcript_ms", "endpoint_ms", "decision_ms", "first_audio_ms", "first_frame_ms"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredCall:
    """What the product stored for one call, as far as the simulator cares."""

    call_id: int
    status: str
    end_reason: str
    captured: dict[str, Any]
    ticket: StoredTicket | None
    # What the product heard and said, for diagnosing a mismatch.
    utterances: tuple[tuple[str, str], ...] = ()
    # Server-side end of speech -> first frame sent, per turn, in ms.
    first_frame_ms: tuple[float, ...] = field(default=())
    # Every stored stage per turn (``TURN_STAGES``), in ms after the end of speech; None where not timed.
    stage_ms: tuple[dict[str, float | None], ...] = field(default=())

    @property
    def frames_sent(self) -> int:
        """Agent frames the server sent during the call."""
        return int(self.captured.get("frames_sent", 0) or 0)

    @property
    def frames_late(self) -> int:
        """Agent frames the server sent after the carrier needed them."""
        return int(self.captured.get("frames_late", 0) or 0)


def _schema_for(slug: str) -> str:
    return slug.replace("-", "_")


def load_stored_call(slug: str, call_sid: str) -> StoredCall | None:
    """One snapshot of the call ``call_sid`` in tenant ``slug``'s schema (None if there is no call)."""
    tenant = Tenant.objects.filter(schema_name=_schema_for(slug)).first()
    if tenant is None:
        return None
    with tenant_context(tenant):
        call = Call.objects.filter(carrier_call_id=call_sid).order_by("-pk").first()
        if call is None:
            return None
        ticket_row = Ticket.objects.filter(call=call).first()
        ticket = None
        if ticket_row is not None:
            ticket = StoredTicket(
                number=ticket_row.number,
                caller_name=ticket_row.caller_name,
                callback_number=ticket_row.callback_number,
                category=ticket_row.category,
                priority=ticket_row.priority,
                status=ticket_row.status,
                summary=ticket_row.summary,
                faq_answered=tuple(str(q) for q in ticket_row.faq_answered or ()),
                unanswered_questions=UnansweredQuestion.objects.filter(ticket=ticket_row).count(),
                callback_requested=Callback.objects.filter(ticket=ticket_row).exists(),
            )
        utterances = tuple(call.utterances.order_by("start_s", "pk").values_list("speaker", "text"))
        stages = tuple(call.turn_latencies.order_by("turn_index").values(*TURN_STAGES))
        return StoredCall(
            call_id=call.pk,
            status=call.status,
            end_reason=call.end_reason,
            captured=dict(call.captured or {}),
            ticket=ticket,
            utterances=utterances,
            first_frame_ms=tuple(float(turn["first_frame_ms"]) for turn in stages),
            stage_ms=stages,
        )


async def fetch_stored_call(slug: str, call_sid: str, *, timeout_s: float = TICKET_WAIT_S) -> StoredCall | None:
    """Poll until the call has its ticket or ``timeout_s`` passes; return the last snapshot."""
    load = sync_to_async(load_stored_call, thread_sensitive=True)
    deadline = time.monotonic() + timeout_s
    while True:
        stored = await load(slug, call_sid)
        if (stored is not None and stored.ticket is not None) or time.monotonic() >= deadline:
            return stored
        await asyncio.sleep(_POLL_S)


# The checks ``expect`` can ask for, by short name, in report order.
CHECKS: Final = (
    "name",
    "number",
    "category",
    "priority",
    "status",
    "summary",
    "faq_answered",
    "unanswered_questions",
    "callback",
)


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """One check of ``expect`` against the stored ticket: which, and the mismatch if it failed."""

    check: str  # one of ``CHECKS``
    mismatch: str = ""  # a readable sentence; empty when it passed

    @property
    def passed(self) -> bool:
        """True when the stored value is what ``expect`` asks for."""
        return not self.mismatch


def checks_asked(expect: Expectations) -> tuple[str, ...]:
    """The ``CHECKS`` that ``expect`` asks for (the rest are not checked)."""
    want = expect.ticket
    asked = {
        "name": want.caller_name is not None,
        "number": want.callback_number is not None,
        "category": want.category is not None,
        "priority": want.priority is not None,
        "status": want.status is not None,
        "summary": bool(want.summary_mentions),
        "faq_answered": expect.faq_answered is not None,
        "unanswered_questions": expect.unanswered_questions is not None,
        "callback": expect.callback_requested is not None,
    }
    return tuple(check for check in CHECKS if asked[check])


def check_fields(expect: Expectations, ticket: StoredTicket) -> list[FieldCheck]:
    """Each check ``expect`` asks for, against ``ticket``, in ``CHECKS`` order."""
    want = expect.ticket
    results: list[FieldCheck] = []

    def check(name: str, ok: bool, what: str, expected: object, got: object) -> None:
        results.append(FieldCheck(name, "" if ok else f"{what}: expected {expected!r}, got {got!r}"))

    for name in checks_asked(expect):
        if name == "name":
            assert want.caller_name is not None
            ok = _name_key(want.caller_name) == _name_key(ticket.caller_name)
            check(name, ok, "ticket.caller_name", want.caller_name, ticket.caller_name)
        elif name == "number":
            ok = want.callback_number == _e164(ticket.callback_number)
            check(name, ok, "ticket.callback_number", want.callback_number, ticket.callback_number)
        elif name in ("category", "priority", "status"):
            expected = getattr(want, name)
            check(name, expected == getattr(ticket, name), f"ticket.{name}", expected, getattr(ticket, name))
        elif name == "summary":
            missing = [word for word in want.summary_mentions if word.lower() not in ticket.summary.lower()]
            message = f"ticket.summary_mentions: {missing!r} not in summary {ticket.summary!r}" if missing else ""
            results.append(FieldCheck(name, message))
        elif name == "faq_answered":
            assert expect.faq_answered is not None
            ok = set(expect.faq_answered) == set(ticket.faq_answered)
            check(name, ok, "faq_answered", sorted(expect.faq_answered), sorted(ticket.faq_answered))
        elif name == "unanswered_questions":
            ok = expect.unanswered_questions == ticket.unanswered_questions
            check(name, ok, "unanswered_questions", expect.unanswered_questions, ticket.unanswered_questions)
        else:
            ok = expect.callback_requested == ticket.callback_requested
            check(name, ok, "callback_requested", expect.callback_requested, ticket.callback_requested)
    return results


def check_expectations(expect: Expectations, stored: StoredCall | None, *, call_sid: str = "") -> list[str]:
    """Every way ``stored`` differs from ``expect``, as readable sentences (empty: all good)."""
    if stored is None:
        return [f"the product stored no call with CallSid {call_sid or '?'}"]
    ticket = stored.ticket
    if ticket is None:
        return [
            f"no ticket for call {stored.call_id} within {TICKET_WAIT_S:.0f} s "
            f"(call status {stored.status!r}, end reason {stored.end_reason!r}); is a Dramatiq worker running?"
        ]
    return [result.mismatch for result in check_fields(expect, ticket) if not result.passed]


def _name_key(name: str) -> str:
    """Case- and punctuation-blind form of a name: "O'Brien, Mary-Ann" -> "obrien maryann"."""
    return " ".join(re.sub(r"[^\w\s]", "", name.lower()).split())


def _e164(number: str) -> str:
    """A stored number as E.164 (default region US); unparsable numbers are returned as they are."""
    try:
        parsed = phonenumbers.parse(number, "US")
    except phonenumbers.NumberParseException:
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


# -- ticket quality over many calls -------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallVerdict:
    """One call's checks, for the per-field rates of a run."""

    label: str  # "scenario-id#repeat"
    asked: tuple[str, ...]  # the ``CHECKS`` its scenario asks for
    failed: tuple[str, ...] = ()  # the asked checks that failed
    problem: str = ""  # the call failed as a whole (no call, no ticket, a carrier error)

    @property
    def exact(self) -> bool:
        """The call produced exactly the ticket its scenario expects."""
        return not self.problem and not self.failed


def call_verdict(
    label: str, expect: Expectations, stored: StoredCall | None, *, error: str | None = None, call_sid: str = ""
) -> CallVerdict:
    """Judge one call; a call that failed as a whole fails every check its scenario asks for."""
    asked = checks_asked(expect)
    if error:
        return CallVerdict(label=label, asked=asked, failed=asked, problem=error)
    if stored is None or stored.ticket is None:
        problem = check_expectations(expect, stored, call_sid=call_sid)[0]
        return CallVerdict(label=label, asked=asked, failed=asked, problem=problem)
    failed = tuple(result.check for result in check_fields(expect, stored.ticket) if not result.passed)
    return CallVerdict(label=label, asked=asked, failed=failed)


def quality_summary(verdicts: list[CallVerdict]) -> dict[str, Any]:
    """Exact-ticket rate overall and per check, and which calls missed on which checks.

    A check's rate counts only the calls whose scenario asks for it; rates are
    None when nothing was counted.
    """
    exact = sum(v.exact for v in verdicts)
    per_check: dict[str, dict[str, Any]] = {}
    for check in CHECKS:
        counted = [v for v in verdicts if check in v.asked]
        passed = sum(1 for v in counted if check not in v.failed)
        per_check[check] = {
            "checked": len(counted),
            "passed": passed,
            "rate": passed / len(counted) if counted else None,
        }
    return {
        "calls": len(verdicts),
        "exact": exact,
        "exact_rate": exact / len(verdicts) if verdicts else None,
        "checks": per_check,
        "missed": [{"call": v.label, "checks": list(v.failed), "problem": v.problem} for v in verdicts if not v.exact],
    }
