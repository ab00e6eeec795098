"""Whisper's encoder window and beam: decode time and accuracy, full 30 s window against a shorter one.

Speaks the caller lines of the scenario corpus (opening lines, questions,
names, spelled surnames and callback numbers) with piper, sends them over an
8 kHz μ-law phone line, and decodes each with the same hints a call would
give, once per window. Prints, per window, the decode time (p50/p95) and the
words, digit strings and letter strings that came out wrong, so a shorter
window is only taken if it hears as well as the full one. Needs no database.

    python bench/whisper_window.py [--windows 30,10] [--beams 5] [--limit N]

Each window is decoded with each beam width (``--beams 1,5`` compares greedy
decoding with a beam of five); spelling turns are always decoded greedily by
the product, whatever the beam.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import django
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _django import ROOT

# The extraction rules read the settings; no database is touched.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
django.setup()

from calls.audio import mulaw_decode, mulaw_encode, resample  # noqa: E402
from calls.dialogue.extract import extract_digits, spelled_letters  # noqa: E402
from calls.pipeline.protocols import Expectation, Pcm16, SttHints  # noqa: E402
from calls.providers.piper_tts import PiperTextToSpeech  # noqa: E402
from calls.providers.whisper_stt import WhisperSpeechToText  # noqa: E402

CORPUS = ROOT / "scenarios" / "corpus"


@dataclass(frozen=True, slots=True)
class Line:
    expect: Expectation
    written: str  # what a perfect transcript reads
    spoken: str  # what the voice is given


@dataclass(slots=True)
class Tally:
    decode_ms: list[float] = field(default_factory=list)
    word_errors: int = 0
    words: int = 0
    numbers_wrong: int = 0
    numbers: int = 0
    spellings_wrong: int = 0
    spellings: int = 0


def corpus_lines(limit: int) -> list[Line]:
    import yaml

    from voicedesk.simulator.caller import say_number, spell, spelled_line

    lines: list[Line] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        caller = yaml.safe_load(path.read_text(encoding="utf-8"))["caller"]
        facts = caller["facts"]
        lines.append(Line("free", caller["says_first"], caller["says_first"]))
        lines += [Line("free", ask, ask) for ask in caller.get("asks") or []]
        lines.append(Line("name", f"My name is {facts['name']}.", f"My name is {facts['name']}."))
        surname = facts["name"].split()[-1]
        lines.append(Line("spelling", spell(surname), spelled_line(surname).spoken))
        number = str(facts["callback_number"])
        lines.append(Line("digits", number, say_number(number)))
    return lines[:limit] if limit else lines


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


def _word_errors(reference: str, heard: str) -> int:
    ref, hyp = _words(reference), _words(heard)
    matched = sum(block.size for block in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks())
    return max(len(ref), len(hyp)) - matched


def _letters(text: str) -> str:
    return "".join("".join(group) for group in spelled_letters(text, spelling=True))


async def phone_line(tts: PiperTextToSpeech, text: str) -> Pcm16:
    chunks = [chunk async for chunk in tts.synthesize(text)]
    line = mulaw_decode(mulaw_encode(resample(np.concatenate(chunks), tts.sample_rate, 8000)))
    # A turn as the session hands it over: a little quiet before (pre-roll) and after (the pause).
    quiet = np.zeros(2400, dtype=np.int16)
    return resample(np.concatenate([quiet, line, quiet[:1600]]), 8000, WhisperSpeechToText.sample_rate)


async def run(windows: list[float], beams: list[int], limit: int) -> dict[tuple[float, int], Tally]:
    tts = PiperTextToSpeech(variation=0)
    engines = {
        (window, beam): WhisperSpeechToText(window_s=window, full_window_s=window, beam_size=beam)
        for window in windows
        for beam in beams
    }
    await next(iter(engines.values())).warm_up()
    tallies = {setting: Tally() for setting in engines}
    lines = corpus_lines(limit)
    for index, line in enumerate(lines, 1):
        audio = await phone_line(tts, line.spoken)
        hints = SttHints(expect=line.expect)
        for setting, engine in engines.items():
            started = time.perf_counter()
            transcript = await engine.transcribe(audio, hints=hints)
            tally = tallies[setting]
            tally.decode_ms.append((time.perf_counter() - started) * 1000)
            if line.expect == "digits":
                tally.numbers += 1
                tally.numbers_wrong += extract_digits(transcript.text) != extract_digits(line.written)
            elif line.expect == "spelling":
                wanted = _letters(line.written)
                heard = {_letters(text) for text in (transcript.text, *transcript.alternatives)}
                tally.spellings += 1
                tally.spellings_wrong += wanted not in heard
            else:
                tally.words += len(_words(line.written))
                tally.word_errors += _word_errors(line.written, transcript.text)
        if index % 25 == 0:
            print(f"  {index}/{len(lines)} lines", flush=True)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", default="30,10", help="encoder windows in seconds, comma-separated")
    parser.add_argument("--beams", default="5", help="beam widths, comma-separated (1: greedy)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N lines")
    args = parser.parse_args()
    windows = [float(w) for w in args.windows.split(",")]
    beams = [int(b) for b in args.beams.split(",")]
    tallies = asyncio.run(run(windows, beams, args.limit))
    header = f"{'window':>7} {'beam':>5} {'p50 ms':>7} {'p95 ms':>7} {'word errors':>12} {'numbers wrong':>14}"
    print(f"\n{header} {'spellings wrong':>16}")
    for (window, beam), t in tallies.items():
        ms = sorted(t.decode_ms)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        print(
            f"{window:>6.0f}s {beam:>5} {statistics.median(ms):>7.0f} {p95:>7.0f} {t.word_errors:>5}/{t.words:<6} "
            f"{t.numbers_wrong:>6}/{t.numbers:<7} {t.spellings_wrong:>7}/{t.spellings:<8}"
        )


if __name__ == "__main__":
    main()
