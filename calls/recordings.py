"""Call recordings on disk, written while the call runs.

A recording is a stereo 16-bit PCM WAV file (caller left, agent right) under
``MEDIA_ROOT``. The file is created with its header when the call is
answered and grows by whole frames every few seconds; the header's sizes are
brought up to date after each append. A voice process killed mid-call leaves
a file that ``wav_repair`` makes whole again: a half-written last frame is cut
and the sizes are set from what is on disk.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from django.core.files.storage import default_storage

CHANNELS = 2
SAMPLE_WIDTH = 2
BLOCK_ALIGN = CHANNELS * SAMPLE_WIDTH
HEADER_BYTES = 44


def recording_name(*, schema_name: str, call_id: int, started_year: int, started_month: int) -> str:
    """Where a call's recording lives in storage: under its tenant, so a tenant's recordings can be erased together."""
    return f"recordings/{schema_name}/{started_year:04d}/{started_month:02d}/call-{call_id}.wav"


def recordings_dir_name(schema_name: str) -> str:
    """The storage folder holding every recording of one tenant."""
    return f"recordings/{schema_name}/"


def recording_path(name: str) -> Path:
    """The file behind a storage name (recordings need a storage on a file system every process shares)."""
    return Path(default_storage.path(name))


def _header(data_bytes: int, sample_rate: int) -> bytes:
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 36 + data_bytes),
            b"WAVEfmt ",
            struct.pack("<IHHIIHH", 16, 1, CHANNELS, sample_rate, sample_rate * BLOCK_ALIGN, BLOCK_ALIGN, 16),
            b"data",
            struct.pack("<I", data_bytes),
        )
    )


def wav_create(path: Path, *, sample_rate: int) -> None:
    """Start an empty recording at ``path`` (replacing any file there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(_header(0, sample_rate))
        handle.flush()
        os.fsync(handle.fileno())


def wav_append(path: Path, frames: bytes) -> None:
    """Append interleaved stereo frames and update the header, so the file on disk is always a whole WAV."""
    if len(frames) % BLOCK_ALIGN:
        raise ValueError(f"{len(frames)} bytes is not a whole number of stereo frames")
    with path.open("r+b") as handle:
        handle.seek(0, os.SEEK_END)
        handle.write(frames)
        data_bytes = handle.tell() - HEADER_BYTES
        handle.seek(4)
        handle.write(struct.pack("<I", 36 + data_bytes))
        handle.seek(40)
        handle.write(struct.pack("<I", data_bytes))
        handle.flush()
        os.fsync(handle.fileno())


def wav_repair(path: Path) -> float:
    """Make the recording at ``path`` a valid WAV of whatever audio reached the disk; return its seconds.

    Idempotent. A file too short to hold a header, or not a RIFF file, is left
    alone and counts as 0 seconds.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0.0
    if size < HEADER_BYTES:
        return 0.0
    with path.open("r+b") as handle:
        header = handle.read(HEADER_BYTES)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return 0.0
        sample_rate = struct.unpack("<I", header[24:28])[0]
        data_bytes = (size - HEADER_BYTES) // BLOCK_ALIGN * BLOCK_ALIGN
        handle.truncate(HEADER_BYTES + data_bytes)
        handle.seek(0)
        handle.write(_header(data_bytes, sample_rate))
        handle.flush()
        os.fsync(handle.fileno())
    return data_bytes / BLOCK_ALIGN / sample_rate if sample_rate else 0.0
