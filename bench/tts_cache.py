"""From a TTS cache hit to its first audio, for each level of the cache.

A sentence is synthesized once (espeak-ng, or piper with ``--engine piper``)
through ``CachingTextToSpeech`` with the shared Redis level on; then, per
sample:

- L1: the same cache object asked again (this process's memory);
- L2: a fresh cache object (as another voice process would hold) asked for
  it, so it comes from Redis (``REDIS_URL``) and is replayed from there;
- miss: the engine itself, for comparison.

Printed: p50, p95 and max in milliseconds from ``synthesize()`` being called
to its first chunk. Target: under 10 ms for both levels.

    python bench/tts_cache.py [--samples 200] [--engine espeak|piper]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicedesk.settings.dev")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402 - settings first: the cache reads them

django.setup()

from django.conf import settings  # noqa: E402

from calls.pipeline.protocols import TextToSpeech  # noqa: E402
from calls.pipeline.tts_cache import CachingTextToSpeech, RedisTtsStore  # noqa: E402
from calls.providers.registry import tts_for  # noqa: E402

SENTENCES = (
    "Thanks for calling Acme Heating.",
    "What's the best number to reach you on?",
    "Could you spell your last name for me?",
    "Is there anything else I can help with?",
)


async def first_chunk_ms(tts: TextToSpeech, text: str) -> float:
    started = time.perf_counter()
    stream = tts.synthesize(text)
    await anext(stream)
    elapsed = (time.perf_counter() - started) * 1000
    async for _ in stream:  # drain, as playback would
        pass
    return elapsed


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(values)
    return f"{name:<5} n={len(values):<4} p50={median:7.2f} ms  p95={p95:7.2f} ms  max={ordered[-1]:7.2f} ms"


async def run(samples: int, engine_name: str) -> None:
    engine = tts_for(engine_name)
    store = RedisTtsStore(
        settings.REDIS_URL,
        prefix=f"bench-{uuid.uuid4().hex[:8]}",
        ttl_s=300,
        max_bytes=settings.TTS_CACHE_REDIS_MAX_BYTES,
    )
    voice_key = f"bench|{engine.name}|{engine.sample_rate}"
    warm = CachingTextToSpeech(engine, shared=store, voice_key=voice_key)
    misses = [await first_chunk_ms(engine, text) for text in SENTENCES]  # the engine itself, uncached
    for text in SENTENCES:
        await first_chunk_ms(warm, text)
    l1: list[float] = []
    l2: list[float] = []
    for i in range(samples):
        text = SENTENCES[i % len(SENTENCES)]
        l1.append(await first_chunk_ms(warm, text))
        other_process = CachingTextToSpeech(engine, shared=store, voice_key=voice_key)
        l2.append(await first_chunk_ms(other_process, text))
    print(
        f"TTS cache: time from a hit to its first audio ({engine.name}, {samples} samples, Redis {settings.REDIS_URL})"
    )
    print(summary("L1", l1))
    print(summary("L2", l2))
    print(summary("miss", misses))
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--engine", choices=("espeak", "piper"), default="espeak")
    args = parser.parse_args()
    asyncio.run(run(args.samples, args.engine))


if __name__ == "__main__":
    main()
