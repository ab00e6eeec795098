"""WhisperSpeechToText on piper speech passed through the 8 kHz μ-law phone channel."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import numpy as np
import pytest

from calls.audio import mulaw_decode, mulaw_encode, resample
from calls.dialogue.extract import extract_phone
from calls.pipeline.protocols import SpeechToText, SttHints
from calls.providers.piper_tts import PiperTextToSpeech, piper_available
from calls.providers.whisper_stt import (
    DIGIT_WORDS_PROMPT,
    WhisperSpeechToText,
    transcript_cut_short,
    whisper_prompt,
    window_frames,
)

pytestmark = pytest.mark.skipif(not piper_available(), reason="piper-tts makes the test speech")

# How the pipeline should prompt while digits are expected. Without it tiny.en
# turns an ungrouped "three three four four" into "334" about a third of the
# time; with it, 20 of 20 piper renditions came out right.
DIGITS_PROMPT = "Acme Plumbing and Heating. My number is 0 7 1 1 9 8 3 3 2 0."

DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


def digits_in(text: str) -> str:
    """The digits a transcript reads out, whether written "555-20" or "five five five two oh"."""
    tokens = re.findall(r"[a-z]+|\d", text.lower())
    return "".join(DIGIT_WORDS.get(token, token if token.isdigit() else "") for token in tokens)


def over_the_phone(text: str) -> np.ndarray:
    """Piper speech as Whisper hears it from a caller: 8 kHz μ-law, back up to 16 kHz."""

    async def speak() -> tuple[np.ndarray, int]:
        tts = PiperTextToSpeech(variation=0)
        return np.concatenate([chunk async for chunk in tts.synthesize(text)]), tts.sample_rate

    pcm, rate = asyncio.run(speak())
    line = mulaw_decode(mulaw_encode(resample(pcm, rate, 8000)))
    return resample(line, 8000, 16000)


@pytest.fixture(scope="module")
def phone_number_audio() -> np.ndarray:
    return over_the_phone("My phone number is five five five two zero one three three four four.")


@pytest.fixture(scope="module")
def heating_audio() -> np.ndarray:
    return over_the_phone("Hi, my heating is broken and the house is freezing.")


def test_satisfies_the_protocol() -> None:
    stt = WhisperSpeechToText()
    assert isinstance(stt, SpeechToText)
    assert (stt.name, stt.sample_rate) == ("whisper", 16000)


@pytest.mark.asyncio
async def test_transcribes_a_phone_number_over_the_phone_line(phone_number_audio: np.ndarray) -> None:
    transcript = await WhisperSpeechToText().transcribe(phone_number_audio, prompt=DIGITS_PROMPT)
    assert "phone number" in transcript.text.lower()
    assert "5552013344" in digits_in(transcript.text)
    assert transcript.words == tuple(transcript.text.split())
    assert 0.5 < transcript.confidence <= 1.0


@pytest.mark.asyncio
async def test_noise_and_silence_give_empty_text() -> None:
    stt = WhisperSpeechToText()
    noise = np.random.default_rng(0).normal(0, 300, 32000).astype(np.int16)
    for audio in (noise, np.zeros(32000, dtype=np.int16)):
        # A short prompt is what Whisper likes to "hear" in noise; it must not leak out.
        transcript = await stt.transcribe(audio, prompt="Acme Plumbing")
        assert (transcript.text, transcript.confidence, transcript.words) == ("", 0.0, ())


@pytest.mark.asyncio
async def test_too_short_audio_is_not_decoded() -> None:
    transcript = await WhisperSpeechToText().transcribe(np.ones(800, dtype=np.int16))
    assert transcript.text == ""


@pytest.mark.asyncio
async def test_decoding_does_not_block_the_event_loop(heating_audio: np.ndarray) -> None:
    stt = WhisperSpeechToText()
    await stt.warm_up()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    transcript = await stt.transcribe(heating_audio)
    task.cancel()
    assert "heating is broken" in transcript.text.lower()
    # A decode takes 0.3 s or more; a blocked loop would tick at most once.
    # Far fewer than 30 ticks are required, as a busy machine delays wake-ups.
    assert ticks >= 5


@pytest.mark.asyncio
async def test_concurrent_calls_share_one_model(phone_number_audio: np.ndarray, heating_audio: np.ndarray) -> None:
    first, second = WhisperSpeechToText(), WhisperSpeechToText()
    results = await asyncio.gather(
        first.transcribe(phone_number_audio, prompt=DIGITS_PROMPT), second.transcribe(heating_audio)
    )
    assert "5552013344" in digits_in(results[0].text)
    assert "heating" in results[1].text.lower()
    assert first._engine is second._engine
    assert first._engine.model is not None


def test_rejects_a_missing_model(tmp_path: object) -> None:
    with pytest.raises(FileNotFoundError, match="no CTranslate2 Whisper model"):
        WhisperSpeechToText(model_dir=str(tmp_path))


@pytest.fixture(scope="module")
def name_audio() -> np.ndarray:
    return over_the_phone("My name is Robert Chen, and I need a plumber.")


@pytest.fixture(scope="module")
def spelled_audio() -> np.ndarray:
    return over_the_phone("K - E - V - Eye - N.")


@pytest.mark.asyncio
async def test_letters_only_hears_nothing_but_capitals_and_separators(name_audio: np.ndarray) -> None:
    stt = WhisperSpeechToText()

    free, letters = await asyncio.gather(stt.transcribe(name_audio), stt.transcribe_letters(name_audio))

    assert "plumber" in free.text.lower()
    assert letters.text
    assert re.fullmatch(r"[A-Z ,.\-]+", letters.text), letters.text


@pytest.mark.asyncio
async def test_letters_only_on_spelled_letters(spelled_audio: np.ndarray) -> None:
    transcript = await WhisperSpeechToText().transcribe_letters(spelled_audio, prompt="Spelled letters: J, O, H, N.")
    assert re.sub(r"[^A-Z]", "", transcript.text) in {"KEVIN", "KEBIN"}


@pytest.mark.asyncio
async def test_letters_only_decoding_leaves_the_shared_token_list_as_it_was(spelled_audio: np.ndarray) -> None:
    stt = WhisperSpeechToText()
    await stt.transcribe_letters(spelled_audio)
    tokens = list(stt._engine.non_letter_tokens())

    await stt.transcribe_letters(spelled_audio)
    await stt.transcribe_letters(spelled_audio)

    assert stt._engine.non_letter_tokens() == tokens


def test_hints_become_the_whisper_prompt() -> None:
    tenant = SttHints(business_name="Acme Plumbing", vocabulary=("Rheem", "Worcester Bosch"))
    assert whisper_prompt(tenant) == "Acme Plumbing. Rheem, Worcester Bosch."
    assert whisper_prompt(SttHints(business_name="Acme Plumbing")) == "Acme Plumbing."
    assert whisper_prompt(SttHints()) == ""
    # An expected answer is prompted by an example of its style; names get no prompt at all.
    assert whisper_prompt(replace(tenant, expect="digits")) == "My number is 555 201 3344."
    assert whisper_prompt(replace(tenant, expect="email")) == "My email is john.smith@example.com."
    assert whisper_prompt(replace(tenant, expect="name")) == ""
    assert whisper_prompt(replace(tenant, expect="yes_no")) == "Acme Plumbing. Rheem, Worcester Bosch."


@pytest.fixture(scope="module")
def double_digit_audio() -> np.ndarray:
    return over_the_phone("My number is five five five, nine oh two, double seven six oh.")


@pytest.mark.asyncio
async def test_a_digits_hint_adds_a_reading_prompted_with_digits_as_words(double_digit_audio: np.ndarray) -> None:
    # A number the corpus's callers say; with numerals alone tiny.en drops "double seven" ("555-902.").
    audio = double_digit_audio
    stt = WhisperSpeechToText()
    numbers = await stt.transcribe(audio, hints=SttHints(expect="digits"))
    numerals = await stt.transcribe(audio, prompt=whisper_prompt(SttHints(expect="digits")))
    as_words = await stt.transcribe(audio, prompt=DIGIT_WORDS_PROMPT)

    assert numbers.text == numerals.text
    assert numbers.alternatives == (as_words.text,)
    assert extract_phone(as_words.text) == "+15559027760", as_words.text


@pytest.mark.asyncio
async def test_a_spelling_hint_adds_the_letters_only_reading(spelled_audio: np.ndarray) -> None:
    stt = WhisperSpeechToText()
    hints = SttHints(expect="spelling", answer_hint="Kevin")
    plain = await stt.transcribe(spelled_audio, hints=SttHints(expect="free"))
    spelling = await stt.transcribe(spelled_audio, hints=hints)
    letters = await stt.transcribe_letters(spelled_audio, hints=hints)

    assert plain.alternatives == ()
    # The same decode as asking for letters alone, with the spelling prompt.
    assert letters.text
    assert spelling.alternatives == (letters.text,)
    assert re.fullmatch(r"[A-Z ,.\-]+", letters.text), letters.text


@pytest.mark.parametrize(
    ("seconds", "window_s", "frames"),
    [
        (2.0, 10.0, 1000),  # a short turn: the window
        (9.5, 10.0, 1050),  # the turn and a second of quiet after it
        (2.0, 30.0, 3000),  # the full window: nothing cut
        (29.5, 10.0, 3000),  # never past Whisper's own window
        (2.005, 1.0, 302),  # always even: the encoder halves it
    ],
)
def test_the_encoder_window_holds_the_turn_and_a_second_of_quiet(seconds, window_s, frames) -> None:
    assert window_frames(round(seconds * 16000), window_s) == frames


def test_an_encoder_window_outside_whispers_own_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        WhisperSpeechToText(window_s=45)
    with pytest.raises(ValueError, match="full_window_s"):
        WhisperSpeechToText(full_window_s=0.5)


def test_names_letters_and_numbers_get_the_full_window_and_other_turns_the_short_one() -> None:
    stt = WhisperSpeechToText()
    assert {expect: stt.window_for(expect) for expect in ("name", "spelling", "email", "free", "digits", "yes_no")} == {
        "name": 30.0,
        "spelling": 30.0,
        "email": 30.0,
        "free": 20.0,
        "digits": 30.0,
        "yes_no": 20.0,
    }


@pytest.mark.parametrize(
    ("text", "seconds", "short"),
    [
        ("Thank you. Let me read that back.", 7.6, True),  # a whole read-back was said
        ("Thank you. Let me read that back. James Wilson 555-443333. Is that right?", 7.6, False),
        ("Yes.", 1.2, False),
        ("Hi, my poodle needs a bath in a haircut.", 3.4, False),
    ],
)
def test_a_transcript_too_short_for_its_audio_is_cut_short(text: str, seconds: float, short: bool) -> None:
    assert transcript_cut_short(text, seconds) is short


def test_a_beam_outside_one_to_ten_is_refused() -> None:
    for beam in (0, 11):
        with pytest.raises(ValueError, match="beam_size"):
            WhisperSpeechToText(beam_size=beam)


@pytest.mark.asyncio
async def test_spelled_letters_are_heard_greedily_whatever_the_beam(spelled_audio: np.ndarray) -> None:
    hints = SttHints(expect="spelling")
    wide = await WhisperSpeechToText(beam_size=5).transcribe(spelled_audio, hints=hints)
    greedy = await WhisperSpeechToText(beam_size=1).transcribe(spelled_audio, hints=hints)
    assert (wide.text, wide.alternatives, wide.confidence) == (greedy.text, greedy.alternatives, greedy.confidence)


@pytest.mark.asyncio
async def test_a_beam_of_one_or_five_hears_an_open_turn(heating_audio: np.ndarray) -> None:
    for beam in (1, 5):
        transcript = await WhisperSpeechToText(beam_size=beam).transcribe(heating_audio)
        assert "heating is broken" in transcript.text.lower()


@pytest.mark.asyncio
async def test_a_short_encoder_window_still_hears_the_turn(heating_audio: np.ndarray) -> None:
    short = await WhisperSpeechToText(window_s=10).transcribe(heating_audio)
    # Not word for word what the full window hears: a short window slips on small
    # words ("and" heard as "in"); bench/whisper_window.py counts how often.
    heard = re.sub(r"[^a-z ]", "", short.text.lower())
    assert heard.startswith("hi my heating is broken")
    assert heard.endswith("house is freezing")
