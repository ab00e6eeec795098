"""Deadline and fallback wrappers, around real engines made to fail.

A failing engine here is a real provider configured wrongly (espeak-ng run
as a program that writes no audio) or a real engine subclassed to raise,
stall or return garbage, as a broken cloud vendor would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest

from calls.audio import resample
from calls.pipeline.factory import shared_stt, shared_tts
from calls.pipeline.fallback import (
    APOLOGY,
    DeadlineSpeechToText,
    DeadlineTextToSpeech,
    EngineError,
    EnginesExhaustedError,
    FallbackSpeechToText,
    FallbackTextToSpeech,
    SwitchLog,
)
from calls.pipeline.protocols import Pcm16, SpeechToText, SttHints, TextToSpeech, Transcript
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.whisper_stt import WhisperSpeechToText
from voicedesk.core.metrics import PROVIDER_ERRORS, PROVIDER_FALLBACKS


class MisconfiguredVoice(EspeakTextToSpeech):
    """espeak-ng pointed at a program that exits without audio: every synthesis raises."""

    name = "misconfigured-voice"

    def __init__(self) -> None:
        super().__init__(executable="false")


class StallingVoice(EspeakTextToSpeech):
    """A voice whose vendor never answers."""

    name = "stalling-voice"

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        await asyncio.sleep(3600)
        async for chunk in super().synthesize(text):
            yield chunk


class GarbledVoice(EspeakTextToSpeech):
    """A voice that sends something other than 16-bit PCM (float samples)."""

    name = "garbled-voice"

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        async for chunk in super().synthesize(text):
            yield chunk.astype(np.float32)  # type: ignore[misc]


class RaisingWhisper(WhisperSpeechToText):
    name = "raising-stt"

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None, prompt: str | None = None) -> Transcript:
        raise ConnectionError("vendor unreachable")


class StallingWhisper(WhisperSpeechToText):
    name = "stalling-stt"

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None, prompt: str | None = None) -> Transcript:
        await asyncio.sleep(3600)
        return await super().transcribe(audio, hints=hints)


class GarbledWhisper(WhisperSpeechToText):
    name = "garbled-stt"

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None, prompt: str | None = None) -> Transcript:
        heard = await super().transcribe(audio, hints=hints)
        return Transcript(text=heard.text, confidence=float("nan"))


def _offline_tts() -> TextToSpeech:
    return DeadlineTextToSpeech(shared_tts("espeak"), first_chunk_s=10)


async def _audio(tts: TextToSpeech, text: str) -> Pcm16:
    return np.concatenate([chunk async for chunk in tts.synthesize(text)])


@pytest.fixture(scope="module")
def heating_audio() -> Pcm16:
    """A caller's sentence at 16 kHz, as the speech-to-text engines take it."""
    espeak = EspeakTextToSpeech()

    async def speak() -> Pcm16:
        return await _audio(espeak, "Hi, my heating is broken and the house is freezing.")

    return resample(asyncio.run(speak()), espeak.sample_rate, 16000)


@pytest.mark.asyncio
async def test_a_deadline_passes_a_prompt_engine_through_and_fails_a_stalled_one() -> None:
    espeak = EspeakTextToSpeech()
    direct = await _audio(espeak, "Thank you.")
    guarded = await _audio(DeadlineTextToSpeech(espeak, first_chunk_s=2), "Thank you.")
    assert np.array_equal(guarded, direct)

    started = time.monotonic()
    with pytest.raises(EngineError) as failure:
        await _audio(DeadlineTextToSpeech(StallingVoice(), first_chunk_s=0.2), "Thank you.")
    assert (failure.value.engine, failure.value.reason) == ("stalling-voice", "deadline")
    assert time.monotonic() - started < 3.0


# Only the stalling engine meets a short deadline; the others get time to
# fail their own way on a loaded machine.
@pytest.mark.parametrize(
    ("primary", "deadline_s", "reason"),
    [(MisconfiguredVoice, 10, "error"), (StallingVoice, 0.3, "deadline"), (GarbledVoice, 10, "garbage")],
)
@pytest.mark.asyncio
async def test_a_failing_voice_is_replaced_after_an_apology_and_the_switch_is_logged(
    primary: type[EspeakTextToSpeech], deadline_s: float, reason: str
) -> None:
    switches = SwitchLog()
    chain = FallbackTextToSpeech(
        [DeadlineTextToSpeech(primary(), first_chunk_s=deadline_s), _offline_tts()], switches=switches
    )
    offline = shared_tts("espeak")
    apology = await _audio(offline, APOLOGY)
    sentence = await _audio(offline, "Thanks for calling.")

    first = await _audio(chain, "Thanks for calling.")
    second = await _audio(chain, "Thanks for calling.")

    # The caller hears the apology, then the sentence from the offline voice.
    assert np.array_equal(first, np.concatenate([apology, sentence]))
    # The rest of the call stays on the engine that works.
    assert np.array_equal(second, sentence)
    assert [(s.role, s.from_engine, s.to_engine, s.reason) for s in switches.entries] == [
        ("tts", primary.name, "espeak", reason)
    ]
    assert chain.active.name == "espeak"


@pytest.mark.asyncio
async def test_a_voice_at_another_rate_is_resampled_to_the_chain_rate() -> None:
    switches = SwitchLog()
    chain = FallbackTextToSpeech([MisconfiguredVoice(), _offline_tts()], switches=switches)
    chain.sample_rate = 16000  # as if the first engine were a 16 kHz cloud voice
    offline = shared_tts("espeak")

    audio = await _audio(chain, "Thanks for calling.")

    expected = len(await _audio(offline, APOLOGY)) + len(await _audio(offline, "Thanks for calling."))
    assert abs(len(audio) - expected * 16000 / offline.sample_rate) <= 4


@pytest.mark.asyncio
async def test_a_switch_is_stamped_by_the_logs_clock() -> None:
    switches = SwitchLog(clock=lambda: datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    chain = FallbackTextToSpeech([MisconfiguredVoice(), _offline_tts()], switches=switches)
    await _audio(chain, "Hello.")
    [switch] = switches.entries
    assert switch.at == "2026-03-02T09:30:00+00:00"
    assert switch.detail.startswith("RuntimeError: espeak-ng produced no usable audio")


@pytest.mark.asyncio
async def test_when_every_voice_fails_the_chain_says_so() -> None:
    switches = SwitchLog()
    chain = FallbackTextToSpeech([MisconfiguredVoice()], switches=switches)
    with pytest.raises(EnginesExhaustedError, match="every text-to-speech engine failed; last: misconfigured-voice"):
        await _audio(chain, "Hello.")
    assert switches.entries == []


@pytest.mark.parametrize(
    ("primary", "deadline_s", "reason"),
    [(RaisingWhisper, 15, "error"), (StallingWhisper, 0.5, "deadline"), (GarbledWhisper, 15, "garbage")],
)
@pytest.mark.asyncio
async def test_a_failing_recognizer_hands_the_same_audio_to_the_next(
    heating_audio: Pcm16, primary: type[WhisperSpeechToText], deadline_s: float, reason: str
) -> None:
    switches = SwitchLog()
    heard: list[str] = []
    switches.listeners.append(lambda switch: heard.append(switch.from_engine))
    offline = shared_stt("whisper")
    assert isinstance(offline, SpeechToText)
    chain = FallbackSpeechToText(
        [DeadlineSpeechToText(primary(), result_s=deadline_s), DeadlineSpeechToText(offline, result_s=15)],
        switches=switches,
    )

    transcript = await chain.transcribe(heating_audio, hints=SttHints(business_name="Acme Plumbing"))

    assert "heating" in transcript.text.lower()
    assert [(s.role, s.from_engine, s.to_engine, s.reason) for s in switches.entries] == [
        ("stt", primary.name, "whisper", reason)
    ]
    assert heard == [primary.name]
    assert chain.active.name == "whisper"


@pytest.mark.asyncio
async def test_when_every_recognizer_fails_the_chain_says_so(heating_audio: Pcm16) -> None:
    chain = FallbackSpeechToText([RaisingWhisper()], switches=SwitchLog())
    with pytest.raises(EnginesExhaustedError, match="ConnectionError: vendor unreachable"):
        await chain.transcribe(heating_audio)


def test_each_switch_is_counted_for_the_metrics() -> None:
    errors = PROVIDER_ERRORS.labels(role="tts", provider="cloud-voice")
    fallbacks = PROVIDER_FALLBACKS.labels(role="tts", provider="piper")
    before = (errors._value.get(), fallbacks._value.get())

    SwitchLog().record("tts", "cloud-voice", "piper", "deadline", "no result in time")

    assert (errors._value.get(), fallbacks._value.get()) == (before[0] + 1, before[1] + 1)
