"""A business's own provider keys: stored encrypted, shown by their last four characters, tested
against the provider's emulator through the real SDKs, and re-encrypted by ``provider_keys_rotate``."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings
from django_tenants.utils import tenant_context

from calls.models import AgentConfig, ProviderKey
from calls.providers.emulators.assemblyai import AssemblyAIEmulator
from calls.providers.emulators.cartesia import CartesiaEmulator
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.providers.sdk import KeyCheck
from calls.selectors import ProviderKeyShown, TenantKey, provider_key_for, provider_keys_list
from calls.services import (
    ProviderKeyError,
    provider_key_delete,
    provider_key_save,
    provider_key_test,
    provider_keys_rotate,
    provider_url,
)
from tenants.models import AuditEvent
from voicedesk.core.secrets import SecretUnreadableError

EL_KEY = "el-tenant-key-0042"
CARTESIA_KEY = "sk_car_tenant_7788"
AAI_KEY = "aai-tenant-key-5150"
ACTIONS = ("provider_key.saved", "provider_key.deleted")


def _audit() -> list[tuple[str, int | None, dict[str, Any]]]:
    return list(AuditEvent.objects.filter(action__in=ACTIONS).order_by("pk").values_list("action", "actor_id", "data"))


def _rows() -> list[tuple[str, str, str]]:
    return list(ProviderKey.objects.order_by("provider").values_list("provider", "ciphertext", "last4"))


# -- Storing ------------------------------------------------------------------


def test_a_saved_key_is_encrypted_shown_by_its_last_four_and_audited_without_it(in_tenant_a) -> None:
    row = provider_key_save(provider="elevenlabs", api_key=f"  {EL_KEY}\n", actor=in_tenant_a.owner)

    (stored,) = ProviderKey.objects.values("provider", "ciphertext", "last4")
    assert (stored["provider"], stored["last4"]) == ("elevenlabs", "0042")
    assert EL_KEY not in stored["ciphertext"]
    assert provider_key_for(tenant=in_tenant_a.tenant, provider="elevenlabs") == TenantKey(
        provider="elevenlabs", secret=EL_KEY, version=f"{row.pk}:{row.updated_at.isoformat()}"
    )
    assert EL_KEY not in repr(provider_key_for(tenant=in_tenant_a.tenant, provider="elevenlabs"))
    assert provider_keys_list(tenant=in_tenant_a.tenant) == [
        ProviderKeyShown(provider="elevenlabs", label="ElevenLabs", last4="0042", updated_at=row.updated_at)
    ]
    assert _audit() == [
        ("provider_key.saved", in_tenant_a.owner.pk, {"provider": "elevenlabs", "last4": "0042", "replaced": False})
    ]
    assert str(row) == "ElevenLabs key ending 0042"


def test_replacing_a_key_keeps_one_row_with_the_new_key(in_tenant_a) -> None:
    first = provider_key_save(provider="cartesia", api_key="sk_car_first_1111", actor=in_tenant_a.owner)
    second = provider_key_save(provider="cartesia", api_key=CARTESIA_KEY, actor=None)

    assert second.pk == first.pk
    assert [(p, last4) for p, _c, last4 in _rows()] == [("cartesia", "7788")]
    assert provider_key_for(tenant=in_tenant_a.tenant, provider="cartesia").secret == CARTESIA_KEY
    assert [(action, data["replaced"], data["last4"]) for action, _a, data in _audit()] == [
        ("provider_key.saved", False, "1111"),
        ("provider_key.saved", True, "7788"),
    ]


@pytest.mark.parametrize(
    ("provider", "api_key", "field", "message"),
    [
        ("deepgram", EL_KEY, "provider", "Unknown provider 'deepgram'."),
        ("elevenlabs", "   ", "api_key", "Paste the key."),
        ("elevenlabs", "short", "api_key", "That does not look like an API key: 8-512 characters with no spaces."),
        (
            "elevenlabs",
            "two words-1234",
            "api_key",
            "That does not look like an API key: 8-512 characters with no spaces.",
        ),
        ("elevenlabs", "x" * 513, "api_key", "That does not look like an API key: 8-512 characters with no spaces."),
    ],
)
def test_a_bad_key_or_provider_is_refused_and_nothing_changes(
    in_tenant_a, provider: str, api_key: str, field: str, message: str
) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    before, audit_before = _rows(), _audit()

    with pytest.raises(ValidationError) as raised:
        provider_key_save(provider=provider, api_key=api_key, actor=in_tenant_a.owner)

    assert raised.value.message_dict == {field: [message]}
    assert (_rows(), _audit()) == (before, audit_before)


def test_without_encryption_keys_nothing_is_stored(in_tenant_a) -> None:
    with (
        override_settings(VOICEDESK_SECRET_KEYS=[]),
        pytest.raises(ProviderKeyError, match="has not set up encryption"),
    ):
        provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=in_tenant_a.owner)

    assert (_rows(), _audit()) == ([], [])


def test_deleting_a_key_forgets_it_and_a_missing_one_changes_nothing(in_tenant_a) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    provider_key_save(provider="cartesia", api_key=CARTESIA_KEY, actor=None)

    provider_key_delete(provider="elevenlabs", actor=in_tenant_a.owner)

    assert [p for p, _c, _l in _rows()] == ["cartesia"]
    assert provider_key_for(tenant=in_tenant_a.tenant, provider="elevenlabs") is None
    assert _audit()[-1] == ("provider_key.deleted", in_tenant_a.owner.pk, {"provider": "elevenlabs", "last4": "0042"})
    before, audit_before = _rows(), _audit()
    with pytest.raises(ProviderKey.DoesNotExist):
        provider_key_delete(provider="elevenlabs", actor=in_tenant_a.owner)
    assert (_rows(), _audit()) == (before, audit_before)


def test_one_business_never_reads_anothers_key(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    with tenant_context(tenant_b.tenant):
        assert provider_key_for(tenant=tenant_b.tenant, provider="elevenlabs") is None
        assert provider_keys_list(tenant=tenant_b.tenant) == []
        with pytest.raises(RuntimeError, match="provider_key_for for alpha with schema beta active"):
            provider_key_for(tenant=tenant_a.tenant, provider="elevenlabs")


def test_the_key_never_reaches_the_logs(in_tenant_a, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with ElevenLabsEmulator(api_keys=(EL_KEY,)) as emulator:
        with_url = override_settings(SPEECH_PROVIDER_BASE_URLS={"elevenlabs": emulator.url})
        with_url.enable()
        provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
        provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")
        emulator.api_keys = set()
        provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")
        with_url.disable()
    provider_key_delete(provider="elevenlabs", actor=None)

    events = [r.msg.get("event") for r in caplog.records if isinstance(r.msg, dict)]
    mine = [e for e in events if str(e).startswith("provider_key")]
    assert mine == ["provider_key_saved", "provider_key_tested", "provider_key_tested", "provider_key_deleted"]
    assert not [r for r in caplog.records if EL_KEY in r.getMessage() or EL_KEY in str(r.msg)]


# -- Testing a key against the provider -----------------------------------------


@pytest.fixture
def elevenlabs() -> Iterator[ElevenLabsEmulator]:
    with ElevenLabsEmulator(api_keys=(EL_KEY,), stall_s=5.0) as running:
        yield running


def test_a_working_elevenlabs_key_is_ok_and_a_refused_one_says_so(in_tenant_a, elevenlabs) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    before = _rows()

    with override_settings(SPEECH_PROVIDER_BASE_URLS={"elevenlabs": elevenlabs.url}):
        ok = provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")
        elevenlabs.fault = "reject_key"
        refused = provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")
        elevenlabs.fault = "http_500"
        failed = provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")

    assert ok == KeyCheck("ok", "The key works: 3 voices available.")
    assert refused == KeyCheck("refused", "ElevenLabs refused the key (HTTP 401).")
    assert failed == KeyCheck("failed", "ElevenLabs answered with an error (HTTP 500).")
    assert [(r.path, r.key_ok, r.status) for r in elevenlabs.requests] == [
        ("/v1/voices", True, 200),
        ("/v1/voices", True, 401),
        ("/v1/voices", True, 500),
    ]
    assert _rows() == before  # a test stores nothing


def test_a_provider_that_does_not_answer_is_unreachable_within_the_timeout(in_tenant_a, elevenlabs) -> None:
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    elevenlabs.fault = "stall"

    with override_settings(
        SPEECH_PROVIDER_BASE_URLS={"elevenlabs": elevenlabs.url}, SPEECH_PROVIDER_CHECK_TIMEOUT_S=1.0
    ):
        started = time.monotonic()
        check = provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")
        took = time.monotonic() - started

    assert check == KeyCheck("unreachable", "ElevenLabs was not reached within 1 s (ReadTimeout).")
    # Bounded by the setting, not the SDK's default of a minute; the slack is for a loaded CI machine.
    assert 0.9 < took < 5.0


def test_the_default_timeout_is_three_seconds() -> None:
    from django.conf import settings

    assert settings.SPEECH_PROVIDER_CHECK_TIMEOUT_S == 3.0


def test_a_cartesia_key_is_tested_where_the_business_engine_goes(in_tenant_a) -> None:
    provider_key_save(provider="cartesia", api_key=CARTESIA_KEY, actor=None)
    with CartesiaEmulator(api_keys=(CARTESIA_KEY,)) as cartesia:
        # The engine's own base_url wins over the platform's (which points nowhere).
        AgentConfig.objects.update(
            tts_provider="cartesia", tts_options={"tenant_key": True, "base_url": cartesia.http_url}
        )
        with override_settings(SPEECH_PROVIDER_BASE_URLS={"cartesia": "http://127.0.0.1:9"}):
            ok = provider_key_test(tenant=in_tenant_a.tenant, provider="cartesia")
            cartesia.api_keys = {"another-key-0000"}
            refused = provider_key_test(tenant=in_tenant_a.tenant, provider="cartesia")
        url = cartesia.http_url
        listings = cartesia.voice_listings

    assert ok == KeyCheck("ok", "The key works: 3 voices available.")
    assert refused == KeyCheck("refused", "Cartesia refused the key (HTTP 401).")
    # The SDK reads pages until one comes back empty; the refused key was turned away before listing.
    assert listings == [{"limit": "100"}, {"limit": "100", "starting_after": "voice-cleo"}]
    AgentConfig.objects.update(tts_provider="offline", tts_options={})
    with override_settings(SPEECH_PROVIDER_BASE_URLS={"cartesia": url}):
        down = provider_key_test(tenant=in_tenant_a.tenant, provider="cartesia")
    assert down == KeyCheck("unreachable", "Cartesia was not reached within 3 s (APIConnectionError).")


def test_an_assemblyai_key_opens_and_ends_a_streaming_session(in_tenant_a) -> None:
    provider_key_save(provider="assemblyai", api_key=AAI_KEY, actor=None)
    with AssemblyAIEmulator(api_keys=(AAI_KEY,)) as assemblyai:
        AgentConfig.objects.update(stt_fallbacks=[{"provider": "assemblyai", "options": {"api_host": assemblyai.url}}])
        ok = provider_key_test(tenant=in_tenant_a.tenant, provider="assemblyai")
        assemblyai.fault = "reject_key"
        refused = provider_key_test(tenant=in_tenant_a.tenant, provider="assemblyai")

    assert ok == KeyCheck("ok", "AssemblyAI accepted the key.")
    assert refused == KeyCheck("refused", "AssemblyAI refused the key.")


def test_testing_without_a_stored_key_or_for_an_unknown_provider_is_refused(in_tenant_a) -> None:
    with pytest.raises(ProviderKeyError, match=r"^No ElevenLabs key is stored\.$"):
        provider_key_test(tenant=in_tenant_a.tenant, provider="elevenlabs")
    with pytest.raises(ValidationError):
        provider_key_test(tenant=in_tenant_a.tenant, provider="deepgram")


def test_where_a_provider_is_comes_from_the_business_engines_then_the_platform(in_tenant_a) -> None:
    config = AgentConfig.objects.get()
    config.tts_provider, config.tts_options = "elevenlabs", {"tenant_key": True}
    config.tts_fallbacks = [{"provider": "cartesia", "options": {"base_url": "http://cartesia.internal"}}]
    config.stt_options, config.stt_fallbacks = {}, ["junk", {"provider": "assemblyai", "options": {"api_host": "eu"}}]

    with override_settings(SPEECH_PROVIDER_BASE_URLS={"elevenlabs": "http://el.gateway", "cartesia": ""}):
        assert provider_url(config, "elevenlabs") == "http://el.gateway"
        assert provider_url(config, "cartesia") == "http://cartesia.internal"
        assert provider_url(config, "assemblyai") == "eu"


# -- Rotation ---------------------------------------------------------------------

OLD = "yMoiCfMApwLbS2DRqak8rNro-OtLmbVG97roehOtYxk="  # the test settings' key
NEW = Fernet.generate_key().decode()


def test_rotation_re_encrypts_every_business_key_with_the_first_key(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
        provider_key_save(provider="cartesia", api_key=CARTESIA_KEY, actor=None)
        updated_a = list(ProviderKey.objects.order_by("provider").values_list("updated_at", flat=True))
    with tenant_context(tenant_b.tenant):
        provider_key_save(provider="elevenlabs", api_key="el-beta-key-9999", actor=None)
    out = io.StringIO()

    with override_settings(VOICEDESK_SECRET_KEYS=[NEW, OLD]):
        call_command("provider_keys_rotate", stdout=out)

    assert out.getvalue() == "3 keys re-encrypted with the first key.\n"
    with override_settings(VOICEDESK_SECRET_KEYS=[NEW]):
        with tenant_context(tenant_a.tenant):
            assert provider_key_for(tenant=tenant_a.tenant, provider="elevenlabs").secret == EL_KEY
            assert provider_key_for(tenant=tenant_a.tenant, provider="cartesia").secret == CARTESIA_KEY
            # The keys did not change, so neither did their dates (nor the engines built on them).
            assert list(ProviderKey.objects.order_by("provider").values_list("updated_at", flat=True)) == updated_a
        with tenant_context(tenant_b.tenant):
            assert provider_key_for(tenant=tenant_b.tenant, provider="elevenlabs").secret == "el-beta-key-9999"
    with tenant_context(tenant_a.tenant), pytest.raises(SecretUnreadableError):
        provider_key_for(tenant=tenant_a.tenant, provider="elevenlabs")  # the old key alone no longer opens it


def test_rotation_leaves_a_business_whose_keys_cannot_be_opened_as_it_was(tenant_a, tenant_b) -> None:
    with tenant_context(tenant_a.tenant):
        provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
        before_a = _rows()
    with tenant_context(tenant_b.tenant):
        provider_key_save(provider="elevenlabs", api_key="el-beta-key-9999", actor=None)
    out = io.StringIO()

    # The key that encrypted them is gone: nothing opens them.
    with override_settings(VOICEDESK_SECRET_KEYS=[NEW]), pytest.raises(CommandError, match="alpha, beta"):
        call_command("provider_keys_rotate", stdout=out)

    assert out.getvalue() == "0 keys re-encrypted with the first key.\n"
    with tenant_context(tenant_a.tenant):
        assert _rows() == before_a


def test_rotating_in_one_schema_counts_its_keys(in_tenant_a) -> None:
    assert provider_keys_rotate() == 0
    provider_key_save(provider="elevenlabs", api_key=EL_KEY, actor=None)
    (before,) = _rows()

    assert provider_keys_rotate() == 1
    (after,) = _rows()
    assert after[1] != before[1]
    assert provider_key_for(tenant=in_tenant_a.tenant, provider="elevenlabs").secret == EL_KEY
