"""Voice activity and endpointing: when did the caller start, pause and finish?

The detector only reports what the audio shows (speech started, paused,
resumed). Whether a pause ends the turn is decided with the transcript in
hand (``endpoint_delay``): a caller halfway through a phone number gets far
longer than one who just said "yes".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from calls.dialogue.extract import is_affirmative, spelled_letters
from calls.pipeline.protocols import Expectation, Pcm16, VoiceActivityDetector


class TurnEvent(Enum):
    STARTED = "started"  # enough speech to be a caller turn (or a barge-in candidate)
    PAUSED = "paused"  # speech stopped for ``pause_s``: time to transcribe
    RESUMED = "resumed"  # the caller carried on after a pause


@dataclass(slots=True)
class TurnConfig:
    threshold: float = 0.5
    start_s: float = 0.1  # continuous speech before a turn counts as started
    # Silence that pauses a turn: the first moment it could be over, so the
    # transcription starts then and is ready when the endpoint delay runs out.
    pause_s: float = 0.12
    preroll_s: float = 0.3  # audio kept from before the start, so onsets are not clipped
    max_turn_s: float = 30.0
    # Frames whose peak is below this (about -54 dBFS) are line silence: no voice is that
    # quiet on a phone line. Once the line has been that quiet for ``silence_skip_after_s``
    # the model is no longer asked: it has settled on silence by then (the frames before
    # still go through it, so its hangover after speech is what it always was). Callers
    # are quiet most of a call (the agent is talking), and the model is most of the
    # process's per-frame cost.
    silence_peak: int = 64
    silence_skip_after_s: float = 0.3


@dataclass(slots=True)
class TurnState:
    audio: list[Pcm16] = field(default_factory=list)
    speaking: bool = False
    started: bool = False
    paused: bool = False
    speech_run_s: float = 0.0
    silence_run_s: float = 0.0
    voiced_s: float = 0.0
    started_at: float = 0.0  # seconds into the call
    last_speech_at: float = 0.0  # seconds into the call: end of the last voiced frame
    duration_s: float = 0.0
    decodes: int = 0  # transcriptions started for this turn, kept or thrown away


class TurnDetector:
    """Feeds 8 kHz PCM through a VAD and reports turn events.

    Times are seconds into the call, counted by the audio itself, so they are
    immune to network jitter.
    """

    def __init__(self, vad: VoiceActivityDetector, config: TurnConfig | None = None) -> None:
        self.vad = vad
        self.config = config or TurnConfig()
        self._frame = vad.frame_samples
        self._frame_s = vad.frame_samples / vad.sample_rate
        self._pending = np.zeros(0, dtype=np.int16)
        self._preroll: list[Pcm16] = []
        self._clock_s = 0.0
        self._quiet_s = 0.0  # line silence in a row
        self.state = TurnState()

    @property
    def clock_s(self) -> float:
        return self._clock_s

    def close(self) -> None:
        """The call is over: the voice activity detector goes back to its pool now.

        Not left to the garbage collector: a session is freed only by a full
        collection, which then released hundreds of detectors at once and
        stalled every other call's audio for over a second
        (``bench/pipeline_overhead.py`` at 125 calls).
        """
        self.vad.close()

    def push(self, pcm: Pcm16) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        self._pending = np.concatenate([self._pending, pcm])
        while self._pending.size >= self._frame:
            frame, self._pending = self._pending[: self._frame], self._pending[self._frame :]
            event = self._step(frame)
            if event is not None:
                events.append(event)
        return events

    def _step(self, frame: Pcm16) -> TurnEvent | None:
        cfg, st = self.config, self.state
        self._clock_s += self._frame_s
        if max(int(frame.max()), -int(frame.min())) < cfg.silence_peak:
            self._quiet_s += self._frame_s
        else:
            self._quiet_s = 0.0
        if self._quiet_s > cfg.silence_skip_after_s:
            voiced = False
        else:
            voiced = self.vad.speech_probability(frame.astype(np.float32) / 32768.0) >= cfg.threshold
        event: TurnEvent | None = None
        if voiced:
            st.speech_run_s += self._frame_s
            st.silence_run_s = 0.0
            st.last_speech_at = self._clock_s
            st.voiced_s += self._frame_s
        else:
            st.silence_run_s += self._frame_s
            st.speech_run_s = 0.0

        if not st.started:
            self._preroll.append(frame)
            max_pre = int(cfg.preroll_s / self._frame_s) + int(cfg.start_s / self._frame_s) + 1
            del self._preroll[:-max_pre]
            if st.speech_run_s >= cfg.start_s:
                st.started, st.speaking = True, True
                st.started_at = self._clock_s - st.speech_run_s
                st.audio = list(self._preroll)
                st.voiced_s = st.speech_run_s
                self._preroll.clear()
                event = TurnEvent.STARTED
            return event

        st.audio.append(frame)
        st.duration_s += self._frame_s
        if st.paused and voiced and st.speech_run_s >= 2 * self._frame_s:
            st.paused = False
            event = TurnEvent.RESUMED
        elif not st.paused and st.silence_run_s >= cfg.pause_s:
            st.paused = True
            event = TurnEvent.PAUSED
        elif not st.paused and st.duration_s >= cfg.max_turn_s:
            # A caller who never pauses still gets answered.
            st.paused = True
            event = TurnEvent.PAUSED
        return event

    def take_audio(self) -> Pcm16:
        """The current turn's audio so far, trailing silence trimmed to ``pause_s``."""
        if not self.state.audio:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.state.audio)

    def end_turn(self) -> None:
        """Forget the current turn; the next speech starts a new one."""
        self.state = TurnState()
        self._preroll.clear()


_TRAILING_INCOMPLETE = re.compile(
    r"(\b(and|or|but|so|um|uh|er|my|the|a|is|it's|its|at|to|of|with|because|number|name)|[,\-])\s*$", re.IGNORECASE
)
_DIGIT_WORDS = re.compile(r"\b(zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)\b|\d", re.IGNORECASE)


def endpoint_delay(expect: Expectation, text: str, hint: str = "", *, opening: bool = False) -> float:
    """Seconds of silence after the last speech before the turn is over.

    Short after a complete answer, long while digits, spelling or an email
    are being read out and the pattern is not complete yet. ``hint`` is what
    the answer should look like, when the dialogue knows: for spelling, the
    name as first heard. The ``opening`` turn, where callers tell their story
    and pause between sentences, gets longer after a statement.
    """
    stripped = text.strip()
    if not stripped:
        return 0.6
    if expect == "yes_no" and is_affirmative(stripped) and not _TRAILING_INCOMPLETE.search(stripped):
        # "Yes, that's right." is the whole answer; a correction ("no, it's ...") is given time.
        return 0.15
    if expect == "digits":
        # "double seven" is two digits and "triple oh" three: the word stands for the repeats.
        digits = sum(
            len(word) if word.isdigit() else 2 if word.lower() == "triple" else 1
            for word in (m.group(0) for m in _DIGIT_WORDS.finditer(stripped))
        )
        return 0.3 if digits >= 10 else 1.5
    if expect == "spelling":
        return 0.4 if spelling_complete(stripped, hint) else 1.2
    if expect == "email":
        return 0.4 if re.search(r"(@|\bat\b).+(\.|\bdot\b)\s*\w+[.!]?$", stripped, re.IGNORECASE) else 1.4
    if _TRAILING_INCOMPLETE.search(stripped):
        return 1.0
    if opening and expect == "free" and not stripped.endswith("?"):
        return 0.5
    if expect == "name" and _sentence_ended(stripped) and len(stripped.split()) >= 2:
        return 0.3
    if expect in ("address", "time") and _sentence_ended(stripped) and len(stripped.split()) >= 3:
        # "Tomorrow morning would be best.", "The address is 27 Cedar Court, unit 5.": said and done.
        return 0.3
    if expect in ("name", "address", "time"):
        return 0.5
    return 0.3


def _sentence_ended(text: str) -> bool:
    # "My name is Robert Chen." is said and done; a name that trails off is waited for.
    return text.endswith((".", "!", "?"))


def spelling_complete(text: str, heard_name: str = "") -> bool:
    """Whether spelled letters look like a whole name: about as many letters as the name heard.

    With no name heard, two words of two letters or more and six letters in
    all. A caller who pauses mid-name is still waited for (1.2 s) whenever
    the letters fall short.
    """
    groups = spelled_letters(text, spelling=True)
    letters = sum(len(group) for group in groups)
    words = re.findall(r"[a-z]+", heard_name.lower())
    if words:
        # Letters often run together in the transcript, so only their count is compared.
        return letters >= max(5, sum(len(word) for word in words) - 1)
    return len(groups) >= 2 and min(len(group) for group in groups) >= 2 and letters >= 6
