"""The circuit breaker per tenant and engine, alone and in the chains the factory builds."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from django.test import override_settings

from calls.pipeline import factory
from calls.pipeline.breaker import CircuitBreakers
from calls.pipeline.factory import CIRCUIT_OPEN, breaker_failure, engine_specs, shared_engines_clear, tts_chain
from calls.pipeline.fallback import SwitchLog
from calls.providers.emulators.elevenlabs import ElevenLabsEmulator
from calls.providers.piper_tts import piper_available


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breakers(clock: Clock) -> CircuitBreakers:
    return CircuitBreakers(threshold=3, window_s=60, cooldown_s=30, trial_s=20, clock=clock)


def test_three_failures_in_a_minute_keep_new_calls_off_the_engine_for_that_tenant_only(
    breakers: CircuitBreakers, clock: Clock
) -> None:
    for _ in range(2):
        breakers.failed("alpha", "elevenlabs")
        clock.now += 10
    assert breakers.allows("alpha", "elevenlabs") is True
    breakers.failed("alpha", "elevenlabs")

    assert breakers.allows("alpha", "elevenlabs") is False
    assert breakers.is_open("alpha", "elevenlabs") is True
    assert breakers.allows("beta", "elevenlabs") is True
    assert breakers.allows("alpha", "cartesia") is True


def test_failures_spread_beyond_the_window_do_not_open_it(breakers: CircuitBreakers, clock: Clock) -> None:
    for _ in range(5):
        breakers.failed("alpha", "elevenlabs")
        clock.now += 31
    assert breakers.allows("alpha", "elevenlabs") is True
    assert breakers.is_open("alpha", "elevenlabs") is False


def test_after_the_cool_down_one_call_tries_and_its_verdict_closes_or_reopens(
    breakers: CircuitBreakers, clock: Clock
) -> None:
    for _ in range(3):
        breakers.failed("alpha", "elevenlabs")
    clock.now += 29
    assert breakers.allows("alpha", "elevenlabs") is False
    clock.now += 1
    assert breakers.allows("alpha", "elevenlabs") is True  # the trial call
    assert breakers.allows("alpha", "elevenlabs") is False  # others wait for it
    breakers.failed("alpha", "elevenlabs")  # the trial failed: a new cool-down
    clock.now += 29
    assert breakers.allows("alpha", "elevenlabs") is False
    clock.now += 1
    assert breakers.allows("alpha", "elevenlabs") is True
    clock.now += 20  # the trial call went by without a failure
    assert breakers.allows("alpha", "elevenlabs") is True
    assert breakers.is_open("alpha", "elevenlabs") is False
    assert breakers.allows("alpha", "elevenlabs") is True


@pytest.fixture
def voice(monkeypatch: pytest.MonkeyPatch) -> Iterator[ElevenLabsEmulator]:
    monkeypatch.setenv("VOICEDESK_TEST_EL_KEY", "el-key-1")
    shared_engines_clear()
    with ElevenLabsEmulator(api_keys=("el-key-1",)) as running:
        yield running
    shared_engines_clear()


@pytest.mark.skipif(not piper_available(), reason="piper-tts speaks for the emulator")
@pytest.mark.asyncio
@override_settings(VOICEDESK_TTS="piper")
async def test_calls_that_keep_failing_on_a_voice_open_its_circuit_for_the_next_calls(
    voice: ElevenLabsEmulator, breakers: CircuitBreakers, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory, "BREAKERS", breakers)
    specs = engine_specs("elevenlabs", {"key_ref": "VOICEDESK_TEST_EL_KEY", "base_url": voice.url}, [])
    voice.fault = "http_500"
    for _ in range(3):  # three calls, each switching away after its first sentence
        switches = SwitchLog()
        switches.listeners.append(functools.partial(breaker_failure, "alpha"))
        chain = tts_chain(specs, switches, tenant="alpha")
        assert [c async for c in chain.synthesize("Hello.")]
        assert [(s.from_engine, s.reason) for s in switches.entries] == [("elevenlabs", "error")]

    fourth = SwitchLog()
    chain = tts_chain(specs, fourth, tenant="alpha")
    other_tenant = tts_chain(specs, SwitchLog(), tenant="beta")

    assert [engine.name for engine in chain.engines] == ["piper"]
    assert [(s.from_engine, s.to_engine, s.reason, s.detail) for s in fourth.entries] == [
        (str(specs[0]), "piper", "unavailable", CIRCUIT_OPEN)
    ]
    assert [engine.name for engine in other_tenant.engines] == ["elevenlabs", "piper"]
    assert len(voice.requests) == 3  # the fourth call never tried it

    # After the cool-down one call tries again; the vendor is back, so the circuit closes.
    voice.fault = None
    clock.now += 30
    trial = tts_chain(specs, SwitchLog(), tenant="alpha")
    assert [engine.name for engine in trial.engines] == ["elevenlabs", "piper"]
    assert [engine.name for engine in tts_chain(specs, SwitchLog(), tenant="alpha").engines] == ["piper"]
    assert [c async for c in trial.synthesize("Hello.")]
    clock.now += 20
    assert [engine.name for engine in tts_chain(specs, SwitchLog(), tenant="alpha").engines] == ["elevenlabs", "piper"]
