"""Name capture: how often the receptionist stores a caller's name exactly, over speech.

Names are the ticket field most often wrong on unseen calls. This plays one
short call per name (reason, name, spelling when asked, number, read-back)
turn by turn: the caller's lines in the caller's voice, through the line, into
the product's STT with the hints the policy asks for, and the product's
receptionist (``voicedesk.simulator.turns``). It prints the exact-name rate,
how often spelling was asked for and whether it helped, and each miss.

Names are drawn (``--seed``) from the name lexicon, half among the names
common somewhere and half from anywhere in it, and a share (``--unknown``) is changed by one vowel so that no
lexicon knows it, as with callers whose names are not in any list. None come
from the scenario corpus.

Recognition is the slow part, so ``--record PATH`` keeps every transcript the
receptionist got, and ``--replay PATH`` plays the same calls again from them in
a second: a change to how names are chosen is measured on the same hearings.
A line the recording lacks (the dialogue now asks something else) is heard as
written and counted, so a replay that drifts says so.

    python bench/name_capture.py [--count 40] [--seed 7] [--unknown 0.3] [--voice SPEC] [--impair SPEC]
        [--record PATH | --replay PATH] [--show-misses]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _django import ROOT

TEMPLATE = ROOT.parent / "shared" / "scenarios" / "acme-leak-basic.yaml"
VOWELS = "aeiou"
COMMON = 3000


@dataclass(slots=True)
class TranscriptStore:
    """Transcripts by (line, expectation): what a recording kept, what a replay finds."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: int = 0

    @staticmethod
    def key(text: str, expect: str) -> str:
        return f"{expect}|{text}"

    @classmethod
    def load(cls, path: Path) -> TranscriptStore:
        return cls(entries=json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.entries, indent=1, sort_keys=True), encoding="utf-8")


def sample_names(count: int, seed: int, unknown_share: float) -> list[tuple[str, bool]]:
    """``count`` full names (first and last) and whether each was made unknown to the lexicon."""
    from calls.dialogue.names import name_lexicon

    lexicon = name_lexicon()
    rng = random.Random(seed)
    firsts, lasts = lexicon.names("first"), lexicon.names("last")
    names: list[tuple[str, bool]] = []
    while len(names) < count:
        # Half from the names common somewhere (the lists start with every
        # country's commonest), half from anywhere in the lists.
        common = rng.random() < 0.5
        first = rng.choice(firsts[:COMMON] if common else firsts)
        last = rng.choice(lasts[:COMMON] if common else lasts)
        if not (first.isalpha() and last.isalpha()) or len(first) < 3 or len(last) < 3:
            continue
        unknown = rng.random() < unknown_share
        if unknown:
            last = _unknown_variant(last, rng, lexicon)
            if not last:
                continue
        names.append((f"{first} {last}", unknown))
    return names


def _unknown_variant(name: str, rng: random.Random, lexicon: Any) -> str:
    """``name`` with one vowel changed so that no lexicon entry matches, or "" if none works."""
    spots = [i for i, ch in enumerate(name.lower()) if ch in VOWELS and i > 0]
    rng.shuffle(spots)
    for i in spots:
        for vowel in rng.sample(VOWELS, len(VOWELS)):
            variant = name[:i] + vowel + name[i + 1 :]
            if variant.lower() != name.lower() and lexicon.rank(variant.lower()) is None:
                return variant
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--unknown", type=float, default=0.3, help="share of names no lexicon knows")
    parser.add_argument("--voice", default="offline")
    parser.add_argument("--impair", default="")
    parser.add_argument("--record", type=Path, metavar="PATH")
    parser.add_argument("--replay", type=Path, metavar="PATH")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    if args.record and args.replay:
        parser.error("--record and --replay exclude each other")
    if args.count < 1 or not 0 <= args.unknown <= 1:
        parser.error("--count must be at least 1 and --unknown between 0 and 1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from calls.pipeline.factory import shared_stt
    from calls.pipeline.protocols import SpeechToText, SttHints, Transcript
    from voicedesk.simulator.caller import Line, SpeechModels, VoiceSpec, VoiceSpecError
    from voicedesk.simulator.impair import ImpairmentError, LineImpairment
    from voicedesk.simulator.scenario import load_scenario
    from voicedesk.simulator.turns import Ear, SpeechEar, TextEar, converse

    try:
        voice = VoiceSpec.parse(args.voice)
        line = LineImpairment.parse(args.impair)
    except (VoiceSpecError, ImpairmentError) as exc:
        parser.error(str(exc))
    store = TranscriptStore.load(args.replay) if args.replay else TranscriptStore()
    speech: Ear | None = None
    if not args.replay:
        stt = shared_stt(settings.VOICEDESK_STT)
        if not isinstance(stt, SpeechToText):
            parser.error(f"{settings.VOICEDESK_STT} transcribes streams only; this bench needs whole utterances")
        speech = SpeechEar(models=SpeechModels(tts=voice.build(), line=line), stt=stt)

    class StoreEar:
        """Hears through ``speech`` and records, or replays what was recorded."""

        async def hear(self, line: Line, hints: SttHints) -> Transcript:
            key = TranscriptStore.key(line.spoken, hints.expect)
            if speech is None:
                found = store.entries.get(key)
                if found is None:
                    store.missing += 1
                    return await TextEar().hear(line, hints)
                return Transcript(
                    text=found["text"],
                    confidence=found["confidence"],
                    words=tuple(found["words"]),
                    alternatives=tuple(found["alternatives"]),
                )
            transcript = await speech.hear(line, hints)
            store.entries[key] = {
                "text": transcript.text,
                "confidence": transcript.confidence,
                "words": list(transcript.words),
                "alternatives": list(transcript.alternatives),
            }
            return transcript

    template = load_scenario(TEMPLATE)
    names = sample_names(args.count, args.seed, args.unknown)
    print(f"{len(names)} names (seed {args.seed}), voice {voice.describe()}, line {line.describe()}...", flush=True)

    async def run() -> list[tuple[str, bool, str, bool]]:
        results = []
        for name, unknown in names:
            caller = replace(template.caller, facts={**template.caller.facts, "name": name}, asks=())
            scenario = replace(template, id=name, caller=caller)
            conversation = await converse(scenario, StoreEar())
            stored = conversation.captured.get("fields", {}).get("name", "")
            spelled = any("spell" in entry.text for entry in conversation.log if entry.speaker == "agent")
            results.append((name, unknown, stored, spelled))
            exact = stored == name
            print(f"  {name:<32} {'exact' if exact else 'MISS  ' + repr(stored)}{'  (spelled)' if spelled else ''}")
            if args.show_misses and not exact:
                print(conversation.format())
        return results

    results = asyncio.run(run())
    if args.record:
        store.save(args.record)

    def rate(rows: list[tuple[str, bool, str, bool]]) -> str:
        exact = sum(1 for name, _, stored, _ in rows if stored == name)
        return f"{exact:>3}/{len(rows):<3} {exact / len(rows):6.1%}" if rows else "  n/a"

    print()
    print(f"exact names:          {rate(results)}")
    print(f"  known to lexicon:   {rate([r for r in results if not r[1]])}")
    print(f"  unknown:            {rate([r for r in results if r[1]])}")
    print(f"  spelling asked:     {rate([r for r in results if r[3]])}")
    print(f"  spelling not asked: {rate([r for r in results if not r[3]])}")
    if args.replay:
        print(f"lines not in the recording (heard as written): {store.missing}")


if __name__ == "__main__":
    main()
