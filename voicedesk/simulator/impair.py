"""Line impairments for the simulated caller: noise, a quiet line, lost packets, clipping.

A real caller's voice reaches the carrier through a noisy room, a cheap
microphone and a lossy network. ``LineImpairment`` applies that to each
utterance of 8 kHz PCM before it is μ-law encoded, in this order, which is
the order the damage happens in on a real line:

1. background noise (white, at ``snr_db`` below the utterance's RMS),
2. clipping at ``clip`` times the utterance's own peak (an overdriven microphone),
3. line gain of ``gain_db`` (negative: a quieter line),
4. packet loss: a fraction ``loss`` of the 20 ms frames zeroed.

A noisy line stays noisy between utterances: ``idle_noise`` gives the
frames the carrier sends while the caller is quiet, at the same level.

Everything is seeded: the same impairment applied to the same utterance with
the same key gives the same samples, in every process, so a run can be
repeated exactly.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from calls.audio import MULAW_FRAME_BYTES, mulaw_encode
from calls.pipeline.protocols import Pcm16

FRAME_SAMPLES: Final = MULAW_FRAME_BYTES  # one 20 ms frame at 8 kHz
# Names accepted by ``LineImpairment.parse`` and the field each sets.
_SPEC_KEYS: Final = {"noise": "snr_db", "gain": "gain_db", "loss": "loss", "clip": "clip", "seed": "seed"}


class ImpairmentError(ValueError):
    """An impairment specification is not understood or out of range."""


@dataclass(frozen=True, slots=True)
class LineImpairment:
    """What the line does to the caller's voice; the default changes nothing."""

    snr_db: float | None = None  # background noise this many dB below the speech; None: no noise
    gain_db: float = 0.0
    loss: float = 0.0  # fraction of 20 ms frames lost, 0..1
    clip: float | None = None  # clip at this fraction of the utterance's peak, 0..1; None: no clipping
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise ImpairmentError(f"loss must be a fraction from 0 up to 1, got {self.loss}")
        if self.clip is not None and not 0.0 < self.clip <= 1.0:
            raise ImpairmentError(f"clip must be a fraction of the peak above 0 and at most 1, got {self.clip}")
        if self.snr_db is not None and not math.isfinite(self.snr_db):
            raise ImpairmentError(f"noise must be a finite SNR in dB, got {self.snr_db}")
        if not math.isfinite(self.gain_db):
            raise ImpairmentError(f"gain must be finite, got {self.gain_db}")

    @classmethod
    def parse(cls, spec: str) -> LineImpairment:
        """Read ``"noise=18,gain=-10,loss=0.01,clip=0.9,seed=7"``; any subset, any order; "" is a clean line."""
        values: dict[str, float | int] = {}
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in _SPEC_KEYS:
                known = ", ".join(f"{k}=N" for k in _SPEC_KEYS)
                raise ImpairmentError(f"cannot read impairment {item!r} (known: {known})")
            if _SPEC_KEYS[key] in values:
                raise ImpairmentError(f"impairment {key!r} is given twice")
            try:
                number: float | int = int(raw) if key == "seed" else float(raw)
            except ValueError:
                raise ImpairmentError(f"impairment {key}={raw.strip()!r} is not a number") from None
            values[_SPEC_KEYS[key]] = number
        return cls(**values)  # type: ignore[arg-type]

    @property
    def is_clean(self) -> bool:
        """True when the line changes nothing."""
        return self.snr_db is None and self.gain_db == 0.0 and self.loss == 0.0 and self.clip is None

    def describe(self) -> str:
        """The specification ``parse`` reads back, e.g. ``"noise=18,loss=0.01,seed=0"`` ("clean" when clean)."""
        if self.is_clean:
            return "clean"
        parts = []
        for spec_key, name in _SPEC_KEYS.items():
            value = getattr(self, name)
            default = next(f.default for f in fields(self) if f.name == name)
            if value != default or name == "seed":
                parts.append(f"{spec_key}={value:g}")
        return ",".join(parts)

    def apply(self, pcm: Pcm16, *, key: str = "") -> Pcm16:
        """``pcm`` (8 kHz int16) as it arrives over this line; ``key`` varies the seed per utterance."""
        return self.apply_with_report(pcm, key=key)[0]

    def apply_with_report(self, pcm: Pcm16, *, key: str = "") -> tuple[Pcm16, tuple[int, ...]]:
        """Like ``apply``, also returning the indexes of the 20 ms frames that were lost."""
        if self.is_clean or pcm.size == 0:
            return pcm.copy(), ()
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8"))])
        signal = pcm.astype(np.float64)
        if self.snr_db is not None:
            signal = signal + noise_at_snr(signal, self.snr_db, rng)
        if self.clip is not None:
            level = self.clip * float(np.max(np.abs(signal)))
            signal = np.clip(signal, -level, level)
        if self.gain_db:
            signal = signal * 10 ** (self.gain_db / 20)
        out = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
        lost = lost_frames(out.size, self.loss, rng)
        for frame in lost:
            out[frame * FRAME_SAMPLES : (frame + 1) * FRAME_SAMPLES] = 0
        return out, lost

    def idle_noise(self, speech_rms: float, *, key: str = "") -> Iterator[bytes] | None:
        """The line's background noise while the caller is quiet, as endless 20 ms μ-law frames.

        Its level is ``snr_db`` below ``speech_rms`` (the caller's usual
        speech level), after the line gain, so the noise does not stop when
        the caller does. None when the line adds no noise.
        """
        if self.snr_db is None or speech_rms <= 0:
            return None
        level = speech_rms / 10 ** (self.snr_db / 20) * 10 ** (self.gain_db / 20)
        return _noise_frames(level, np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8")), 1]))


def _noise_frames(rms: float, rng: np.random.Generator) -> Iterator[bytes]:
    while True:
        samples = np.clip(np.rint(rng.standard_normal(FRAME_SAMPLES) * rms), -32768, 32767).astype(np.int16)
        yield mulaw_encode(samples)


def noise_at_snr(signal: npt.NDArray[np.float64], snr_db: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """White noise whose RMS is exactly ``snr_db`` below the RMS of ``signal``."""
    noise = rng.standard_normal(signal.size)
    signal_rms = float(np.sqrt(np.mean(signal * signal)))
    noise_rms = float(np.sqrt(np.mean(noise * noise)))
    if signal_rms == 0.0 or noise_rms == 0.0:
        return np.zeros(signal.size)
    # Scaled to the exact level rather than trusting the generator's variance,
    # so a short utterance gets the SNR asked for, not one near it.
    result: npt.NDArray[np.float64] = noise * (signal_rms / noise_rms / 10 ** (snr_db / 20))
    return result


def lost_frames(samples: int, loss: float, rng: np.random.Generator) -> tuple[int, ...]:
    """Which 20 ms frames of ``samples`` are lost, sorted.

    Exactly ``floor(frames * loss + u)`` of them, ``u`` uniform in [0, 1) from
    ``rng``, at random places: over many utterances the rate is ``loss``, a
    short utterance loses one frame or none with the right odds, and a
    whole number of expected losses is met exactly.
    """
    frames = math.ceil(samples / FRAME_SAMPLES)
    if loss <= 0.0 or frames == 0:
        return ()
    count = min(frames, math.floor(frames * loss + rng.random()))
    return tuple(sorted(int(i) for i in rng.choice(frames, size=count, replace=False)))


def measured_snr_db(clean: Pcm16, noisy: Pcm16) -> float:
    """The SNR of ``noisy`` against ``clean``, in dB: what the noise added is, measured."""
    signal = clean.astype(np.float64)
    noise = noisy.astype(np.float64) - signal
    return float(10 * np.log10(np.mean(signal * signal) / np.mean(noise * noise)))
