from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import FloatField
from django_tenants.utils import tenant_context

from calls import selectors
from calls.models import AgentConfig, Call, FaqEntry, TurnLatency
from calls.selectors import CallFilters, Percentile
from calls.services import agent_config_update
from tests.calls.factories_history import call_at, tenant_timezone_set
from tests.factories import (
    CallFactory,
    FaqEntryFactory,
    TicketFactory,
    TurnLatencyFactory,
    UtteranceFactory,
    outcome,
)
from tickets.services import ticket_sla_due

NOW = datetime(2030, 3, 10, 15, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def _ids(calls) -> list[int]:
    return [call.pk for call in calls]


def _list(tenant, **filters) -> list[Call]:
    return list(selectors.call_list(tenant=tenant, filters=CallFilters(**filters), tz=selectors.UTC))


def test_history_rows_carry_caller_name_duration_ticket_and_turn_count(in_tenant_a) -> None:
    call = call_at(NOW, talk_s=125.0, name="Maria Gonzalez", end_reason="caller_hangup")
    ticket = TicketFactory(call=call)
    for index in range(3):
        TurnLatencyFactory(call=call, turn_index=index)
    quiet = call_at(NOW - timedelta(hours=1), talk_s=None, status=Call.Status.ABANDONED, captured={})

    rows = _list(in_tenant_a.tenant)

    assert _ids(rows) == [call.pk, quiet.pk]
    first, second = rows
    assert (first.caller_name, first.duration, first.ticket_pk, first.turn_count) == (
        "Maria Gonzalez",
        timedelta(seconds=125),
        ticket.pk,
        3,
    )
    assert (second.caller_name, second.duration, second.ticket_pk, second.turn_count) == (None, None, None, 0)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("555-0199", []),
        ("5550199", ["by_number"]),
        ("gonzalez", ["by_name"]),
        ("CAspecial", ["by_carrier_id"]),
        ("boiler", ["by_transcript"]),
        ("BOILER pressure", ["by_transcript"]),
        ("nothing like this", []),
    ],
)
def test_search_matches_number_name_carrier_id_and_transcript(in_tenant_a, query: str, expected: list[str]) -> None:
    calls = {
        "by_number": call_at(NOW - timedelta(minutes=1), from_number="+15555550199", name="Ann Lee"),
        "by_name": call_at(NOW - timedelta(minutes=2), name="Maria Gonzalez"),
        "by_carrier_id": call_at(NOW - timedelta(minutes=3), carrier_call_id="CAspecial0001", name="Bo Chen"),
        "by_transcript": call_at(NOW - timedelta(minutes=4), name="Dee Park"),
    }
    UtteranceFactory(call=calls["by_transcript"], text="The boiler pressure keeps dropping.")
    UtteranceFactory(call=calls["by_name"], text="My sink is leaking.")

    assert _ids(_list(in_tenant_a.tenant, q=query)) == [calls[name].pk for name in expected]


def test_a_call_whose_transcript_matches_many_times_is_listed_once(in_tenant_a) -> None:
    call = call_at(NOW, name="Ann Lee")
    for _ in range(4):
        UtteranceFactory(call=call, text="leak under the sink")

    rows = selectors.call_list(tenant=in_tenant_a.tenant, filters=CallFilters(q="leak"), tz=selectors.UTC)

    assert _ids(rows) == [call.pk]
    assert rows.count() == 1


def test_status_filter(in_tenant_a) -> None:
    completed = call_at(NOW)
    abandoned = call_at(NOW - timedelta(minutes=5), status=Call.Status.ABANDONED)
    call_at(NOW - timedelta(minutes=9), status=Call.Status.FAILED)

    assert _ids(_list(in_tenant_a.tenant, status="abandoned")) == [abandoned.pk]
    assert _ids(_list(in_tenant_a.tenant, status="completed")) == [completed.pk]


def test_date_filters_are_calendar_days_in_the_tenants_time_zone(in_tenant_a) -> None:
    tenant_timezone_set("America/New_York")
    # 03:30 UTC on 10 March is 22:30 on 9 March in New York (EST, UTC-5).
    late_on_the_9th = call_at(datetime(2030, 3, 10, 3, 30, tzinfo=UTC))
    early_on_the_10th = call_at(datetime(2030, 3, 10, 5, 30, tzinfo=UTC))
    on_the_8th = call_at(datetime(2030, 3, 8, 12, 0, tzinfo=UTC))
    tz = selectors.agent_timezone(tenant=in_tenant_a.tenant)

    def listed(**filters) -> list[int]:
        return _ids(selectors.call_list(tenant=in_tenant_a.tenant, filters=CallFilters(**filters), tz=tz))

    assert listed(date_from=date(2030, 3, 9), date_to=date(2030, 3, 9)) == [late_on_the_9th.pk]
    assert listed(date_from=date(2030, 3, 10)) == [early_on_the_10th.pk]
    assert listed(date_to=date(2030, 3, 9)) == [late_on_the_9th.pk, on_the_8th.pk]


def test_sorting_by_start_and_by_duration_with_unanswered_calls_last(in_tenant_a) -> None:
    short = call_at(NOW - timedelta(minutes=1), talk_s=30)
    long = call_at(NOW - timedelta(minutes=2), talk_s=300)
    never = call_at(NOW - timedelta(minutes=3), talk_s=None, status=Call.Status.ABANDONED)
    middle = call_at(NOW - timedelta(minutes=4), talk_s=90)

    assert _ids(_list(in_tenant_a.tenant)) == [short.pk, long.pk, never.pk, middle.pk]
    assert _ids(_list(in_tenant_a.tenant, sort="started")) == [middle.pk, never.pk, long.pk, short.pk]
    assert _ids(_list(in_tenant_a.tenant, sort="-duration")) == [long.pk, middle.pk, short.pk, never.pk]
    assert _ids(_list(in_tenant_a.tenant, sort="duration")) == [short.pk, middle.pk, long.pk, never.pk]


def test_history_is_one_query_whatever_the_rows_hold(in_tenant_a, django_assert_num_queries) -> None:
    for minute in range(5):
        call = call_at(NOW - timedelta(minutes=minute), name=f"Caller {minute}")
        TicketFactory(call=call)
        TurnLatencyFactory(call=call, turn_index=0)
        UtteranceFactory(call=call, text="hello")

    with django_assert_num_queries(1):
        rows = _list(in_tenant_a.tenant, q="hello")
        assert [(row.caller_name, row.turn_count, row.ticket_pk is not None) for row in rows] == [
            (f"Caller {minute}", 1, True) for minute in range(5)
        ]


def test_readers_refuse_another_tenants_schema(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_b.tenant), pytest.raises(RuntimeError, match="call_list for alpha"):
        selectors.call_list(tenant=tenant_a.tenant, filters=CallFilters(), tz=selectors.UTC)
    with tenant_context(tenant_b.tenant), pytest.raises(RuntimeError, match="agent_timezone for alpha"):
        selectors.agent_timezone(tenant=tenant_a.tenant)


@pytest.mark.parametrize(("name", "expected"), [("Europe/Berlin", "Europe/Berlin"), ("Mars/Olympus", "UTC")])
def test_agent_timezone_falls_back_to_utc_for_unknown_names(in_tenant_a, name: str, expected: str) -> None:
    tenant_timezone_set(name)

    assert selectors.agent_timezone(tenant=in_tenant_a.tenant).key == expected


def test_call_get_brings_the_ticket_and_refuses_unknown_ids(in_tenant_a, django_assert_num_queries) -> None:
    call = CallFactory()
    ticket = TicketFactory(call=call)

    with django_assert_num_queries(1):
        fetched = selectors.call_get(tenant=in_tenant_a.tenant, call_id=call.pk)
        assert fetched.ticket.pk == ticket.pk
    with pytest.raises(Call.DoesNotExist):
        selectors.call_get(tenant=in_tenant_a.tenant, call_id=call.pk + 1000)


def test_captured_fields_in_collection_order_with_labels(in_tenant_a) -> None:
    fields = {"reason": "leak", "custom_note": "gate code 12", "name": "Ann Lee", "email": "", "callback_number": "+1"}
    call = CallFactory(captured=outcome(fields=fields))

    assert selectors.call_captured_fields(call=call) == [
        ("Name", "Ann Lee"),
        ("Callback number", "+1"),
        ("Reason", "leak"),
        ("Custom note", "gate code 12"),
    ]
    assert selectors.call_caller_name(call=call) == "Ann Lee"
    assert selectors.call_captured_fields(call=CallFactory(captured={})) == []
    assert selectors.call_caller_name(call=CallFactory(captured={"fields": "garbage"})) == ""


def test_transcript_and_latencies_in_order(in_tenant_a) -> None:
    call = CallFactory()
    later = UtteranceFactory(call=call, start_s=9.0, end_s=10.0, text="later")
    earlier = UtteranceFactory(call=call, start_s=1.0, end_s=2.0, text="earlier")
    UtteranceFactory(text="another call")
    second = TurnLatencyFactory(call=call, turn_index=2)
    first = TurnLatencyFactory(call=call, turn_index=1)

    assert list(selectors.call_transcript(tenant=in_tenant_a.tenant, call=call)) == [earlier, later]
    assert list(selectors.call_turn_latencies(tenant=in_tenant_a.tenant, call=call)) == [first, second]


def test_first_frame_percentiles_of_one_call(in_tenant_a) -> None:
    call = CallFactory()
    for index, ms in enumerate([500.0, 100.0, 400.0, 200.0, 300.0]):
        TurnLatencyFactory(call=call, turn_index=index, first_frame_ms=ms)
    TurnLatencyFactory(turn_index=0, first_frame_ms=9000.0)  # another call

    assert selectors.call_first_frame_percentiles(tenant=in_tenant_a.tenant, call=call) == {"p50": 300.0, "p95": 480.0}
    assert selectors.call_first_frame_percentiles(tenant=in_tenant_a.tenant, call=CallFactory()) == {
        "p50": None,
        "p95": None,
    }


def test_percentile_interpolates_like_percentile_cont_and_checks_its_fraction(in_tenant_a) -> None:
    call = CallFactory()
    for index, ms in enumerate([10.0, 20.0, 30.0, 40.0]):
        TurnLatencyFactory(call=call, turn_index=index, decision_ms=ms)

    result = TurnLatency.objects.aggregate(
        p0=Percentile("decision_ms", fraction=0, output_field=FloatField()),
        p25=Percentile("decision_ms", fraction=0.25, output_field=FloatField()),
        p100=Percentile("decision_ms", fraction=1, output_field=FloatField()),
    )

    assert result == {"p0": 10.0, "p25": 17.5, "p100": 40.0}
    with pytest.raises(ValueError, match="within"):
        Percentile("decision_ms", fraction=1.5)


# --- shared guards and the settings pages' reads ---------------------------------------------------------------


def test_schema_check_names_the_reader_and_both_schemas(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        selectors.schema_check(tenant=tenant_a.tenant)  # the right schema: no complaint
    with tenant_context(tenant_b.tenant), pytest.raises(RuntimeError) as refused:
        selectors.schema_check(tenant=tenant_a.tenant)
    assert str(refused.value) == "read for alpha with schema beta active"
    with pytest.raises(RuntimeError, match=r"^ticket_list for alpha with schema public active$"):
        selectors.schema_check(tenant=tenant_a.tenant, reader="ticket_list")


def test_agent_config_and_faq_entries_of_the_active_tenant(in_tenant_a) -> None:
    AgentConfig.objects.update(business_name="Alpha Plumbing Ltd")
    FaqEntry.objects.all().delete()
    FaqEntryFactory(question="First?", is_active=False)
    second = FaqEntryFactory(question="Second?")

    assert selectors.agent_config_get(tenant=in_tenant_a.tenant).business_name == "Alpha Plumbing Ltd"
    # Inactive entries too (the editor shows them), in the order they were added.
    assert list(selectors.faq_entry_list(tenant=in_tenant_a.tenant).values_list("question", "is_active")) == [
        ("First?", False),
        ("Second?", True),
    ]
    assert selectors.faq_entry_get(tenant=in_tenant_a.tenant, entry_id=second.pk).question == "Second?"
    with pytest.raises(FaqEntry.DoesNotExist):
        selectors.faq_entry_get(tenant=in_tenant_a.tenant, entry_id=second.pk + 1000)


def test_call_recording_get_reads_only_the_recording(in_tenant_a, django_assert_num_queries) -> None:
    call = CallFactory(from_number="+15550001111")

    with django_assert_num_queries(1):
        fetched = selectors.call_recording_get(tenant=in_tenant_a.tenant, call_id=call.pk)
        assert (fetched.pk, bool(fetched.recording)) == (call.pk, False)
    assert fetched.get_deferred_fields() >= {"from_number", "captured", "status"}
    with pytest.raises(Call.DoesNotExist):
        selectors.call_recording_get(tenant=in_tenant_a.tenant, call_id=call.pk + 1000)


@pytest.mark.parametrize(
    "read",
    [
        lambda tenant: selectors.agent_config_get(tenant=tenant),
        lambda tenant: selectors.faq_entry_list(tenant=tenant),
        lambda tenant: selectors.faq_entry_get(tenant=tenant, entry_id=1),
        lambda tenant: selectors.call_recording_get(tenant=tenant, call_id=1),
    ],
    ids=["agent_config_get", "faq_entry_list", "faq_entry_get", "call_recording_get"],
)
def test_settings_and_recording_reads_refuse_another_tenants_schema(tenant_a, tenant_b, read, request) -> None:
    reader = request.node.callspec.id
    with tenant_context(tenant_b.tenant), pytest.raises(RuntimeError, match=f"^{reader} for alpha with schema beta"):
        read(tenant_a.tenant)


# --- the business profile --------------------------------------------------------------------------------------


def test_the_business_profile_is_what_the_agent_settings_saved(in_tenant_a) -> None:
    agent_config_update(
        config=AgentConfig.objects.get(),
        timezone="America/New_York",
        business_hours={"mon": ["08:00", "12:00"]},
        sla_hours={"urgent": 1, "high": 4, "normal": 8, "low": 16},
    )

    profile = selectors.business_profile_get(tenant=in_tenant_a.tenant)

    assert profile == selectors.BusinessProfile(
        timezone_name="America/New_York",
        business_hours={"mon": ["08:00", "12:00"]},
        sla_hours={"urgent": 1, "high": 4, "normal": 8, "low": 16},
    )
    assert profile.zone == ZoneInfo("America/New_York")
    # Monday 2030-11-25 11:00 New York: one hour left that day, the other three the next Monday morning.
    start = datetime(2030, 11, 25, 16, 0, tzinfo=UTC)
    assert profile.due(start, 4) == datetime(2030, 12, 2, 16, 0, tzinfo=UTC)
    assert profile.hours_between(start, datetime(2030, 12, 2, 16, 0, tzinfo=UTC)) == 4.0


def test_the_help_desk_counts_its_sla_with_the_same_profile(in_tenant_a) -> None:
    agent_config_update(
        config=AgentConfig.objects.get(),
        timezone="Europe/Berlin",
        business_hours={"tue": ["09:00", "10:00"]},
        sla_hours={"urgent": 2, "high": 4, "normal": 8, "low": 16},
    )
    start = datetime(2030, 11, 25, 12, 0, tzinfo=UTC)  # a Monday

    assert ticket_sla_due(priority="urgent", start=start) == selectors.business_profile_current().due(start, 2)
    # Tuesdays 09:00-10:00 Berlin (08:00-09:00 UTC): one hour on each of two Tuesdays.
    assert ticket_sla_due(priority="urgent", start=start) == datetime(2030, 12, 3, 9, 0, tzinfo=UTC)


def test_without_an_agent_configuration_the_business_is_open_around_the_clock(in_tenant_a) -> None:
    AgentConfig.objects.all().delete()

    profile = selectors.business_profile_get(tenant=in_tenant_a.tenant)

    assert profile == selectors.ROUND_THE_CLOCK
    start = datetime(2030, 11, 23, 22, 0, tzinfo=UTC)  # a Saturday night
    assert profile.due(start, 5) == start + timedelta(hours=5)


def test_the_business_profile_refuses_another_tenants_schema(tenant_a, tenant_b) -> None:
    with (
        tenant_context(tenant_b.tenant),
        pytest.raises(RuntimeError, match=r"^business_profile_get for alpha with schema beta active$"),
    ):
        selectors.business_profile_get(tenant=tenant_a.tenant)
