"""A circuit breaker per tenant and engine: new calls stay off an engine that keeps failing.

Each call's chain still switches away from a failing engine on its own
(``calls.pipeline.fallback``); the breaker spares the next callers the
failed attempt and its apology. ``threshold`` failures of one tenant's engine
within ``window_s`` open the circuit: chains built for new calls leave the
engine out for ``cooldown_s``. Then one call tries it again; if that call
reports no failure of it for ``trial_s``, the circuit closes, and if it fails
the cool-down starts over. State is per process, like the engines.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Circuit:
    failures: deque[float] = field(default_factory=deque)
    opened_at: float | None = None
    trial_at: float | None = None


class CircuitBreakers:
    """Circuits by (tenant schema, engine name); safe to share between threads."""

    def __init__(
        self,
        *,
        threshold: int = 3,
        window_s: float = 60.0,
        cooldown_s: float = 30.0,
        trial_s: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.trial_s = trial_s
        self.clock = clock
        self._circuits: dict[tuple[str, str], _Circuit] = {}
        self._lock = threading.Lock()

    def allows(self, tenant: str, engine: str) -> bool:
        """Whether a new call of ``tenant`` may use ``engine`` (the one trial call after a cool-down included)."""
        now = self.clock()
        with self._lock:
            circuit = self._circuits.get((tenant, engine))
            if circuit is None or circuit.opened_at is None:
                return True
            if circuit.trial_at is not None:
                if now - circuit.trial_at < self.trial_s:
                    return False  # one call is trying it; the others wait for its verdict
                # The trial call used it without a failure: closed again.
                del self._circuits[(tenant, engine)]
                return True
            if now - circuit.opened_at < self.cooldown_s:
                return False
            circuit.trial_at = now
            return True

    def failed(self, tenant: str, engine: str) -> None:
        """``engine`` failed a call of ``tenant``."""
        now = self.clock()
        with self._lock:
            circuit = self._circuits.setdefault((tenant, engine), _Circuit())
            if circuit.trial_at is not None:
                circuit.opened_at, circuit.trial_at = now, None
                return
            circuit.failures.append(now)
            while circuit.failures and now - circuit.failures[0] > self.window_s:
                circuit.failures.popleft()
            if len(circuit.failures) >= self.threshold and circuit.opened_at is None:
                circuit.opened_at = now

    def is_open(self, tenant: str, engine: str) -> bool:
        """Whether new calls are being kept off ``engine`` (for display; does not start a trial)."""
        with self._lock:
            circuit = self._circuits.get((tenant, engine))
            return circuit is not None and circuit.opened_at is not None

    def clear(self) -> None:
        with self._lock:
            self._circuits.clear()
