import numpy as np
import pytest

from calls.pipeline.turns import TurnConfig, TurnDetector, TurnEvent, endpoint_delay
from calls.providers.registry import vad_for


@pytest.mark.parametrize(
    ("expect", "text", "hint", "delay"),
    [
        ("digits", "555 201", "", 1.5),
        ("digits", "555 201 3344.", "", 0.3),
        ("digits", "five five five two zero one three three four four", "", 0.3),
        ("digits", "nine one seven, four four four, triple oh seven.", "", 0.3),
        ("digits", "nine one seven, four four four, triple", "", 1.5),
        ("digits", "five five five, nine oh two, double seven six oh.", "", 0.3),
        ("spelling", "M-A-R-I-A", "", 1.2),
        ("spelling", "M-A-R-I-A, G.", "", 1.2),  # a surname is not one letter
        ("spelling", "M-A-R-I-A, G-O-N-Z-A-L-E-Z.", "", 0.4),
        ("spelling", "M-A-R-I-A", "Maria Gonzalez", 1.2),
        ("spelling", "M-A-R-I-A, G-O-N-Z-A-L-E.", "Maria Gonzalez", 0.4),  # a letter lost on the line
        ("spelling", "A-I-S-H-A-P-A-T-E-L.", "Asia Petal", 0.4),
        ("spelling", "N-O-R-A, L-I-N-D.", "Nora Lindqvist", 1.2),
        ("email", "sofia dot rossi at example", "", 1.4),
        ("email", "sofia.rossi at example dot com.", "", 0.4),
        ("free", "My kitchen sink is leaking and", "", 1.0),
        ("free", "My kitchen sink is leaking,", "", 1.0),
        ("free", "My kitchen sink is leaking.", "", 0.3),
        ("name", "Maria Gonzalez.", "", 0.3),  # said and done
        ("name", "My name is Maria", "", 0.5),  # trailing off: a surname may follow
        ("name", "Maria.", "", 0.5),
        ("time", "Tomorrow morning would be best.", "", 0.3),
        ("time", "Tuesday.", "", 0.5),  # the time of day may follow
        ("address", "The address is 27 Cedar Court, unit 5.", "", 0.3),
        ("address", "27 Cedar Court", "", 0.5),
        ("yes_no", "", "", 0.6),
        ("yes_no", "Yes, that's right.", "", 0.15),
        ("yes_no", "No,", "", 1.0),  # a correction is coming
        ("yes_no", "No, the number is wrong.", "", 0.3),
    ],
)
def test_endpoint_delay_waits_longer_for_unfinished_patterns(expect, text, hint, delay) -> None:
    assert endpoint_delay(expect, text, hint) == delay


@pytest.mark.parametrize(
    ("text", "delay"),
    [
        ("My kitchen sink is leaking.", 0.5),  # the story may go on
        ("Are you open on Saturdays?", 0.3),  # a question wants its answer
        ("My kitchen sink is leaking and", 1.0),
    ],
)
def test_the_opening_turn_waits_longer_after_a_statement(text, delay) -> None:
    assert endpoint_delay("free", text, opening=True) == delay


@pytest.fixture(scope="module")
def spoken() -> np.ndarray:
    import asyncio

    from calls.audio import resample
    from calls.providers.registry import tts_for

    async def synth() -> np.ndarray:
        tts = tts_for("offline")
        chunks = [c async for c in tts.synthesize("My kitchen sink is leaking all over the floor.")]
        return resample(np.concatenate(chunks), tts.sample_rate, 8000)

    return asyncio.run(synth())


def test_detector_reports_start_pause_and_resume_on_real_speech(spoken) -> None:
    detector = TurnDetector(vad_for(8000))
    silence = np.zeros(8000, dtype=np.int16)
    events: list[tuple[TurnEvent, float]] = []
    for block in (silence, spoken, silence, spoken[:4000]):
        for i in range(0, len(block), 160):
            events.extend((e, detector.clock_s) for e in detector.push(block[i : i + 160]))

    kinds = [e for e, _ in events]
    assert kinds[:3] == [TurnEvent.STARTED, TurnEvent.PAUSED, TurnEvent.RESUMED]
    started_at = events[0][1]
    assert 1.0 < started_at < 1.4  # speech begins after the first second of silence
    assert detector.state.started_at < started_at
    speech_end = 1.0 + len(spoken) / 8000
    assert started_at < events[1][1] <= speech_end + 0.5


def test_detector_ignores_silence_and_keeps_audio_from_before_the_start(spoken) -> None:
    detector = TurnDetector(vad_for(8000))
    for _ in range(0, 16000, 160):
        assert detector.push(np.zeros(160, dtype=np.int16)) == []
    assert detector.state.started is False
    for i in range(0, len(spoken), 160):
        detector.push(spoken[i : i + 160])
    audio = detector.take_audio()
    # Pre-roll keeps the onset: the turn's audio is at least the speech itself.
    assert len(audio) >= len(spoken) - 0.1 * 8000
    detector.end_turn()
    assert detector.take_audio().size == 0


class CountingVad:
    """The real detector, counting the frames it is asked about."""

    def __init__(self) -> None:
        self.inner = vad_for(8000)
        self.sample_rate = self.inner.sample_rate
        self.frame_samples = self.inner.frame_samples
        self.asked = 0

    def speech_probability(self, frame: np.ndarray) -> float:
        self.asked += 1
        return self.inner.speech_probability(frame)

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()


def test_line_silence_never_reaches_the_model_and_the_turns_are_the_same(spoken) -> None:
    rng = np.random.default_rng(7)
    hiss = rng.integers(-40, 41, size=8000).astype(np.int16)  # a quiet line: about -60 dBFS
    call = np.concatenate([np.zeros(8000, dtype=np.int16), spoken, hiss, spoken[:4000], np.zeros(4000, np.int16)])

    def run(config: TurnConfig) -> tuple[list[tuple[TurnEvent, float]], CountingVad]:
        vad = CountingVad()
        detector = TurnDetector(vad, config)
        events = []
        for i in range(0, len(call), 160):
            events.extend((e, round(detector.clock_s, 3)) for e in detector.push(call[i : i + 160]))
        return events, vad

    gated, gated_vad = run(TurnConfig())
    ungated, ungated_vad = run(TurnConfig(silence_peak=0))

    windows = len(call) // 256
    assert ungated_vad.asked == windows
    # The leading silence, the hiss and the trailing silence, less the first 0.3 s of each that still goes.
    skipped = (8000 + 8000 + 4000 - 3 * 2400) // 256
    assert gated_vad.asked <= windows - skipped + 3
    assert (
        [e for e, _ in gated]
        == [e for e, _ in ungated]
        == [
            TurnEvent.STARTED,
            TurnEvent.PAUSED,
            TurnEvent.RESUMED,
            TurnEvent.PAUSED,
        ]
    )
    # At the same moments, give or take one model window.
    assert all(abs(a[1] - b[1]) <= 0.033 for a, b in zip(gated, ungated, strict=True))
