"""A cache in front of any ``TextToSpeech`` for the lines an agent says all day.

Prompts like "What's the best number to reach you on?" recur in every call;
serving them from memory takes synthesis off the response path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator

from calls.pipeline.protocols import Pcm16, TextToSpeech

# Longer texts are mostly one-off (FAQ answers, read-backs); short ones repeat.
MAX_CACHED_CHARS = 80


class CachingTextToSpeech:
    """``TextToSpeech`` that replays recent short sentences from memory (LRU)."""

    def __init__(self, inner: TextToSpeech, *, max_entries: int = 512) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Pcm16, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, text: object) -> bool:
        with self._lock:
            return isinstance(text, str) and text.strip() in self._entries

    async def synthesize(self, text: str) -> AsyncIterator[Pcm16]:
        key = text.strip()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
        if cached is not None:
            for chunk in cached:
                yield chunk
            return
        chunks: list[Pcm16] = []
        async for chunk in self.inner.synthesize(text):
            chunks.append(chunk)
            yield chunk
        # Only complete syntheses are kept; a cancelled one never gets here.
        if len(key) <= MAX_CACHED_CHARS and chunks:
            with self._lock:
                self._entries[key] = tuple(chunks)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
