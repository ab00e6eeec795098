import numpy as np
import pytest

from calls.pipeline.turns import TurnDetector, TurnEvent, endpoint_delay
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
        ("name", "Maria Gonzalez.", "", 0.5),
        ("yes_no", "", "", 0.6),
    ],
)
def test_endpoint_delay_waits_longer_for_unfinished_patterns(expect, text, hint, delay) -> None:
    assert endpoint_delay(expect, text, hint) == delay


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
