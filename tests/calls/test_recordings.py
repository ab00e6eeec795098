"""Recordings written as the call runs: always a whole WAV, repaired after a kill mid-write."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from calls.recordings import HEADER_BYTES, recording_name, wav_append, wav_create, wav_repair


def _frames(values: list[tuple[int, int]]) -> bytes:
    return np.array(values, dtype=np.int16).tobytes()


def _read(path: Path) -> tuple[int, int, list[tuple[int, int]]]:
    with wave.open(str(path), "rb") as wav:
        raw = wav.readframes(wav.getnframes())
        rate, channels = wav.getframerate(), wav.getnchannels()
    samples = np.frombuffer(raw, dtype=np.int16).reshape(-1, 2)
    return rate, channels, [(int(a), int(b)) for a, b in samples]


def test_recording_name_carries_the_tenant_schema() -> None:
    assert recording_name(schema_name="alpha", call_id=42, started_year=2026, started_month=3) == (
        "recordings/alpha/2026/03/call-42.wav"
    )


def test_each_append_leaves_a_whole_wav_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "call.wav"
    wav_create(path, sample_rate=8000)
    assert _read(path) == (8000, 2, [])

    wav_append(path, _frames([(1, -1), (2, -2)]))
    assert _read(path) == (8000, 2, [(1, -1), (2, -2)])
    wav_append(path, _frames([(3, -3)]))
    assert _read(path) == (8000, 2, [(1, -1), (2, -2), (3, -3)])


def test_append_refuses_a_partial_stereo_frame(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    wav_create(path, sample_rate=8000)
    with pytest.raises(ValueError, match="not a whole number"):
        wav_append(path, b"\x01\x02\x03")
    assert path.stat().st_size == HEADER_BYTES


def test_repair_after_a_kill_between_the_audio_and_the_header(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    wav_create(path, sample_rate=8000)
    wav_append(path, _frames([(5, 6)]))
    # The process died after writing 2 frames and half of a third, before the header was updated.
    with path.open("ab") as handle:
        handle.write(_frames([(7, 8), (9, 10)]) + b"\x0b\x00")

    assert wav_repair(path) == 3 / 8000
    assert _read(path) == (8000, 2, [(5, 6), (7, 8), (9, 10)])
    assert path.stat().st_size == HEADER_BYTES + 3 * 4
    # Idempotent.
    assert wav_repair(path) == 3 / 8000
    assert _read(path) == (8000, 2, [(5, 6), (7, 8), (9, 10)])


def test_repair_leaves_missing_short_and_foreign_files_alone(tmp_path: Path) -> None:
    assert wav_repair(tmp_path / "missing.wav") == 0.0
    short = tmp_path / "short.wav"
    short.write_bytes(b"RIFF")
    assert wav_repair(short) == 0.0
    assert short.read_bytes() == b"RIFF"
    foreign = tmp_path / "foreign.wav"
    foreign.write_bytes(b"OggS" + b"\x00" * 60)
    assert wav_repair(foreign) == 0.0
    assert foreign.read_bytes() == b"OggS" + b"\x00" * 60
