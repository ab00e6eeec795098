"""``static/js/test_call_worklet.js`` in real Chromium: the microphone at the AudioContext's rate becomes
20 ms frames of 16 kHz PCM16, the speech band kept.

The processor runs on the page's main thread here, with the three globals the audio thread gives it
(``AudioWorkletProcessor``, ``sampleRate``, ``registerProcessor``), so its arithmetic is checked exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from playwright.sync_api import Page, sync_playwright

from tests.e2e.conftest import chromium_path

pytestmark = pytest.mark.xdist_group("browser")

WORKLET = (Path(settings.BASE_DIR) / "static" / "js" / "test_call_worklet.js").read_text()

RUN = """([source, inputRate, targetRate, tone, amplitude, seconds]) => {
  const frames = [];
  let Processor = null;
  globalThis.sampleRate = inputRate;
  globalThis.AudioWorkletProcessor = class {
    constructor() { this.port = { postMessage: (buffer) => frames.push(Array.from(new Int16Array(buffer))) }; }
  };
  globalThis.registerProcessor = (name, cls) => { if (name === "test-call-microphone") Processor = cls; };
  (0, eval)(source);
  const processor = new Processor({ processorOptions: { targetRate } });
  const total = Math.round(inputRate * seconds);
  for (let start = 0; start < total; start += 128) {
    const block = new Float32Array(Math.min(128, total - start));
    for (let i = 0; i < block.length; i++) {
      block[i] = amplitude * Math.sin(2 * Math.PI * tone * (start + i) / inputRate);
    }
    if (!processor.process([[block]])) throw new Error("the processor stopped");
  }
  return frames;
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield browser.new_page()
        browser.close()


def _frames(page: Page, *, input_rate: int, tone: float, amplitude: float, seconds: float) -> list[list[int]]:
    return page.evaluate(RUN, [WORKLET, input_rate, 16000, tone, amplitude, seconds])


def _tone_of(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """The strongest frequency (Hz) and its peak amplitude, from a windowless FFT of whole cycles."""
    spectrum = np.abs(np.fft.rfft(samples)) / (len(samples) / 2)
    peak = int(np.argmax(spectrum))
    return peak * rate / len(samples), float(spectrum[peak])


@pytest.mark.parametrize("input_rate", [48000, 44100, 16000])
def test_a_second_of_speech_band_tone_becomes_fifty_20_ms_frames_at_16_khz(page: Page, input_rate: int) -> None:
    # A little over a second: at 44.1 kHz the last output sample of exactly one second sits on a rounding edge.
    frames = _frames(page, input_rate=input_rate, tone=500.0, amplitude=0.5, seconds=1.005)

    assert len(frames) == 50
    assert {len(frame) for frame in frames} == {320}
    samples = np.array(frames, dtype=np.float64).ravel()
    frequency, amplitude = _tone_of(samples, 16000)
    assert frequency == 500.0
    # Averaging a few input samples per output sample costs a 500 Hz tone well under 1 %.
    assert 0.99 * 0.5 * 32767 < amplitude <= 0.5 * 32767


def test_samples_beyond_full_scale_are_clipped_not_wrapped(page: Page) -> None:
    frames = _frames(page, input_rate=48000, tone=250.0, amplitude=1.5, seconds=0.04)

    samples = np.array(frames).ravel()
    assert len(frames) == 2
    assert (samples.max(), samples.min()) == (32767, -32768)
