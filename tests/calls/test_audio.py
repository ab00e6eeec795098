"""calls.audio: μ-law against audioop as an oracle, resampling, framing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from calls.audio import (
    CALL_RATE,
    MULAW_FRAME_BYTES,
    AudioFormat,
    FrameChunker,
    OnsetTrimmer,
    Resampler,
    SampleChunker,
    WireCodec,
    float32_to_pcm16,
    mulaw_decode,
    mulaw_encode,
    pcm16_to_float32,
    resample,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")  # removed in 3.13; only the oracle needs it

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def tone(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size)))
    return float(np.argmax(spectrum) * rate / pcm.size)


def test_mulaw_encode_matches_audioop_for_every_sample() -> None:
    assert mulaw_encode(ALL_INT16) == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)


def test_mulaw_decode_matches_audioop_for_every_code() -> None:
    codes = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2")
    np.testing.assert_array_equal(mulaw_decode(codes), expected)


def test_mulaw_known_codes() -> None:
    samples = np.array([0, 4, -4, 12, 32767, -32768], dtype=np.int16)
    assert mulaw_encode(samples) == bytes([0xFF, 0xFE, 0x7E, 0xFD, 0x80, 0x00])
    np.testing.assert_array_equal(
        mulaw_decode(bytes([0x00, 0x7F, 0x80, 0xFF, 0xFE, 0x7E])), [-32124, 0, 32124, 0, 8, -8]
    )


def test_mulaw_round_trip_is_stable() -> None:
    codes = bytes(range(256))
    round_trip = mulaw_encode(mulaw_decode(codes))
    # 0x7F is "negative zero"; it decodes to 0, which encodes as 0xFF.
    assert round_trip == codes.replace(b"\x7f", b"\xff")
    assert mulaw_decode(b"").size == 0


def test_mulaw_accepts_non_contiguous_input() -> None:
    assert mulaw_encode(ALL_INT16[::2]) == audioop.lin2ulaw(ALL_INT16[::2].tobytes(), 2)


def test_float_conversions() -> None:
    floats = pcm16_to_float32(np.array([-32768, 0, 16384, 32767], dtype=np.int16))
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(floats, np.array([-1.0, 0.0, 0.5, 32767 / 32768], dtype=np.float32))
    np.testing.assert_array_equal(
        float32_to_pcm16(np.array([-2.0, -1.0, 0.5, 1.0, 3.0], dtype=np.float32)), [-32768, -32768, 16384, 32767, 32767]
    )


@pytest.mark.parametrize(
    ("src", "dst", "freq"),
    [(8000, 16000, 440.0), (16000, 8000, 1000.0), (22050, 8000, 3000.0), (24000, 8000, 250.0), (8000, 8000, 440.0)],
)
def test_resample_preserves_a_sine(src: int, dst: int, freq: float) -> None:
    pcm = tone(freq, src, 1.0)
    out = resample(pcm, src, dst)
    assert out.dtype == np.int16
    assert out.size == -(-pcm.size * dst // src)
    assert peak_frequency(out, dst) == pytest.approx(freq, abs=1.0)
    # Aligned in time and level: away from the edges it is the same sine, sampled at dst.
    expected = 10000.0 * np.sin(2 * np.pi * freq * np.arange(out.size) / dst)
    assert np.max(np.abs(out[400:-400] - expected[400:-400])) < 0.01 * 10000


def test_downsampling_removes_what_would_alias() -> None:
    # 5 kHz cannot exist at 8 kHz; it would fold to 3 kHz if not filtered.
    out = resample(tone(5000.0, 22050, 1.0), 22050, 8000)
    assert np.sqrt(np.mean(out[400:-400].astype(np.float64) ** 2)) < 10000 * 1e-3


def test_streaming_resampler_equals_one_shot() -> None:
    pcm = np.random.default_rng(7).normal(0, 3000, 22050).astype(np.int16)
    rng = np.random.default_rng(8)
    for src, dst in ((22050, 8000), (8000, 16000)):
        whole = resample(pcm, src, dst)
        resampler = Resampler(src, dst)
        pieces, start = [], 0
        while start < pcm.size:
            size = int(rng.integers(1, 900))
            pieces.append(resampler.process(pcm[start : start + size]))
            start += size
        pieces.append(resampler.flush())
        np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_resampler_reset_starts_a_new_stream() -> None:
    pcm = tone(440.0, 8000, 0.2)
    resampler = Resampler(8000, 16000)
    resampler.process(tone(1000.0, 8000, 0.1))
    resampler.reset()
    np.testing.assert_array_equal(
        np.concatenate((resampler.process(pcm), resampler.flush())), resample(pcm, 8000, 16000)
    )


def test_resample_edge_cases() -> None:
    assert resample(np.zeros(0, dtype=np.int16), 8000, 16000).size == 0
    assert resample(np.array([1000], dtype=np.int16), 8000, 16000).size == 2
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)


def test_frame_chunker_keeps_the_remainder() -> None:
    chunker = FrameChunker()
    assert chunker.frame_bytes == MULAW_FRAME_BYTES == 160
    assert chunker.push(bytes(100)) == []
    frames = chunker.push(bytes(range(250)))
    assert [len(frame) for frame in frames] == [160, 160]
    assert frames[0] == bytes(100) + bytes(range(60))
    assert chunker.pending == 30
    tail = chunker.flush()
    assert tail == bytes(range(220, 250)) + b"\xff" * 130
    assert chunker.flush() is None


def test_frame_chunker_clear() -> None:
    chunker = FrameChunker(4)
    assert chunker.push(b"abcdef") == [b"abcd"]
    chunker.clear()
    assert chunker.pending == 0
    assert chunker.push(b"wxyz") == [b"wxyz"]


def test_sample_chunker_regroups_telephony_frames_for_vad() -> None:
    chunker = SampleChunker(256, np.float32)
    stream = np.arange(160 * 5, dtype=np.float32)
    frames = [frame for i in range(5) for frame in chunker.push(stream[i * 160 : (i + 1) * 160])]
    assert len(frames) == 3
    np.testing.assert_array_equal(np.concatenate(frames), stream[:768])
    assert all(frame.dtype == np.float32 for frame in frames)
    assert chunker.pending == 32
    tail = chunker.flush()
    assert tail is not None
    np.testing.assert_array_equal(tail[:32], stream[768:])
    assert not tail[32:].any()
    assert chunker.flush() is None


def test_mulaw_wire_at_the_call_rate_is_coded_without_resampling() -> None:
    codec = WireCodec(AudioFormat(encoding="mulaw", sample_rate=8000))
    pcm = tone(440, 8000, 0.02)
    wire = codec.encode(pcm)
    assert wire == mulaw_encode(pcm)
    assert len(wire) == MULAW_FRAME_BYTES == codec.wire.frame_bytes
    assert np.array_equal(codec.decode(wire), mulaw_decode(wire))


def test_pcm16_wire_at_another_rate_is_resampled_at_the_edge() -> None:
    wire_format = AudioFormat(encoding="pcm16", sample_rate=16000, frame_ms=20)
    assert (wire_format.frame_samples, wire_format.frame_bytes) == (320, 640)
    codec = WireCodec(wire_format)
    inbound = tone(440, 16000, 1.0)
    pcm = np.concatenate([codec.decode(inbound[i : i + 320].astype("<i2").tobytes()) for i in range(0, 16000, 320)])
    # The streaming resampler holds back its 3 ms look-ahead; everything else arrives at the call rate.
    assert CALL_RATE - 40 <= pcm.size <= CALL_RATE
    assert peak_frequency(pcm[200:], CALL_RATE) == pytest.approx(440, abs=10)
    outbound = b"".join(codec.encode(pcm[i : i + 160]) for i in range(0, pcm.size - 159, 160))
    wide = np.frombuffer(outbound, dtype="<i2")
    assert abs(wide.size - 2 * (pcm.size // 160 * 160)) <= 100
    assert peak_frequency(wide[400:], 16000) == pytest.approx(440, abs=10)


def test_onset_trimmer_drops_the_quiet_before_speech_across_chunks_and_keeps_a_lead_in() -> None:
    trimmer = OnsetTrimmer(8000, threshold=200, keep_s=0.01)  # 80 samples of lead-in
    quiet = np.full(300, 5, dtype=np.int16)
    speech = np.array([0, 150, 900, -1200, 40, 7], dtype=np.int16)

    assert trimmer.process(quiet).size == 0  # nothing audible yet
    out = trimmer.process(np.concatenate([quiet[:50], speech]))
    later = trimmer.process(quiet[:20])

    # 80 samples before the first sample at or over the threshold (900): 48 held back, then 50 + 2 here.
    assert out.size == 80 + 4
    assert out[-4:].tolist() == [900, -1200, 40, 7]
    assert out[:-4].tolist() == [5] * 78 + [0, 150]
    assert later.tolist() == [5] * 20  # after the onset everything passes unchanged


def test_onset_trimmer_without_lead_in_starts_on_the_first_audible_sample() -> None:
    trimmer = OnsetTrimmer(8000, threshold=200, keep_s=0.0)
    out = trimmer.process(np.array([1, 2, 250, 3], dtype=np.int16))
    assert out.tolist() == [250, 3]
