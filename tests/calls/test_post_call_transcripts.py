"""Post-call transcripts: a business that opted in gets its call recordings transcribed again by
AssemblyAI's pre-recorded API (the real SDK against the loopback emulator), the authenticated webhook
says when, and the better transcript is stored beside the live one."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test import Client, override_settings

from calls.audio import resample
from calls.models import AgentConfig, Call
from calls.providers.emulators.assemblyai_batch import AssemblyAIBatchEmulator
from calls.providers.piper_tts import PiperTextToSpeech, piper_available
from calls.services import (
    POST_CALL_WEBHOOK_HEADER,
    call_finish,
    call_recording_start,
    call_start,
    call_transcript_request,
    call_transcript_store,
    post_call_transcription_set,
    provider_key_delete,
    provider_key_save,
)
from tenants.models import AuditEvent

pytestmark = [
    pytest.mark.skipif(not piper_available(), reason="piper-tts speaks the recording"),
    # The vendor's webhook goes nowhere here (a closed port): the tests post it themselves.
    pytest.mark.usefixtures("no_public_site"),
]

KEY = "aai-post-call-key"


@pytest.fixture
def no_public_site() -> Iterator[None]:
    with override_settings(VOICEDESK_PUBLIC_URL="http://127.0.0.1:9"):
        yield


@pytest.fixture(scope="module")
def speech() -> bytes:
    async def speak() -> np.ndarray:
        voice = PiperTextToSpeech(variation=0)
        pcm = np.concatenate([c async for c in voice.synthesize("My kitchen sink is leaking all over the floor.")])
        return resample(pcm, voice.sample_rate, 8000)

    pcm = asyncio.run(speak())
    return np.stack([pcm, np.zeros_like(pcm)], axis=1).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def emulator() -> Iterator[AssemblyAIBatchEmulator]:
    with AssemblyAIBatchEmulator(api_keys=(KEY,), webhook_attempts=1) as running:
        yield running


@pytest.fixture
def finished_call(in_tenant_a: Any, speech: bytes) -> Call:
    call = call_start(
        tenant=in_tenant_a.tenant,
        carrier="twilio",
        carrier_call_id="CA-post-call-1",
        from_number="+15557654321",
        to_number="+15550001001",
    )
    path = call_recording_start(call_id=call.pk, sample_rate=8000)
    with wave.open(str(path), "wb") as wav:  # the call's audio, as the session writes it
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(speech)
    return call_finish(call_id=call.pk, end_reason="caller_hung_up", outcome={}, completed=True)


def _opt_in(emulator: AssemblyAIBatchEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEDESK_TEST_AAI_BATCH_KEY", KEY)
    AgentConfig.objects.update(
        post_call_transcription={"key_ref": "VOICEDESK_TEST_AAI_BATCH_KEY", "base_url": emulator.url}
    )


def _done(emulator: AssemblyAIBatchEmulator, transcript_id: str) -> None:
    deadline = time.monotonic() + 60
    while emulator.transcripts[transcript_id].status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _webhook(tenant_a: Any, call: Call, body: dict[str, Any], token: str, schema: str = "") -> int:
    connection.set_schema_to_public()
    client = Client(HTTP_HOST="localhost")
    response = client.post(
        f"/hooks/assemblyai/{schema or tenant_a.tenant.schema_name}/{call.pk}",
        data=body,
        content_type="application/json",
        headers={POST_CALL_WEBHOOK_HEADER: token},
    )
    connection.set_tenant(tenant_a.tenant)
    return response.status_code


def test_an_opted_in_call_is_transcribed_again_and_stored_beside_the_live_transcript(
    in_tenant_a: Any, finished_call: Call, emulator: AssemblyAIBatchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _opt_in(emulator, monkeypatch)
    requested = call_transcript_request(call_id=finished_call.pk)
    job = emulator.transcripts[requested.post_call_ref]

    assert requested.post_call_status == Call.PostCallTranscript.REQUESTED
    assert len(requested.post_call_token) >= 40
    schema = in_tenant_a.tenant.schema_name
    assert job.request["webhook_url"] == f"http://127.0.0.1:9/hooks/assemblyai/{schema}/{finished_call.pk}"
    assert job.request["webhook_auth_header_name"] == POST_CALL_WEBHOOK_HEADER
    assert job.request["webhook_auth_header_value"] == requested.post_call_token
    # A second request (the actor retried) asks for nothing more.
    assert call_transcript_request(call_id=finished_call.pk).post_call_ref == requested.post_call_ref
    assert sum(1 for j in emulator.transcripts.values() if j.request["webhook_url"] == job.request["webhook_url"]) == 1

    _done(emulator, requested.post_call_ref)
    body = {"transcript_id": requested.post_call_ref, "status": "completed"}
    assert _webhook(in_tenant_a, finished_call, body, requested.post_call_token) == 204
    stored = call_transcript_store(call_id=finished_call.pk, transcript_id=requested.post_call_ref)

    assert stored is not None
    assert stored.post_call_status == Call.PostCallTranscript.COMPLETED
    assert "kitchen sink" in stored.post_call_transcript.lower()
    actions = list(
        AuditEvent.objects.filter(action__startswith="call.post_call").order_by("pk").values_list("action", flat=True)
    )
    assert actions == ["call.post_call_transcript_requested", "call.post_call_transcript_stored"]


def test_a_business_that_did_not_opt_in_sends_nothing(
    in_tenant_a: Any, finished_call: Call, emulator: AssemblyAIBatchEmulator
) -> None:
    before = len(emulator.transcripts)
    call = call_transcript_request(call_id=finished_call.pk)

    assert (call.post_call_status, call.post_call_ref, call.post_call_token) == ("", "", "")
    assert len(emulator.transcripts) == before
    assert not AuditEvent.objects.filter(action__startswith="call.post_call").exists()


def test_webhooks_without_the_calls_token_or_transcript_are_refused_and_change_nothing(
    in_tenant_a: Any, finished_call: Call, emulator: AssemblyAIBatchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _opt_in(emulator, monkeypatch)
    requested = call_transcript_request(call_id=finished_call.pk)
    good = {"transcript_id": requested.post_call_ref, "status": "completed"}

    assert _webhook(in_tenant_a, finished_call, good, "not-the-token") == 404
    assert _webhook(in_tenant_a, finished_call, good, "") == 404
    assert _webhook(in_tenant_a, finished_call, {**good, "transcript_id": "other"}, requested.post_call_token) == 404
    assert _webhook(in_tenant_a, finished_call, good, requested.post_call_token, schema="no_such_business") == 404
    # The shared schemas hold no calls: asked about one, the answer is the same 404, not a database error.
    for shared in ("public", "tenant_template"):
        assert _webhook(in_tenant_a, finished_call, good, requested.post_call_token, schema=shared) == 404
    assert _webhook(in_tenant_a, finished_call, {"status": "completed"}, requested.post_call_token) == 400
    assert call_transcript_store(call_id=finished_call.pk, transcript_id="other") is None
    call = Call.objects.get(pk=finished_call.pk)
    assert (call.post_call_status, call.post_call_transcript) == (Call.PostCallTranscript.REQUESTED, "")


def test_a_business_that_opted_in_with_its_own_key_is_transcribed_with_it_and_masked_if_it_redacts(
    in_tenant_a: Any, finished_call: Call, emulator: AssemblyAIBatchEmulator, settings: Any
) -> None:
    settings.SPEECH_PROVIDER_BASE_URLS = {**settings.SPEECH_PROVIDER_BASE_URLS, "assemblyai": emulator.url}
    provider_key_save(provider="assemblyai", api_key=KEY, actor=None)
    post_call_transcription_set(enabled=True, actor=None)
    AgentConfig.objects.update(redact_transcripts=True)

    requested = call_transcript_request(call_id=finished_call.pk)
    _done(emulator, requested.post_call_ref)
    # What the vendor heard, said the way callers give numbers.
    emulator.transcripts[requested.post_call_ref].text = "Call me back on 555 201 3445."
    stored = call_transcript_store(call_id=finished_call.pk, transcript_id=requested.post_call_ref)

    # The emulator takes only KEY: the request went with the business's key.
    assert stored is not None
    assert stored.post_call_status == Call.PostCallTranscript.COMPLETED
    assert stored.post_call_transcript == "Call me back on [phone]."


def test_an_opted_in_business_without_its_key_gets_a_failed_transcript_and_nothing_is_sent(
    in_tenant_a: Any, finished_call: Call, emulator: AssemblyAIBatchEmulator, settings: Any
) -> None:
    settings.SPEECH_PROVIDER_BASE_URLS = {**settings.SPEECH_PROVIDER_BASE_URLS, "assemblyai": emulator.url}
    provider_key_save(provider="assemblyai", api_key=KEY, actor=None)
    post_call_transcription_set(enabled=True, actor=None)
    provider_key_delete(provider="assemblyai", actor=None)
    before = len(emulator.transcripts)

    call = call_transcript_request(call_id=finished_call.pk)

    assert (call.post_call_status, call.post_call_ref) == (Call.PostCallTranscript.FAILED, "")
    assert len(emulator.transcripts) == before
    failed = AuditEvent.objects.get(action="call.post_call_transcript_failed")
    assert failed.data["error"] == "no AssemblyAI key of the business's own is stored"
