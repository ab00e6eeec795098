"""Limits every transport's media socket holds its far end to."""

from __future__ import annotations

import time
from collections.abc import Callable

# Daphne sends only 1000 and the application range (3000-4999) as close codes,
# so RFC 6455's codes move into that range: 1008 (a protocol violation), 1011
# (the server failed) and 1013 (try again later) become 4008, 4011 and 4013.
CLOSE_PROTOCOL_ERROR = 4008
CLOSE_INTERNAL_ERROR = 4011
CLOSE_TRY_AGAIN = 4013


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
