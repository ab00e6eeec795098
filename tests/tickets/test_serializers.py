"""Ticket serializers: what the API shows and which input it accepts."""

from datetime import UTC, datetime

import pytest
import time_machine

from tests.factories import CallbackFactory, MembershipFactory, TicketFactory
from tickets.serializers import (
    CallbackOutcomeSerializer,
    TicketChangeSerializer,
    TicketCreateSerializer,
    TicketUpdateSerializer,
)
from tickets.services import ticket_update

MONDAY_10 = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)


def test_create_input_resolves_the_assignee_to_a_member(in_tenant_a) -> None:
    serializer = TicketCreateSerializer(data={"subject": "Leak", "assignee": in_tenant_a.owner.pk, "tags": ["A"]})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"subject": "Leak", "assignee": in_tenant_a.owner, "tags": ["A"]}


def test_an_inactive_member_cannot_be_assigned(in_tenant_a) -> None:
    member = MembershipFactory(tenant=in_tenant_a.tenant, role="agent").user
    member.is_active = False
    member.save()

    serializer = TicketUpdateSerializer(data={"assignee": member.pk})

    assert not serializer.is_valid()
    assert serializer.errors == {"assignee": ["The assignee must be a member of this business."]}


def test_null_assignee_means_nobody(in_tenant_a) -> None:
    serializer = TicketUpdateSerializer(data={"assignee": None})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"assignee": None}


def test_update_input_only_knows_editable_fields(in_tenant_a) -> None:
    serializer = TicketUpdateSerializer(data={"status": "open", "source": "phone", "due_at": "2030-01-01T00:00:00Z"})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"status": "open"}


def test_tags_are_limited_in_length(in_tenant_a) -> None:
    serializer = TicketCreateSerializer(data={"subject": "x", "tags": ["y" * 51]})

    assert not serializer.is_valid()
    assert serializer.errors == {"tags": {0: ["Ensure this field has no more than 50 characters."]}}


@time_machine.travel(MONDAY_10, tick=False)
def test_a_change_shows_its_actor_by_email_or_null_for_the_system(in_tenant_a) -> None:
    ticket = TicketFactory(status="new")
    ticket_update(ticket_id=ticket.pk, actor=in_tenant_a.owner, status="open")
    ticket_update(ticket_id=ticket.pk, actor=None, status="pending")

    data = TicketChangeSerializer(ticket.changes.order_by("id"), many=True).data

    assert [(c["field"], c["old_value"], c["new_value"], c["actor"]) for c in data] == [
        ("status", "new", "open", "owner@alpha.test"),
        ("status", "open", "pending", None),
    ]


def test_outcome_input_has_no_pending_choice_and_sensible_defaults(in_tenant_a) -> None:
    CallbackFactory()
    serializer = CallbackOutcomeSerializer(data={"outcome": "voicemail"})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "outcome": "voicemail",
        "note": "",
        "reschedule_at": None,
        "resolve_ticket": False,
    }
    assert sorted(serializer.fields["outcome"].choices) == ["no_answer", "reached", "voicemail", "wrong_number"]


def test_a_reschedule_time_without_a_time_zone_is_refused(in_tenant_a) -> None:
    serializer = CallbackOutcomeSerializer(data={"outcome": "no_answer", "reschedule_at": "2030-11-25T15:00:00"})

    assert serializer.is_valid() is False
    assert serializer.errors == {
        "reschedule_at": ["Give the time with its time zone, e.g. 2030-11-25T15:00:00Z or 2030-11-25T10:00:00-05:00."]
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-11-25T15:00:00Z", datetime(2030, 11, 25, 15, 0, tzinfo=UTC)),
        ("2030-11-25T10:00:00-05:00", datetime(2030, 11, 25, 15, 0, tzinfo=UTC)),
    ],
)
def test_a_reschedule_time_with_a_time_zone_is_read_as_that_instant(in_tenant_a, value: str, expected) -> None:
    serializer = CallbackOutcomeSerializer(data={"outcome": "no_answer", "reschedule_at": value})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["reschedule_at"] == expected
