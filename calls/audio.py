"""Audio utilities for the call pipeline, in pure numpy.

Telephony audio is G.711 μ-law at 8 kHz; speech models want 16 kHz PCM and
TTS engines produce 16-24 kHz. Everything here is numpy only: ``audioop`` is
gone in Python 3.13 and scipy is not a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import gcd
from typing import Any, Final, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from calls.pipeline.protocols import Float32, Pcm16

MULAW_RATE: Final = 8000
FRAME_MS: Final = 20
# The pipeline's one sample rate: the session takes and produces PCM at this
# rate, the VAD runs at it and transports code and resample at their edge.
# Telephone audio is 8 kHz, so the phone line needs no resampling at all.
CALL_RATE: Final = 8000
# One 20 ms pipeline frame: the unit of pacing and of the outbound queue.
CALL_FRAME_SAMPLES: Final = CALL_RATE * FRAME_MS // 1000
# One 20 ms telephony frame: 160 samples, one μ-law byte each.
MULAW_FRAME_BYTES: Final = MULAW_RATE * FRAME_MS // 1000
# The μ-law code for a zero sample; used to pad a final partial frame.
MULAW_SILENCE: Final = 0xFF

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP_14BIT: Final = 8159


def _build_ulaw_decode_table() -> Pcm16:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = (((codes & 0x0F) << 3) + _ULAW_BIAS) << exponent
    linear = np.where(codes & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS)
    return linear.astype(np.int16)


def _build_ulaw_encode_table() -> npt.NDArray[np.uint8]:
    # Indexed by the int16 sample reinterpreted as uint16, so encoding is one
    # gather. This is the classic Sun/CCITT g711.c algorithm (the one audioop
    # uses): 14-bit magnitude, bias 33, eight segments, all bits inverted.
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    value = samples >> 2  # arithmetic shift, as in C: -1 stays -1
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), _ULAW_CLIP_14BIT) + (_ULAW_BIAS >> 2)
    # The clip level plus bias overflows segment 7; g711.c returns the
    # largest code there, which is what saturating the magnitude yields.
    magnitude = np.minimum(magnitude, 0x1FFF)
    # Segment = position of the highest set bit above bit 5 (0..7).
    segment = np.zeros_like(magnitude)
    for bound in (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF):
        segment += magnitude > bound
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


_ULAW_DECODE: Final = _build_ulaw_decode_table()
_ULAW_ENCODE: Final = _build_ulaw_encode_table()


def mulaw_decode(data: bytes) -> Pcm16:
    """Decode G.711 μ-law bytes to 16-bit linear PCM (bit-exact with ITU G.711)."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(pcm: Pcm16) -> bytes:
    """Encode 16-bit linear PCM to G.711 μ-law bytes (bit-exact with ITU G.711)."""
    samples = np.ascontiguousarray(pcm, dtype=np.int16)
    return bytes(_ULAW_ENCODE[samples.view(np.uint16)].tobytes())


def pcm16_to_float32(pcm: Pcm16) -> Float32:
    """Scale int16 PCM to float32 in [-1, 1), the input format of Whisper and Silero."""
    return np.asarray(pcm, dtype=np.float32) * np.float32(1.0 / 32768.0)


def float32_to_pcm16(samples: npt.NDArray[np.floating[Any]]) -> Pcm16:
    """Round float samples in [-1, 1] to int16 PCM, clipping out-of-range values."""
    return _round_to_int16(np.asarray(samples, dtype=np.float64) * 32768.0)


def _round_to_int16(values: npt.NDArray[np.float64]) -> Pcm16:
    return np.clip(np.rint(values), -32768, 32767).astype(np.int16)


class Resampler:
    """Streaming polyphase resampler between two integer sample rates.

    A Kaiser-windowed sinc low-pass is split into ``up`` phases, so each
    output sample costs one dot product of about 50 (8k<->16k) to 130
    (22.05k->8k) taps. Relative to the lower rate's Nyquist frequency the
    response is flat (-0.05 dB) to 0.8, -0.7 dB at 0.85 (3.4 kHz at 8 kHz)
    and below -70 dB from 1.0 on, so telephone-band speech passes and
    nothing audible aliases. The filter is centred, so
    output sample ``n`` lines up with input time ``n * src_rate / dst_rate``.

    State is carried between ``process`` calls, so a stream cut into chunks of
    any size resamples exactly as if it were one array; ``flush`` emits the
    tail held back for the filter's look-ahead. Not thread-safe: one per stream.
    """

    # Half-length in periods of the lower rate: 24 puts the transition band
    # between 0.8 and 1.0 of its Nyquist frequency. The price is a 3 ms
    # look-ahead at 8 kHz, held back until more input or ``flush``.
    _HALF_LENGTH_PERIODS: Final = 24
    _KAISER_BETA: Final = 7.0
    _CUTOFF: Final = 0.9

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        common = gcd(src_rate, dst_rate)
        self._up = dst_rate // common
        self._down = src_rate // common
        phases, self._delay = self._design(self._up, self._down)
        self._taps = phases.shape[1]
        # Reversed so a window of oldest..newest input meets the taps in order.
        self._reversed_phases = phases[:, ::-1].copy()
        self._received = 0  # input samples seen so far
        self._emitted = 0  # output samples produced so far
        # Input samples from absolute index ``_buffer_start`` on; earlier ones
        # are no longer needed by any future output.
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start = 0

    @classmethod
    @cache
    def _design(cls, up: int, down: int) -> tuple[npt.NDArray[np.float64], int]:
        # Cached: the 22.05k->8k filter has 21k taps and ``resample`` is
        # called once per TTS sentence.
        widest = max(up, down)
        half = cls._HALF_LENGTH_PERIODS * widest
        n = np.arange(-half, half + 1, dtype=np.float64)
        # Twice the -6 dB frequency, as a fraction of the up-sampled rate.
        cutoff = cls._CUTOFF / widest
        prototype = cutoff * np.sinc(cutoff * n) * np.kaiser(n.size, cls._KAISER_BETA)
        # Each phase sees only every ``up``-th tap, so scale to keep unit gain.
        prototype *= up / prototype.sum()
        taps = -(-prototype.size // up)
        padded = np.zeros(taps * up, dtype=np.float64)
        padded[: prototype.size] = prototype
        # phases[p, k] = prototype[p + k * up]
        return padded.reshape(taps, up).T.copy(), half

    def process(self, pcm: Pcm16) -> Pcm16:
        """Feed the next input chunk; return every output sample now computable."""
        if self._up == self._down:
            return np.array(pcm, dtype=np.int16).ravel()
        samples = np.asarray(pcm, dtype=np.float64).ravel()
        self._buffer = np.concatenate((self._buffer, samples))
        self._received += samples.size
        return self._emit(self._received)

    def flush(self) -> Pcm16:
        """Return the held-back tail (zero look-ahead) and reset for a new stream."""
        total = -(-self._received * self._up // self._down)
        look_ahead = self._delay // self._up + 1
        self._buffer = np.concatenate((self._buffer, np.zeros(look_ahead)))
        tail = self._emit(self._received + look_ahead, limit=total)
        self.reset()
        return tail

    def reset(self) -> None:
        """Forget the stream, e.g. after a barge-in, without redesigning the filter."""
        self._received = 0
        self._emitted = 0
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start = 0

    def _emit(self, available: int, limit: int | None = None) -> Pcm16:
        # Output n needs input indices (p // up - taps + 1) .. (p // up), with
        # p = n * down + delay on the up-sampled grid; negative indices are the
        # zeros before the stream starts.
        up, down, delay = self._up, self._down, self._delay
        end = (available * up - delay - 1) // down + 1  # first n needing unseen input
        if limit is not None:
            end = min(end, limit)
        start = self._emitted
        if end <= start:
            return np.zeros(0, dtype=np.int16)
        # Left-pad so the first outputs can reach back before sample 0.
        oldest_needed = (start * down + delay) // up - self._taps + 1
        pad = max(0, self._buffer_start - oldest_needed)
        buffer = np.concatenate((np.zeros(pad), self._buffer)) if pad else self._buffer
        origin = self._buffer_start - pad
        # windows[i] = buffer[i : i + taps]; outputs sharing a phase recur
        # every ``up`` outputs and ``down`` inputs, so each phase is one
        # strided matrix-vector product instead of a per-sample gather.
        windows = sliding_window_view(buffer, self._taps)
        out = np.empty(end - start, dtype=np.float64)
        for first in range(start, min(start + up, end)):
            position = first * down + delay
            row = position // up - self._taps + 1 - origin
            count = (end - 1 - first) // up + 1
            rows = windows[row : row + (count - 1) * down + 1 : down]
            out[first - start :: up] = rows @ self._reversed_phases[position % up]
        self._emitted = end
        # Keep only what the next output still needs.
        keep_from = max(0, (end * down + delay) // up - self._taps + 1 - origin)
        self._buffer = buffer[keep_from:]
        self._buffer_start = origin + keep_from
        return _round_to_int16(out)


def resample(pcm: Pcm16, src_rate: int, dst_rate: int) -> Pcm16:
    """Resample a whole clip; the result has ``ceil(len * dst / src)`` samples.

    Each call is independent and zero-padded at both ends, which suits
    sentence-sized TTS chunks (they start and end near silence). For an
    unbroken stream cut at arbitrary points, use one :class:`Resampler`.
    """
    if src_rate == dst_rate:
        return np.asarray(pcm, dtype=np.int16).copy()
    resampler = Resampler(src_rate, dst_rate)
    head = resampler.process(pcm)
    return np.concatenate((head, resampler.flush()))


class FrameChunker:
    """Cuts a byte stream into fixed-size frames, keeping the remainder.

    The default frame is 20 ms of 8 kHz μ-law (160 bytes), the unit Twilio
    Media Streams and our pacing clock use.
    """

    def __init__(self, frame_bytes: int = MULAW_FRAME_BYTES) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for a full frame."""
        return len(self._pending)

    def push(self, data: bytes) -> list[bytes]:
        """Append ``data``; return every complete frame now available."""
        self._pending += data
        usable = len(self._pending) - len(self._pending) % self.frame_bytes
        frames = [bytes(self._pending[i : i + self.frame_bytes]) for i in range(0, usable, self.frame_bytes)]
        del self._pending[:usable]
        return frames

    def flush(self, pad: int = MULAW_SILENCE) -> bytes | None:
        """Return the remainder padded to a full frame with byte ``pad``, or None if empty."""
        if not self._pending:
            return None
        frame = bytes(self._pending) + bytes([pad]) * (self.frame_bytes - len(self._pending))
        self._pending.clear()
        return frame

    def clear(self) -> None:
        """Drop the remainder, e.g. when playback is interrupted."""
        self._pending.clear()


class OnsetTrimmer:
    """Drops the quiet before a stream's first audible sample, keeping ``keep_s`` of lead-in.

    Synthesized speech starts with 40-60 ms of near silence; on the first
    sentence of a reply that is time the caller spends waiting for an answer.
    Everything from the onset on passes through unchanged; a stream that
    never becomes audible comes out empty.
    """

    def __init__(self, sample_rate: int, *, threshold: int = 200, keep_s: float = 0.01) -> None:
        self.threshold = threshold
        self._keep = max(0, round(keep_s * sample_rate))
        self._held = np.zeros(0, dtype=np.int16)
        self._started = False

    def process(self, pcm: Pcm16) -> Pcm16:
        if self._started:
            return pcm
        audible = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= self.threshold)
        if audible.size == 0:
            # Only the lead-in is worth holding on to.
            self._held = np.concatenate([self._held, pcm])[-self._keep :] if self._keep else self._held
            return np.zeros(0, dtype=np.int16)
        self._started = True
        lead = np.concatenate([self._held, pcm[: audible[0]]])
        return np.concatenate([lead[len(lead) - self._keep :] if self._keep else lead[:0], pcm[audible[0] :]])


_ScalarT = TypeVar("_ScalarT", bound=np.generic)


class SampleChunker(Generic[_ScalarT]):
    """Cuts a stream of samples into fixed-length frames, keeping the remainder.

    Used where frame sizes differ between stages, e.g. 20 ms telephony frames
    (160 samples) into Silero VAD windows (256 samples at 8 kHz):
    ``SampleChunker(256, np.float32)``.
    """

    def __init__(self, frame_samples: int, dtype: type[_ScalarT]) -> None:
        if frame_samples <= 0:
            raise ValueError(f"frame_samples must be positive, got {frame_samples}")
        self.frame_samples = frame_samples
        self.dtype = dtype
        self._pending: npt.NDArray[_ScalarT] = np.zeros(0, dtype=dtype)

    @property
    def pending(self) -> int:
        """Samples held back, waiting for a full frame."""
        return int(self._pending.size)

    def push(self, samples: npt.NDArray[_ScalarT]) -> list[npt.NDArray[_ScalarT]]:
        """Append ``samples``; return every complete frame (copies, safe to keep)."""
        joined = np.concatenate((self._pending, np.asarray(samples, dtype=self.dtype).ravel()))
        count = joined.size // self.frame_samples
        usable = count * self.frame_samples
        frames = list(joined[:usable].reshape(count, self.frame_samples).copy())
        self._pending = joined[usable:].copy()
        return frames

    def flush(self) -> npt.NDArray[_ScalarT] | None:
        """Return the remainder zero-padded to a full frame, or None if empty."""
        if not self._pending.size:
            return None
        frame = np.zeros(self.frame_samples, dtype=self.dtype)
        frame[: self._pending.size] = self._pending
        self.clear()
        return frame

    def clear(self) -> None:
        """Drop the remainder."""
        self._pending = np.zeros(0, dtype=self.dtype)


Encoding = Literal["mulaw", "pcm16"]


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """How audio travels on one transport's wire.

    ``encoding`` is G.711 μ-law (one byte a sample) or little-endian 16-bit
    PCM; ``frame_ms`` is the frame length the far end expects per message.
    """

    encoding: Encoding
    sample_rate: int
    frame_ms: int = FRAME_MS

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    @property
    def frame_bytes(self) -> int:
        return self.frame_samples * (1 if self.encoding == "mulaw" else 2)


class WireCodec:
    """Turns a transport's wire audio into pipeline PCM and back, at the edge.

    Inbound bytes become ``CALL_RATE`` PCM; outbound ``CALL_RATE`` PCM frames
    become wire bytes. Resampling happens only when the wire rate differs
    from ``CALL_RATE`` (never on the phone line). One per call and direction
    state: the resamplers carry filter state across frames.
    """

    def __init__(self, wire: AudioFormat) -> None:
        self.wire = wire
        same_rate = wire.sample_rate == CALL_RATE
        self._inbound = None if same_rate else Resampler(wire.sample_rate, CALL_RATE)
        self._outbound = None if same_rate else Resampler(CALL_RATE, wire.sample_rate)

    def decode(self, data: bytes) -> Pcm16:
        """Wire bytes to pipeline PCM (may be a few samples short while a resampler fills)."""
        if self.wire.encoding == "mulaw":
            pcm = mulaw_decode(data)
        else:
            pcm = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)
        return pcm if self._inbound is None else self._inbound.process(pcm)

    def encode(self, pcm: Pcm16) -> bytes:
        """Pipeline PCM to wire bytes."""
        if self._outbound is not None:
            pcm = self._outbound.process(pcm)
        if self.wire.encoding == "mulaw":
            return mulaw_encode(pcm)
        return np.ascontiguousarray(pcm, dtype="<i2").tobytes()
