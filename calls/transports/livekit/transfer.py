"""Putting a LiveKit SIP caller through to a person: ``TransferSIPParticipant`` through ``livekit-api``.

LiveKit SIP sends the carrier a REFER to ``tel:<number>``; the call then
runs between the carrier and that number, and our SIP participant leaves the
room. A transfer that fails is a Twirp error carrying the SIP status
(``livekit.api.SipCallError``): busy (486, 600, 603), no answer (a ringing
timeout, 408, 480, 487) or anything else.
"""

from __future__ import annotations

import aiohttp
import structlog
from django.conf import settings
from livekit import api
from livekit.protocol import sip

from calls.pipeline.protocols import TransferStatus

logger = structlog.get_logger(__name__)

BUSY_SIP_CODES = frozenset({486, 600, 603})
NO_ANSWER_SIP_CODES = frozenset({408, 480, 487})
# How long the number may ring; LiveKit gives up with a ringing timeout after it.
RINGING_TIMEOUT_S = 30


def transfer_status_for(*, sip_code: int | None, reason: str | None) -> TransferStatus:
    """How a failed transfer ended, from the SIP status and LiveKit's transfer reason."""
    if sip_code in BUSY_SIP_CODES:
        return "busy"
    if sip_code in NO_ANSWER_SIP_CODES or reason == "STR_RINGING_TIMEOUT":
        return "no_answer"
    return "failed"


class LiveKitTransferer:
    """``CallTransferer`` for one room's SIP caller."""

    def __init__(self, *, room_name: str, participant_identity: str) -> None:
        self.room_name = room_name
        self.participant_identity = participant_identity

    async def transfer(self, to: str) -> TransferStatus:
        """Transfer the caller to ``to`` (E.164) with a dial tone while it rings; how it ended."""
        request = sip.TransferSIPParticipantRequest(
            participant_identity=self.participant_identity,
            room_name=self.room_name,
            transfer_to=f"tel:{to}",
            play_dialtone=True,
        )
        request.ringing_timeout.seconds = RINGING_TIMEOUT_S
        log = logger.bind(room=self.room_name)
        try:
            async with api.LiveKitAPI(
                settings.LIVEKIT_URL, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET
            ) as lk:
                response = await lk.sip.transfer_sip_participant(request)
        except api.SipCallError as exc:
            status = transfer_status_for(sip_code=exc.sip_status_code, reason=exc.sip_transfer_reason)
            log.info("livekit_transfer_failed", status=status, sip_code=exc.sip_status_code, code=exc.code)
            return status
        except api.ServerError as exc:
            log.warning("livekit_transfer_refused", code=exc.code, status=exc.status)
            return "failed"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("livekit_transfer_unreachable", error=type(exc).__name__)
            return "failed"
        if response.status == sip.SIPTransferStatus.STS_TRANSFER_FAILED:
            # Newer servers may answer a failed transfer without an error.
            code = response.sip_status.code if response.HasField("sip_status") else None
            reason = sip.SIPTransferReason.Name(response.reason)
            return transfer_status_for(sip_code=int(code) if code is not None else None, reason=reason)
        log.info("livekit_transfer_answered")
        return "answered"
