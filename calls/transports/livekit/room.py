"""The agent's room, behind a seam: the LiveKit realtime SDK in production, an emulated room in tests.

The media path needs a real SFU (the ``livekit`` wheel's Rust core speaks
WebRTC), so the worker talks to ``AgentRoom`` and gets one from a
``RoomConnector``. ``RtcRoomConnector`` joins a real LiveKit room with
``rtc.Room``: it subscribes to the SIP caller's microphone through
``rtc.AudioStream`` and publishes the agent's track from an
``rtc.AudioSource``. ``calls.transports.livekit.emulator.EmulatedRoomConnector``
joins the loopback emulator's rooms with the same ``rtc.AudioFrame``s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from livekit import rtc

# LiveKit's native rate: rooms resample to and from it.
ROOM_SAMPLE_RATE = 48000


@dataclass(frozen=True, slots=True)
class RoomParticipant:
    """A remote participant as the agent sees it: who, and the attributes LiveKit SIP set (``sip.*``)."""

    identity: str
    attributes: dict[str, str] = field(default_factory=dict)


class AgentRoom(Protocol):
    """One room the agent has joined."""

    name: str
    metadata: str

    async def wait_for_sip_participant(self, timeout: float = 10.0) -> RoomParticipant:
        """The phone caller (participant kind SIP), once they are in the room; ``TimeoutError`` if they never come."""
        ...

    def caller_frames(self, participant: RoomParticipant) -> AsyncIterator[rtc.AudioFrame]:
        """The caller's microphone as ``ROOM_SAMPLE_RATE`` mono frames; ends when they leave."""
        ...

    async def publish_frame(self, frame: rtc.AudioFrame) -> None:
        """Queue one frame of the agent's voice on its published track (back-pressure: waits when full)."""
        ...

    def clear_queue(self) -> None:
        """Drop the agent's audio queued but not yet sent: the caller barged in."""
        ...

    async def disconnect(self) -> None:
        """Leave the room."""
        ...


class RoomConnector(Protocol):
    async def connect(self, url: str, token: str) -> AgentRoom:
        """Join the room ``token`` grants (a job assignment's URL and token)."""
        ...


class RtcRoom:
    """A real LiveKit room through the realtime SDK. Checked only against a real SFU (none runs in CI)."""

    def __init__(self, room: rtc.Room, source: rtc.AudioSource) -> None:
        self._room, self._source = room, source
        self.name = room.name
        self.metadata = room.metadata

    async def wait_for_sip_participant(self, timeout: float = 10.0) -> RoomParticipant:
        async def wait() -> rtc.RemoteParticipant:
            while True:
                for participant in self._room.remote_participants.values():
                    if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
                        return participant
                await asyncio.sleep(0.05)

        found = await asyncio.wait_for(wait(), timeout)
        return RoomParticipant(identity=found.identity, attributes=dict(found.attributes))

    async def caller_frames(self, participant: RoomParticipant) -> AsyncIterator[rtc.AudioFrame]:
        remote = self._room.remote_participants.get(participant.identity)
        if remote is None:
            return
        stream = rtc.AudioStream.from_participant(
            participant=remote,
            track_source=rtc.TrackSource.SOURCE_MICROPHONE,
            sample_rate=ROOM_SAMPLE_RATE,
            num_channels=1,
        )
        try:
            async for event in stream:
                yield event.frame
        finally:
            await stream.aclose()

    async def publish_frame(self, frame: rtc.AudioFrame) -> None:
        await self._source.capture_frame(frame)

    def clear_queue(self) -> None:
        self._source.clear_queue()

    async def disconnect(self) -> None:
        await self._room.disconnect()


class RtcRoomConnector:
    """Joins with ``rtc.Room`` and publishes the agent's microphone track."""

    async def connect(self, url: str, token: str) -> AgentRoom:
        room = rtc.Room()
        await room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
        source = rtc.AudioSource(ROOM_SAMPLE_RATE, 1, queue_size_ms=1000)
        track = rtc.LocalAudioTrack.create_audio_track("agent", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await room.local_participant.publish_track(track, options)
        return RtcRoom(room, source)
