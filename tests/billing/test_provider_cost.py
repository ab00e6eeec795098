"""Each metered call keeps what it used of each engine and what that cost; the owner's page adds it up per
business against revenue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing.models import Plan, UsageRecord
from billing.selectors import call_provider_usage, provider_usage_cost_cents
from billing.services import usage_record_call
from billing.templatetags.money import dollars
from calls.models import AgentConfig, Utterance
from tests.factories import CallFactory, SubscriptionFactory, UtteranceFactory, outcome
from tests.tenants.test_admin import platform_client  # noqa: F401 (fixture)

COSTS = {"stt:whisper": "0.5", "tts:offline": "1.2", "stt:cloud-ears": "2", "llm:cloud-brain": "3"}
T0 = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)


@pytest.fixture
def costs(settings) -> dict[str, str]:
    settings.BILLING_PROVIDER_UNIT_COSTS = COSTS
    return COSTS


def _say(call, speaker: str, start_s: float, end_s: float, saved: datetime) -> None:
    utterance = UtteranceFactory(call=call, speaker=speaker, start_s=start_s, end_s=end_s)
    Utterance.objects.filter(pk=utterance.pk).update(created_at=saved)


def _switch(role: str, to_engine: str, at: datetime) -> dict[str, str]:
    return {
        "role": role,
        "from_engine": "whisper",
        "to_engine": to_engine,
        "reason": "error",
        "detail": "",
        "at": at.isoformat(),
    }


def test_usage_is_read_from_the_transcript_and_the_switches_and_priced(in_tenant_a, costs) -> None:
    captured = outcome(provider_switches=[_switch("stt", "cloud-ears(model=x)", T0 + timedelta(seconds=20))])
    call = CallFactory(answered_at=T0, ended_at=T0 + timedelta(seconds=90), captured=captured)
    _say(call, "agent", 0.0, 6.0, T0 + timedelta(seconds=6))
    _say(call, "caller", 7.0, 19.0, T0 + timedelta(seconds=19))  # whisper
    _say(call, "agent", 20.0, 30.0, T0 + timedelta(seconds=30))
    _say(call, "caller", 31.0, 61.0, T0 + timedelta(seconds=61))  # after the switch: cloud-ears

    record = usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk)

    assert record.provider_usage == {
        "stt": {"whisper": 12.0, "cloud-ears": 30.0},
        "tts": {"offline": 16.0},
        "stt_stream": {},
        "llm": {},
        "tts_chars": {"offline": 62.0},  # two agent lines of 31 characters
    }
    # 12 s x 0.5 ¢/min + 30 s x 2 ¢/min + 16 s x 1.2 ¢/min = 0.1 + 1.0 + 0.32
    assert record.provider_cost_cents == Decimal("1.4200")
    assert record.seconds == 90


def test_usage_an_engine_reported_is_believed_and_tokens_are_priced_per_thousand(in_tenant_a, costs) -> None:
    reported = {"stt": {"whisper": 60}, "tts": {"offline": 120}, "llm": {"cloud-brain": 2500}}
    call = CallFactory(answered_at=T0, ended_at=T0 + timedelta(seconds=200), captured=outcome(provider_usage=reported))

    usage = call_provider_usage(tenant=in_tenant_a.tenant, call=call)

    assert usage == {
        "stt": {"whisper": 60.0},
        "tts": {"offline": 120.0},
        "stt_stream": {},
        "llm": {"cloud-brain": 2500.0},
        "tts_chars": {},
    }
    # 1 min x 0.5 + 2 min x 1.2 + 2.5 x 3
    assert provider_usage_cost_cents(usage) == Decimal("10.4000")


def test_a_language_models_tokens_are_kept_by_kind_and_priced_per_thousand(in_tenant_a, settings) -> None:
    settings.BILLING_PROVIDER_UNIT_COSTS = {
        "llm:gpt-4o-mini:in": "1.5",
        "llm:gpt-4o-mini:cached": "0.75",
        "llm:gpt-4o-mini:out": "6",
    }
    llm_usage = {"gpt-4o-mini:in": 4000.0, "gpt-4o-mini:cached": 2000.0, "gpt-4o-mini:out": 500.0}
    call = CallFactory(answered_at=T0, ended_at=T0 + timedelta(seconds=60), captured=outcome(llm_usage=llm_usage))

    record = usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk)

    assert record.provider_usage == {"stt": {}, "tts": {}, "stt_stream": {}, "llm": llm_usage, "tts_chars": {}}
    # 4 x 1.5 + 2 x 0.75 + 0.5 x 6
    assert record.provider_cost_cents == Decimal("10.5000")


def test_offline_engines_cost_nothing_by_default_and_unlisted_engines_cost_nothing(in_tenant_a) -> None:
    AgentConfig.objects.update(stt_provider="whisper", tts_provider="offline")
    call = CallFactory(answered_at=T0, ended_at=T0 + timedelta(seconds=30), captured=outcome())
    _say(call, "caller", 1.0, 4.5, T0)
    record = usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk)
    assert (record.provider_usage, record.provider_cost_cents) == (
        {"stt": {"whisper": 3.5}, "tts": {}, "stt_stream": {}, "llm": {}, "tts_chars": {}},
        Decimal("0"),
    )
    assert provider_usage_cost_cents({"tts": {"mystery": 600.0}}) == Decimal("0")


def test_cloud_engines_are_metered_by_the_streamed_minute_and_the_character_at_list_price(in_tenant_a) -> None:
    AgentConfig.objects.update(stt_provider="assemblyai", tts_provider="elevenlabs")
    captured = outcome(
        provider_switches=[
            _switch("tts", "cartesia(key_ref=CARTESIA_API_KEY)", T0 + timedelta(seconds=20)),
            _switch("stt", "whisper", T0 + timedelta(seconds=40)),
        ]
    )
    call = CallFactory(answered_at=T0, ended_at=T0 + timedelta(seconds=90), captured=captured)
    _say(call, "agent", 0.0, 6.0, T0 + timedelta(seconds=6))  # elevenlabs
    _say(call, "caller", 7.0, 19.0, T0 + timedelta(seconds=19))  # assemblyai
    _say(call, "agent", 20.0, 30.0, T0 + timedelta(seconds=30))  # cartesia
    _say(call, "caller", 41.0, 61.0, T0 + timedelta(seconds=61))  # whisper, after the stream broke

    record = usage_record_call(tenant=in_tenant_a.tenant, call_id=call.pk)

    assert record.provider_usage == {
        "stt": {"assemblyai": 12.0, "whisper": 20.0},
        "tts": {"elevenlabs": 6.0, "cartesia": 10.0},
        "stt_stream": {"assemblyai": 40.0},  # the whole call until the switch, not only the caller's words
        "llm": {},
        "tts_chars": {"elevenlabs": 31.0, "cartesia": 31.0},
    }
    # 40 s streamed x 0.25 ¢/min + 31 chars x 5 ¢/1,000 + 31 chars x 3 ¢/1,000 = 0.1667 + 0.155 + 0.093
    assert record.provider_cost_cents == Decimal("0.4147")


def test_usage_refuses_the_wrong_schema(tenant_a) -> None:
    with tenant_context(tenant_a.tenant):
        call = CallFactory()
    with pytest.raises(RuntimeError, match="with schema public active"):
        call_provider_usage(tenant=tenant_a.tenant, call=call)


def test_the_owner_page_shows_revenue_provider_cost_and_margin_per_business(
    platform_client,  # noqa: F811
    tenant_a,
    tenant_b,
) -> None:
    now = timezone.now()
    growth = Plan.objects.get(code="growth")  # $149, 1,200 minutes, 10 ¢ a minute beyond
    Plan.objects.filter(pk=growth.pk).update(included_minutes=2)
    SubscriptionFactory(tenant=tenant_a.tenant, plan=growth, status="active")
    SubscriptionFactory(tenant=tenant_b.tenant, status="canceled")
    UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=1, seconds=61, provider_cost_cents=Decimal("150.25"))
    UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=2, seconds=120, provider_cost_cents=Decimal("9.75"))
    UsageRecord.objects.create(tenant=tenant_b.tenant, call_id=1, seconds=30, provider_cost_cents=Decimal("100"))
    last_month = UsageRecord.objects.create(tenant=tenant_a.tenant, call_id=3, seconds=60, provider_cost_cents=99)
    UsageRecord.objects.filter(pk=last_month.pk).update(created_at=now.replace(day=1) - timedelta(days=1))

    response = platform_client.get("/owner/billing/")

    overview = response.context["overview"]
    rows = [
        (
            r.tenant.schema_name,
            r.minutes_this_month,
            r.revenue_cents,
            r.provider_cost_cents,
            r.margin_cents,
            r.margin_percent,
        )
        for r in overview.rows
    ]
    assert rows == [
        # 4 minutes, 2 beyond the included: 14900 + 2 x 10 = 14920; cost 160.00
        ("alpha", 4, Decimal("14920.000"), Decimal("160.0000"), Decimal("14760.0000"), Decimal("98.9")),
        # canceled: no revenue, its calls still cost us
        ("beta", 1, Decimal("0"), Decimal("100.0000"), Decimal("-100.0000"), None),
    ]
    assert (overview.revenue_cents, overview.provider_cost_cents, overview.margin_cents) == (
        Decimal("14920.000"),
        Decimal("260.0000"),
        Decimal("14660.0000"),
    )
    html = response.content.decode()
    for shown in ("$149.20", "$1.60", "$147.60 (98.9%)", "-$1.00", "$2.60", "$146.60"):
        assert shown in html


def test_negative_amounts_read_as_money() -> None:
    assert (dollars(Decimal("-150")), dollars(4900), dollars(Decimal("12.5"))) == ("-$1.50", "$49.00", "$0.13")
