from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.factories import TicketFactory, UserFactory
from tickets.forms import (
    CallbackOutcomeForm,
    QuestionToFaqForm,
    TicketAssignForm,
    TicketCreateForm,
    TicketFilterForm,
    TicketUpdateForm,
    tags_split,
)
from tickets.selectors import OPEN_STATUSES, TicketFilters

NEW_YORK = ZoneInfo("America/New_York")
BAD_CHOICE = "Select a valid choice. {} is not one of the available choices."


@pytest.fixture
def members(db) -> list:
    return [UserFactory(email="amy@alpha.test"), UserFactory(email="bob@alpha.test")]


def _filter_form(data: dict | None, members: list, zone: ZoneInfo = NEW_YORK) -> TicketFilterForm:
    return TicketFilterForm(data, members=members, categories=["billing", "leak"], zone=zone)


def test_unbound_filter_form_gives_the_default_inbox(members) -> None:
    assert _filter_form(None, members).filters() == TicketFilters(statuses=OPEN_STATUSES, sort="-created")


def test_filter_form_turns_input_into_filters(members) -> None:
    form = _filter_form(
        {
            "q": " T-12 ",
            "status": "pending",
            "priority": "urgent",
            "category": "leak",
            "assignee": str(members[1].pk),
            "created_from": "2030-11-25",
            "created_to": "2030-11-26",
            "overdue": "on",
            "sort": "priority",
        },
        members,
    )

    assert form.filters() == TicketFilters(
        statuses=("pending",),
        priority="urgent",
        category="leak",
        assignee=members[1].pk,
        # Midnight in New York (EST, UTC-5); "to" includes the whole day.
        created_from=datetime(2030, 11, 25, 5, 0, tzinfo=UTC),
        created_before=datetime(2030, 11, 27, 5, 0, tzinfo=UTC),
        overdue=True,
        q="T-12",
        sort="priority",
    )
    assert form.errors == {}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"status": "any"}, {"statuses": ()}),
        ({"status": "active"}, {"statuses": OPEN_STATUSES}),
        ({"assignee": "me"}, {"assignee": "me"}),
        ({"assignee": "none"}, {"assignee": "none"}),
        ({"sort": "-due"}, {"sort": "-due"}),
    ],
)
def test_filter_form_special_values(members, data: dict, expected: dict) -> None:
    filters = _filter_form(data, members).filters()

    for name, value in expected.items():
        assert getattr(filters, name) == value


def test_invalid_filters_are_reported_and_ignored(members) -> None:
    stranger = UserFactory(email="stranger@beta.test")
    form = _filter_form(
        {
            "status": "archived",
            "priority": "asap",
            "category": "space travel",
            "assignee": str(stranger.pk),
            "created_from": "yesterday",
            "sort": "random",
            "q": "leak",
        },
        members,
    )

    assert form.filters() == TicketFilters(q="leak")
    assert set(form.errors) == {"status", "priority", "category", "assignee", "created_from", "sort"}


def test_end_date_before_start_date_is_an_error(members) -> None:
    form = _filter_form({"created_from": "2030-11-25", "created_to": "2030-11-24"}, members, zone=ZoneInfo("UTC"))

    filters = form.filters()

    assert form.errors == {"created_to": ["The end date must not be before the start date."]}
    assert (filters.created_from, filters.created_before) == (datetime(2030, 11, 25, tzinfo=UTC), None)


def test_create_form_cleans_tags_and_assignee(members) -> None:
    form = TicketCreateForm(
        {
            "subject": "Boiler",
            "priority": "high",
            "tags": "VIP, landlord , ,vip",
            "assignee": str(members[0].pk),
            "email": "ann@example.com",
        },
        members=members,
    )

    assert form.is_valid(), form.errors
    assert (form.cleaned_data["tags"], form.cleaned_data["assignee"]) == (["vip", "landlord"], members[0])


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"subject": "", "priority": "normal"}, {"subject": ["This field is required."]}),
        ({"subject": "x", "priority": "asap"}, {"priority": [BAD_CHOICE.format("asap")]}),
        ({"subject": "x", "priority": "low", "email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        ({"subject": "x", "priority": "low", "tags": "a" * 51}, {"tags": ["Tags can be at most 50 characters long."]}),
    ],
)
def test_create_form_errors(members, data: dict, errors: dict) -> None:
    form = TicketCreateForm(data, members=members)

    assert not form.is_valid()
    assert form.errors == errors


def test_create_form_refuses_someone_who_is_not_a_member(members) -> None:
    stranger = UserFactory(email="stranger@beta.test")
    form = TicketCreateForm({"subject": "x", "priority": "low", "assignee": str(stranger.pk)}, members=members)

    assert not form.is_valid()
    assert list(form.errors) == ["assignee"]


@pytest.mark.parametrize(
    ("status", "offered"),
    [
        ("new", ["new", "open", "pending", "resolved", "closed"]),
        ("open", ["open", "pending", "resolved", "closed"]),
        ("resolved", ["open", "resolved", "closed"]),
        ("closed", ["closed"]),
    ],
)
def test_update_form_offers_only_the_statuses_the_ticket_can_move_to(in_tenant_a, status: str, offered) -> None:
    form = TicketUpdateForm(ticket=TicketFactory(status=status))

    assert [value for value, _ in form.fields["status"].choices] == offered


def test_update_form_changes_only_what_was_posted(in_tenant_a) -> None:
    ticket = TicketFactory(status="open", tags=["vip"])

    form = TicketUpdateForm({"tags": "Landlord, VIP"}, ticket=ticket)

    assert form.is_valid()
    assert form.changes() == {"tags": ["landlord", "vip"]}


def test_update_form_refuses_a_status_outside_the_flow(in_tenant_a) -> None:
    form = TicketUpdateForm({"status": "new"}, ticket=TicketFactory(status="open"))

    assert not form.is_valid()
    assert form.errors == {"status": [BAD_CHOICE.format("new")]}


def test_assign_form_empty_means_nobody(members) -> None:
    form = TicketAssignForm({"assignee": ""}, members=members)

    assert form.is_valid()
    assert form.cleaned_data["assignee"] is None


def test_tags_split() -> None:
    assert tags_split(" a ,B,, a") == ["a", "b"]


def test_outcome_form_reads_the_new_time_in_the_business_time_zone() -> None:
    form = CallbackOutcomeForm(
        {"outcome": "no_answer", "reschedule_at": "2030-11-25T10:30", "note": "  rang twice "}, zone=NEW_YORK
    )

    assert form.is_valid(), form.errors
    assert form.cleaned_data == {
        "outcome": "no_answer",
        "note": "rang twice",
        "reschedule_at": datetime(2030, 11, 25, 15, 30, tzinfo=UTC),
        "resolve_ticket": False,
    }
    assert form.fields["reschedule_at"].help_text == (
        "Optional, for no answer or voicemail. Time zone: America/New_York."
    )


def test_outcome_form_refuses_a_time_that_does_not_exist_there() -> None:
    # 02:30 on 9 March 2031 is skipped in New York: clocks go from 02:00 to 03:00.
    form = CallbackOutcomeForm({"outcome": "no_answer", "reschedule_at": "2031-03-09T02:30"}, zone=NEW_YORK)

    assert not form.is_valid()
    assert list(form.errors) == ["reschedule_at"]


@pytest.mark.parametrize("outcome", ["", "pending", "busy"])
def test_outcome_form_needs_a_real_outcome(outcome: str) -> None:
    form = CallbackOutcomeForm({"outcome": outcome}, zone=NEW_YORK)

    assert not form.is_valid()
    assert list(form.errors) == ["outcome"]


def test_question_form_needs_both_fields() -> None:
    form = QuestionToFaqForm({"question": "Boilers?", "answer": "  "})

    assert not form.is_valid()
    assert form.errors == {"answer": ["The answer is required."]}


def test_question_form_has_the_faqs_length_limits() -> None:
    form = QuestionToFaqForm({"question": "Q" * 501, "answer": "A" * 2001})

    assert not form.is_valid()
    assert form.errors == {
        "question": ["Ensure this value has at most 500 characters (it has 501)."],
        "answer": ["Ensure this value has at most 2000 characters (it has 2001)."],
    }
