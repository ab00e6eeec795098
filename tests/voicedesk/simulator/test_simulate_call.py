"""``simulate_call``'s caller voice and line options: read before any call is placed."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from calls.providers.espeak_tts import EspeakTextToSpeech
from voicedesk.management.commands.simulate_call import Command
from voicedesk.simulator.impair import LineImpairment

SCENARIO = str(Path(__file__).resolve().parents[3] / "scenarios" / "corpus" / "lock-new-house-rekey-double.yaml")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--voice", "festival"], "unknown caller voice engine 'festival' (known: piper, espeak, offline)"),
        (["--voice", "espeak:pitch=120"], "caller voice 'espeak:pitch=120': pitch must be 0..99, got 120"),
        (["--impair", "noise=18,loss=1.5"], "loss must be a fraction from 0 up to 1, got 1.5"),
    ],
)
@override_settings(TWILIO_AUTH_TOKEN="test-token")
def test_a_voice_or_line_that_cannot_be_used_fails_before_any_call(options: list[str], message: str) -> None:
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("simulate_call", "--scenario", SCENARIO, *options, stdout=out)
    assert str(error.value) == message
    assert "Simulating" not in out.getvalue()


def test_voice_and_line_reach_the_caller_models() -> None:
    command = Command(stdout=StringIO())
    models = command._speech_models("espeak:voice=en-gb,speed=1.1", "noise=18,loss=0.01,seed=3")
    assert models is not None
    assert isinstance(models.tts, EspeakTextToSpeech)
    assert (models.tts.voice, models.tts.speed) == ("en-gb", 1.1)
    assert models.line == LineImpairment(snr_db=18, loss=0.01, seed=3)
    assert command.stdout.getvalue() == "Caller voice: espeak:voice=en-gb,speed=1.1; line: noise=18,loss=0.01,seed=3.\n"
    line_only = Command(stdout=StringIO())._speech_models(None, "gain=-10")
    assert line_only is not None
    assert line_only.line == LineImpairment(gain_db=-10)


def test_without_voice_or_line_the_shared_default_is_used() -> None:
    assert Command(stdout=StringIO())._speech_models(None, "") is None
