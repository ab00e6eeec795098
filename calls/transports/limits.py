"""Limits every transport's media socket holds its far end to."""

from __future__ import annotations

import time
from collections.abc import Callable


class MessageBudget:
    """A token bucket over a stream's inbound messages: real time with room for catch-up bursts, not a flood."""

    def __init__(self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
