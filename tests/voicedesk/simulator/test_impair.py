"""Line impairments: exact noise level, gain, clipping and lost frames, all repeatable by seed."""

from __future__ import annotations

import numpy as np
import pytest

from calls.audio import mulaw_decode
from voicedesk.simulator.impair import (
    FRAME_SAMPLES,
    ImpairmentError,
    LineImpairment,
    lost_frames,
    measured_snr_db,
)

# One second of a 300 Hz tone with a slow swell, like a voiced vowel: 50 frames of 20 ms.
_T = np.arange(8000) / 8000
SPEECH = (np.sin(2 * np.pi * 300 * _T) * (6000 + 3000 * np.sin(2 * np.pi * 2 * _T))).astype(np.int16)


def rms(pcm: np.ndarray) -> float:
    samples = pcm.astype(np.float64)
    return float(np.sqrt(np.mean(samples * samples)))


def test_parse_reads_every_key_in_any_order_and_describe_reads_back() -> None:
    line = LineImpairment.parse(" loss=0.01, noise=18 ,clip=0.9,gain=-10,seed=7")
    assert line == LineImpairment(snr_db=18.0, gain_db=-10.0, loss=0.01, clip=0.9, seed=7)
    assert line.describe() == "noise=18,gain=-10,loss=0.01,clip=0.9,seed=7"
    assert LineImpairment.parse(line.describe()) == line
    assert LineImpairment.parse("") == LineImpairment()
    assert LineImpairment().describe() == "clean"
    assert LineImpairment.parse("noise=15").describe() == "noise=15,seed=0"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hiss=3", "cannot read impairment 'hiss=3'"),
        ("noise", "cannot read impairment 'noise'"),
        ("noise=loud", "impairment noise='loud' is not a number"),
        ("noise=10,noise=12", "impairment 'noise' is given twice"),
        ("loss=1", "loss must be a fraction from 0 up to 1, got 1.0"),
        ("loss=-0.1", "loss must be a fraction from 0 up to 1, got -0.1"),
        ("clip=0", "clip must be a fraction of the peak above 0 and at most 1, got 0.0"),
        ("clip=1.5", "clip must be a fraction of the peak above 0 and at most 1, got 1.5"),
        ("noise=inf", "noise must be a finite SNR in dB, got inf"),
        ("seed=1.5", "impairment seed='1.5' is not a number"),
    ],
)
def test_parse_rejects_what_it_cannot_apply(spec: str, message: str) -> None:
    with pytest.raises(ImpairmentError) as error:
        LineImpairment.parse(spec)
    assert str(error.value).startswith(message)


def test_a_clean_line_changes_nothing() -> None:
    out, lost = LineImpairment().apply_with_report(SPEECH, key="hello")
    assert np.array_equal(out, SPEECH)
    assert lost == ()


@pytest.mark.parametrize("snr", [15.0, 18.0, 20.0])
def test_noise_is_added_at_the_snr_asked_for(snr: float) -> None:
    noisy = LineImpairment(snr_db=snr).apply(SPEECH, key="utterance")
    assert abs(measured_snr_db(SPEECH, noisy) - snr) < 0.5
    # Noise, not a scaled copy of the speech: it fills the gaps too.
    assert rms(noisy - SPEECH) > 0


def test_noise_on_a_short_utterance_is_still_exact() -> None:
    short = SPEECH[:480]  # 60 ms
    noisy = LineImpairment(snr_db=18).apply(short, key="yes")
    assert abs(measured_snr_db(short, noisy) - 18) < 0.5


def test_gain_makes_the_line_quieter_by_exactly_that_much() -> None:
    quiet = LineImpairment(gain_db=-10).apply(SPEECH)
    assert abs(20 * np.log10(rms(quiet) / rms(SPEECH)) - (-10)) < 0.01
    assert np.array_equal(quiet, np.rint(SPEECH * 10 ** (-10 / 20)).astype(np.int16))


def test_clipping_flattens_the_peaks_at_that_fraction_of_the_peak() -> None:
    peak = int(np.max(np.abs(SPEECH)))
    clipped = LineImpairment(clip=0.9).apply(SPEECH)
    level = round(0.9 * peak)
    assert int(np.max(clipped)) == level
    assert int(np.min(clipped)) == -level
    below = np.abs(SPEECH) <= level
    assert np.array_equal(clipped[below], SPEECH[below])  # everything under the level is untouched
    assert int(np.count_nonzero(~below)) > 0


def test_loss_zeroes_exactly_that_share_of_whole_frames() -> None:
    long = np.tile(SPEECH, 20)  # 1000 frames
    out, lost = LineImpairment(loss=0.01, seed=3).apply_with_report(long, key="a")
    assert len(lost) == 10
    zeroed = [i for i in range(1000) if not out[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].any()]
    assert zeroed == list(lost)
    kept = np.ones(long.size, dtype=bool)
    for i in lost:
        kept[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] = False
    assert np.array_equal(out[kept], long[kept])


def test_loss_is_repeatable_by_seed_and_key_and_varies_with_them() -> None:
    long = np.tile(SPEECH, 20)
    first = LineImpairment(loss=0.05, seed=1).apply_with_report(long, key="My name is Ann.")[1]
    again = LineImpairment(loss=0.05, seed=1).apply_with_report(long, key="My name is Ann.")[1]
    other_seed = LineImpairment(loss=0.05, seed=2).apply_with_report(long, key="My name is Ann.")[1]
    other_key = LineImpairment(loss=0.05, seed=1).apply_with_report(long, key="Yes.")[1]
    assert first == again
    assert len(first) == len(other_seed) == len(other_key) == 50
    assert first != other_seed
    assert first != other_key


def test_short_utterances_lose_a_frame_at_the_rate_asked_for() -> None:
    # 40 frames at 1%: 0.4 expected losses each, so 0 or 1, and 40% of them lose one over many.
    rng = np.random.default_rng(11)
    counts = [len(lost_frames(40 * FRAME_SAMPLES, 0.01, rng)) for _ in range(2000)]
    assert set(counts) == {0, 1}
    assert abs(sum(counts) / 2000 - 0.4) < 0.05


def test_impairments_combine_in_line_order() -> None:
    line = LineImpairment(snr_db=18, clip=0.8, gain_db=-6, loss=0.02, seed=5)
    out, lost = line.apply_with_report(SPEECH, key="k")
    assert len(lost) == 1  # 50 frames at 2%
    again = line.apply(SPEECH, key="k")
    assert np.array_equal(out, again)
    # The loudest sample is the clip level (of the noisy peak), scaled by the gain.
    noisy_peak = np.max(np.abs(LineImpairment(snr_db=18, seed=5).apply(SPEECH, key="k").astype(np.float64)))
    assert abs(int(np.max(np.abs(out))) - 0.8 * noisy_peak * 10 ** (-6 / 20)) <= 1.0


def test_idle_noise_continues_at_the_level_of_the_noise_under_speech() -> None:
    line = LineImpairment(snr_db=18, seed=2)
    frames = line.idle_noise(rms(SPEECH), key="call-1")
    assert frames is not None
    noise = np.concatenate([mulaw_decode(next(frames)) for _ in range(500)])
    noisy = line.apply(SPEECH, key="utterance")
    under_speech = noisy.astype(np.float64) - SPEECH
    assert abs(20 * np.log10(rms(noise) / rms(under_speech))) < 0.5
    assert abs(20 * np.log10(rms(SPEECH) / rms(noise)) - 18) < 0.5


def test_idle_noise_is_quieter_on_a_quieter_line_and_repeatable() -> None:
    loud = LineImpairment(snr_db=15).idle_noise(3000.0, key="k")
    quiet = LineImpairment(snr_db=15, gain_db=-10).idle_noise(3000.0, key="k")
    again = LineImpairment(snr_db=15, gain_db=-10).idle_noise(3000.0, key="k")
    assert loud is not None
    assert quiet is not None
    assert again is not None
    loud_pcm = np.concatenate([mulaw_decode(next(loud)) for _ in range(500)])
    quiet_frames = [next(quiet) for _ in range(500)]
    assert quiet_frames == [next(again) for _ in range(500)]
    assert all(len(f) == FRAME_SAMPLES for f in quiet_frames)
    quiet_pcm = np.concatenate([mulaw_decode(f) for f in quiet_frames])
    assert abs(20 * np.log10(rms(quiet_pcm) / rms(loud_pcm)) - (-10)) < 0.5


def test_no_idle_noise_without_noise() -> None:
    assert LineImpairment(gain_db=-10, loss=0.01).idle_noise(3000.0) is None
    assert LineImpairment(snr_db=18).idle_noise(0.0) is None
