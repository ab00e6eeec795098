"""Caches in front of any ``TextToSpeech`` for the lines an agent says all day.

Prompts like "What's the best number to reach you on?" recur in every call;
serving them from memory takes synthesis off the response path. The first
level is this process's memory (LRU, short sentences); the second, shared
by every voice process, is Redis (``RedisTtsStore``): a sentence any process
synthesized, or that a worker warmed when the business's configuration
changed, plays at once everywhere. Entries are keyed by the engine's voice
(provider, voice, model, output format and rate: ``voice_key``) and the
text; they expire after a TTL and an entry over a size limit is not stored.
Redis trouble never fails a sentence: the cache steps aside for a few
seconds and the engine speaks.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator

import numpy as np
import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from calls.pipeline.protocols import Pcm16, TextToSpeech

logger = structlog.get_logger(__name__)

# Longer texts are mostly one-off (read-backs); short ones repeat.
MAX_CACHED_CHARS = 80
# The shared level also keeps the longer sentences warmed ahead of calls (FAQ answers).
MAX_SHARED_CHARS = 400
# A hit is replayed in pieces of this length, so the first leaves at once.
REPLAY_CHUNK_S = 0.5
# After a Redis failure, how long the shared level is left alone.
REDIS_BACKOFF_S = 5.0


class RedisTtsStore:
    """The shared second level: finished syntheses in Redis, by voice and text, with a TTL.

    ``prefix`` namespaces the keys (the platform's cache prefix); ``ttl_s``
    bounds how long an entry lives, ``max_bytes`` how big one may be. One
    client per event loop (redis-py's asyncio pools belong to their loop).
    """

    def __init__(self, url: str, *, prefix: str, ttl_s: int, max_bytes: int, timeout_s: float = 0.25) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._down_until = 0.0

    def key(self, voice_key: str, text: str) -> str:
        digest = hashlib.sha256(f"{voice_key}\x00{text}".encode()).hexdigest()
        return f"{self.prefix}:tts:{digest}"

    def _client(self) -> aioredis.Redis | None:
        if time.monotonic() < self._down_until:
            return None
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
        return client

    def _failed(self, operation: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + REDIS_BACKOFF_S
        logger.warning("tts_cache_redis_failed", operation=operation, error=type(exc).__name__)

    async def get(self, voice_key: str, text: str) -> Pcm16 | None:
        """The stored audio of ``text`` in ``voice_key``'s voice, or None (missing, or Redis unavailable)."""
        client = self._client()
        if client is None:
            return None
        try:
            data = await client.get(self.key(voice_key, text))
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        if not isinstance(data, bytes) or not data:
            return None
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    async def put(self, voice_key: str, text: str, pcm: Pcm16) -> bool:
        """Store a finished synthesis; False if it is over ``max_bytes`` or Redis is unavailable."""
        data = pcm.astype("<i2").tobytes()
        if not data or len(data) > self.max_bytes:
            return False
        client = self._client()
        if client is None:
            return False
        try:
            await client.set(self.key(voice_key, text), data, ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return False
        return True

    async def aclose(self) -> None:
        """Close this loop's client (tests; a loop about to end)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


class CachingTextToSpeech:
    """``TextToSpeech`` that replays sentences from memory (LRU) or, with ``shared``, from Redis.

    ``voice_key`` names the engine's voice and output format in the shared
    level (``calls.pipeline.factory.tts_voice_key``).
    """

    def __init__(
        self,
        inner: TextToSpeech,
        *,
        max_entries: int = 512,
        shared: RedisTtsStore | None = None,
        voice_key: str = "",
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.shared = shared
        self.voice_key = voice_key or f"{inner.name}|{inner.sample_rate}"
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Pcm16, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, text: object) -> bool:
        with self._lock:
            return isinstance(text, str) and text.strip() in self._entries

    def _remember(self, key: str, chunks: tuple[Pcm16, ...]) -> None:
        if len(key) > MAX_CACHED_CHARS or not chunks:
            return
        with self._lock:
            self._entries[key] = chunks
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

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
        shared = self.shared if self.shared is not None and key and len(key) <= MAX_SHARED_CHARS else None
        if shared is not None:
            stored = await shared.get(self.voice_key, key)
            if stored is not None and stored.size:
                step = max(1, int(self.sample_rate * REPLAY_CHUNK_S))
                pieces = tuple(stored[i : i + step] for i in range(0, len(stored), step))
                self._remember(key, pieces)
                for piece in pieces:
                    yield piece
                return
        chunks: list[Pcm16] = []
        async for chunk in self.inner.synthesize(text):
            chunks.append(chunk)
            yield chunk
        # Only complete syntheses are kept; a cancelled one never gets here.
        self._remember(key, tuple(chunks))
        if shared is not None and chunks:
            await shared.put(self.voice_key, key, np.concatenate(chunks))
