"""Measure the offline speech stack as calls use it: over an 8 kHz μ-law phone line.

Prints STT latency (p50/p95) for ~2 s and ~6 s utterances including μ-law
decode and 8k->16k resampling, STT word error rate on ten receptionist
sentences spoken by piper, TTS time to first chunk for piper and espeak,
and resident memory once everything is loaded. Needs no database.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import time
from collections.abc import AsyncGenerator, Awaitable
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calls.audio import mulaw_decode, mulaw_encode, resample
from calls.pipeline.protocols import Pcm16, TextToSpeech
from calls.providers import piper_tts
from calls.providers.espeak_tts import EspeakTextToSpeech
from calls.providers.piper_tts import PiperTextToSpeech
from calls.providers.silero_vad import SileroVoiceActivityDetector
from calls.providers.whisper_stt import WhisperSpeechToText

BUSINESS_PROMPT = "Acme Plumbing and Heating."
REPEATS = 10
WER_RENDITIONS = 3

# (what the caller says, what a perfect transcript reads, before normalising)
CALLER_SENTENCES = [
    ("Hi, my kitchen sink is leaking all over the floor.", "hi my kitchen sink is leaking all over the floor"),
    ("My name is Maria Gonzalez.", "my name is maria gonzalez"),
    ("My phone number is five five five, two zero one, three three four four.", "my phone number is 555 201 3344"),
    ("The address is forty two Oak Street.", "the address is 42 oak street"),
    ("My heating is broken and the house is freezing.", "my heating is broken and the house is freezing"),
    ("Are you open on Saturdays?", "are you open on saturdays"),
    (
        "I would like to book an appointment for Tuesday morning.",
        "i would like to book an appointment for tuesday morning",
    ),
    ("Can I speak to a real person, please?", "can i speak to a real person please"),
    ("My email is maria at example dot com.", "my email is maria at example dot com"),
    ("Yes, that is correct, thank you.", "yes that is correct thank you"),
]
SHORT_UTTERANCE = "Yes, that's right, thank you."
LONG_UTTERANCE = "Hi, my heating stopped working last night and the whole house is freezing, can someone come today?"
AGENT_PROMPTS = [
    "Thanks for calling Acme Plumbing and Heating, this is the virtual receptionist. How can I help?",
    "Could I have your name, please?",
    "What is the best number to reach you on?",
    "Let me read that back to you.",
    "Thank you, someone will call you back shortly. Goodbye.",
]

_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TENS = {"twenty": 2, "thirty": 3, "forty": 4, "fifty": 5, "sixty": 6, "seventy": 7, "eighty": 8, "ninety": 9}


_CONTRACTIONS = {"n't": " not", "'re": " are", "'ll": " will", "'d": " would", "'m": " am", "'s": " is"}


def normalise(text: str) -> list[str]:
    """Lower-case words with numbers as digit words, so "42", "4 2" and "forty two" all match.

    Tens words become their digit ("forty" -> "four"), which is right for the
    "forty two" kind of number these sentences contain. Contractions are
    expanded ("that's" -> "that is"): either spelling is a correct transcript.
    """
    text = text.lower().replace("@", " at ").replace("-", " ")
    for short, long in _CONTRACTIONS.items():
        text = text.replace(short, long)
    text = re.sub(r"(?<=[a-z])\.(?=[a-z])", " dot ", text)
    words: list[str] = []
    for token in re.findall(r"[a-z']+|\d", text):
        if token in _TENS:
            words.append(_DIGITS[_TENS[token]])
        elif token.isdigit():
            words.append(_DIGITS[int(token)])
        else:
            words.append(token)
    return words


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summary_ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:4.0f} ms, p95 {percentile(values, 0.95) * 1000:4.0f} ms"


async def speak(tts: TextToSpeech, text: str) -> Pcm16:
    return np.concatenate([chunk async for chunk in tts.synthesize(text)])


def phone_line(pcm: Pcm16, rate: int) -> bytes:
    """What the carrier delivers: 8 kHz μ-law bytes."""
    return mulaw_encode(resample(pcm, rate, 8000))


async def timed(work: Awaitable[object]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def first_chunk_seconds(tts: TextToSpeech, text: str) -> float:
    started = time.perf_counter()
    stream = tts.synthesize(text)
    await anext(stream)
    elapsed = time.perf_counter() - started
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()  # the rest of the reply is not needed
    return elapsed


async def main() -> None:
    # Other processes on the box skew every number; say how busy it was.
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    process = psutil.Process()
    baseline_mb = process.memory_info().rss / 2**20

    stt = WhisperSpeechToText()
    piper = PiperTextToSpeech()
    espeak = EspeakTextToSpeech()
    load_stt = await timed(stt.warm_up())
    load_piper = await timed(piper.warm_up())
    vads = [SileroVoiceActivityDetector(8000) for _ in range(8)]
    print(f"load: whisper tiny.en {load_stt:.2f} s (incl. one decode), piper worker {load_piper:.2f} s")

    # STT latency: from the utterance's μ-law bytes to the transcript.
    async def recognise(line: bytes, prompt: str = "") -> str:
        transcript = await stt.transcribe(resample(mulaw_decode(line), 8000, 16000), prompt=prompt)
        return transcript.text

    for label, text in (("short", SHORT_UTTERANCE), ("long", LONG_UTTERANCE)):
        line = phone_line(await speak(piper, text), piper.sample_rate)
        cpu_before = process.cpu_times()
        latencies = [await timed(recognise(line, BUSINESS_PROMPT)) for _ in range(REPEATS)]
        cpu_after = process.cpu_times()
        # CPU time is what other calls lose; unlike wall time it barely moves with load.
        cpu_ms = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / REPEATS * 1000
        seconds = len(line) / 8000
        print(f"STT {label} utterance ({seconds:.1f} s, 8k->16k): {summary_ms(latencies)}, CPU {cpu_ms:.0f} ms each")
    line = phone_line(await speak(piper, LONG_UTTERANCE), piper.sample_rate)
    for concurrent in (2, 4):
        started = time.perf_counter()
        await asyncio.gather(*(recognise(line) for _ in range(concurrent)))
        print(
            f"STT {concurrent} long utterances at once: all done after {(time.perf_counter() - started) * 1000:.0f} ms"
        )

    # WER over the phone line, piper voice. Piper samples noise, so every
    # rendition differs; a few per sentence steady the number.
    lines = [
        (phone_line(await speak(piper, spoken), piper.sample_rate), expected)
        for spoken, expected in CALLER_SENTENCES
        for _ in range(WER_RENDITIONS)
    ]
    for prompt in ("", BUSINESS_PROMPT):
        errors = words = 0
        misses: list[str] = []
        for line, expected in lines:
            heard = await recognise(line, prompt)
            reference, hypothesis = normalise(expected), normalise(heard)
            errors += word_errors(reference, hypothesis)
            words += len(reference)
            if reference != hypothesis:
                misses.append(f"{expected!r} -> {heard!r}")
        label = "business prompt" if prompt else "no prompt"
        count = f"{len(CALLER_SENTENCES)} sentences x {WER_RENDITIONS} piper renditions"
        print(f"STT WER, {count} via 8k mu-law, {label}: {errors / words:.1%} ({errors}/{words} words)")
        for miss in misses:
            print(f"    {miss}")

    # TTS time to first chunk.
    for tts in (piper, espeak):
        firsts = [await first_chunk_seconds(tts, text) for _ in range(3) for text in AGENT_PROMPTS]
        print(f"TTS {tts.name} first chunk ({len(firsts)} prompts): {summary_ms(firsts)}")
    concurrent_firsts = await asyncio.gather(*(first_chunk_seconds(piper, text) for text in AGENT_PROMPTS[:3]))
    firsts_ms = ", ".join(f"{seconds * 1000:.0f}" for seconds in concurrent_firsts)
    print(f"TTS piper, 3 calls at once: first chunks after {firsts_ms} ms")

    # Memory once everything is loaded.
    main_mb = process.memory_info().rss / 2**20
    worker_pid = piper_tts.worker_stats().pid
    worker_mb = psutil.Process(worker_pid).memory_info().rss / 2**20 if worker_pid else 0.0
    print(
        f"RSS: this process {main_mb:.0f} MB (was {baseline_mb:.0f} MB before loading; whisper + 8 VADs + numpy), "
        f"piper worker {worker_mb:.0f} MB, total {main_mb + worker_mb:.0f} MB"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    for vad in vads:
        vad.close()
    piper_tts.shutdown_worker()


if __name__ == "__main__":
    asyncio.run(main())
