"""The LiveKit emulator on loopback, and the settings that point the real ``livekit-api`` client at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from calls.transports.livekit.emulator import LiveKitEmulator

API_KEY = "APItestkey"
API_SECRET = "test-secret-for-the-livekit-emulator-0123"


@pytest.fixture
def livekit(settings: Any) -> Iterator[LiveKitEmulator]:
    emulator = LiveKitEmulator(api_key=API_KEY, api_secret=API_SECRET).start()
    settings.LIVEKIT_URL = emulator.url
    settings.LIVEKIT_API_KEY = API_KEY
    settings.LIVEKIT_API_SECRET = API_SECRET
    yield emulator
    emulator.stop()
