"""How many calls this voice process runs at once, across its transports.

Each call's audio path runs in real time on this process's event loop and
cores; past ``VOICE_PROCESS_CAPACITY`` calls every call would fall behind.
A media stream that finds no room is refused before it is answered, and the
carrier is told what to do next (``calls.services.call_stream_ended``).
"""

from __future__ import annotations

import threading

from django.conf import settings


class VoiceCapacity:
    """A count of the calls this process runs, held to ``settings.VOICE_PROCESS_CAPACITY`` (read on each call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    @staticmethod
    def capacity() -> int:
        return int(settings.VOICE_PROCESS_CAPACITY)

    def try_acquire(self) -> bool:
        """Take a place for one call; False, taking nothing, when the process is full."""
        with self._lock:
            if self._in_use >= self.capacity():
                return False
            self._in_use += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_use = max(0, self._in_use - 1)


VOICE_CAPACITY = VoiceCapacity()
