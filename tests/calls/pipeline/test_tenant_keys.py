"""Engines on a business's own provider key: the factory decrypts the key the spec asks for
(``tenant_key``), each business's engine speaks with its own key, and a missing key leaves the
engine out of the chain as if it were down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from django_tenants.utils import tenant_context

from calls.models import AgentConfig
from calls.pipeline import factory
from calls.pipeline.factory import BREAKERS, session_deps_for_call, shared_engines_clear
from calls.providers.elevenlabs_tts import ElevenLabsTextToSpeech
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.providers.piper_tts import piper_available
from calls.services import call_start, provider_key_delete, provider_key_save

pytestmark = [
    pytest.mark.skipif(not piper_available(), reason="piper-tts speaks for the emulator"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]

KEY_A = "el-alpha-key-1111"
KEY_B = "el-beta-key-2222"
SENTENCE = "Thanks for calling. How can I help?"


@pytest.fixture
def elevenlabs() -> Iterator[ElevenLabsEmulator]:
    shared_engines_clear()
    BREAKERS.clear()
    with ElevenLabsEmulator(api_keys=(KEY_A,)) as running:
        yield running
    shared_engines_clear()
    BREAKERS.clear()


def _setup(tenant_fixture, url: str, key: str | None, number: str):  # type: ignore[no-untyped-def]
    with tenant_context(tenant_fixture.tenant):
        AgentConfig.objects.update(tts_provider="elevenlabs", tts_options={"tenant_key": True, "base_url": url})
        if key is not None:
            provider_key_save(provider="elevenlabs", api_key=key, actor=None)
        return call_start(
            tenant=tenant_fixture.tenant,
            carrier="twilio",
            carrier_call_id=f"CA-keys-{number}",
            from_number="+15557654321",
            to_number=number,
        )


def _in(tenant_fixture, action, **kwargs):  # type: ignore[no-untyped-def]
    with tenant_context(tenant_fixture.tenant):
        return action(**kwargs)


async def _warm(emulator: ElevenLabsEmulator) -> None:
    """Have the emulator speak once, so its voice model is loaded before the chain's first-audio deadline."""
    engine = ElevenLabsTextToSpeech(api_key=KEY_A, base_url=emulator.url)
    assert [chunk async for chunk in engine.synthesize("Warm up.")]
    emulator.requests.clear()


async def _spoken(deps) -> int:  # type: ignore[no-untyped-def]
    return sum(len(chunk) for chunk in [c async for c in deps.tts.synthesize(SENTENCE)])


def _switches(deps) -> list[tuple[str, str, str, str, str]]:  # type: ignore[no-untyped-def]
    return [(s.role, s.from_engine, s.to_engine, s.reason, s.detail) for s in deps.switches.entries]


@override_settings(VOICEDESK_TTS="piper")
async def test_each_business_speaks_with_its_own_key(tenant_a, tenant_b, elevenlabs) -> None:
    call_a = await database_sync_to_async(_setup)(tenant_a, elevenlabs.url, KEY_A, "+15550001001")
    call_b = await database_sync_to_async(_setup)(tenant_b, elevenlabs.url, KEY_B, "+15550001002")

    await _warm(elevenlabs)
    deps_a = await session_deps_for_call(tenant=tenant_a.tenant, call=call_a)
    deps_b = await session_deps_for_call(tenant=tenant_b.tenant, call=call_b)
    spoken_a = await _spoken(deps_a)
    spoken_b = await _spoken(deps_b)

    assert [e.name for e in deps_a.tts.engines] == ["elevenlabs", "piper"]
    assert [e.name for e in deps_b.tts.engines] == ["elevenlabs", "piper"]
    # One spec, two keys: two engines. The emulator takes only A's key, so B's moves on to piper.
    assert deps_a.tts.engines[0] is not deps_b.tts.engines[0]
    assert [(r.path, r.key_ok, r.status) for r in elevenlabs.requests] == [
        ("/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream", True, 200),
        ("/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream", False, 401),
    ]
    assert _switches(deps_a) == []
    assert _switches(deps_b) == [("tts", "elevenlabs", "piper", "error", "key rejected (HTTP 401)")]
    assert spoken_a > 8000
    assert spoken_b > 8000
    assert all(KEY_A not in s[4] and KEY_B not in s[4] for s in _switches(deps_b))


@override_settings(VOICEDESK_TTS="piper")
async def test_without_a_stored_key_the_engine_is_left_out_and_a_new_key_counts_from_the_next_call(
    tenant_a, elevenlabs
) -> None:
    call = await database_sync_to_async(_setup)(tenant_a, elevenlabs.url, None, "+15550001001")
    spec = f"elevenlabs(base_url={elevenlabs.url}, tenant_key=True)"

    without = await session_deps_for_call(tenant=tenant_a.tenant, call=call)

    assert [e.name for e in without.tts.engines] == ["piper"]
    assert _switches(without) == [
        (
            "tts",
            spec,
            "piper",
            "unavailable",
            "ProviderConfigError: no key of the business's own is stored for 'elevenlabs'",
        )
    ]
    assert elevenlabs.requests == []

    # A key that the provider refuses, then the right one: each call builds on the key stored when it starts.
    await _warm(elevenlabs)
    await database_sync_to_async(_in)(tenant_a, provider_key_save, provider="elevenlabs", api_key=KEY_B, actor=None)
    refused = await session_deps_for_call(tenant=tenant_a.tenant, call=call)
    await _spoken(refused)
    await database_sync_to_async(_in)(tenant_a, provider_key_save, provider="elevenlabs", api_key=KEY_A, actor=None)
    accepted = await session_deps_for_call(tenant=tenant_a.tenant, call=call)
    await _spoken(accepted)

    assert [r.key_ok for r in elevenlabs.requests] == [False, True]
    assert refused.tts.engines[0] is not accepted.tts.engines[0]
    # The engine on the replaced key is dropped: one ElevenLabs engine is kept for the business.
    assert len([k for k in factory._engines if k[0] == "tts" and k[1].name == "elevenlabs"]) == 1
    assert _switches(accepted) == []

    # Deleted: the next call has no ElevenLabs again.
    await database_sync_to_async(_in)(tenant_a, provider_key_delete, provider="elevenlabs", actor=None)
    after = await session_deps_for_call(tenant=tenant_a.tenant, call=call)
    assert [e.name for e in after.tts.engines] == ["piper"]
