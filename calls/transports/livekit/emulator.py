"""A LiveKit server on loopback, for development and tests: Twirp API, SIP calls, webhooks, agent jobs.

No LiveKit server runs on these machines (none is packaged for PyPI, npm or
Debian), so this one speaks the parts of LiveKit's wire protocols the product
uses, as the official ``livekit-api`` SDK and LiveKit's servers send them:

- **Twirp** ``POST /twirp/livekit.<Service>/<Method>`` with protobuf
  (``application/protobuf``, what the SDK sends) or JSON bodies, answered in
  the same encoding; errors as Twirp JSON ``{"code", "msg", "meta"}``. Services:
  ``SIP`` (dispatch rules, ``TransferSIPParticipant`` answered, busy, unanswered
  or failed as a test chooses per number) and ``RoomService`` (rooms, participants).
- **Auth** as the server checks it: an HS256 JWT in ``Authorization: Bearer``,
  issued by the API key, signed with its secret, with ``exp``; SIP methods
  need the ``sip.admin`` grant, room methods ``video.roomCreate``,
  ``video.roomList`` or ``video.roomAdmin`` for the room named.
- **SIP inbound calls** (``sip_call_inbound``): the rule whose
  ``inbound_numbers`` hold the dialled number picks the room (individual:
  prefix + caller + random suffix), the SIP participant joins with LiveKit's
  ``sip.*`` attributes plus the rule's, and ``room_config.agents`` are
  dispatched.
- **Webhooks** signed as LiveKit signs them: ``Authorization`` is a JWT with
  ``sha256`` = base64(SHA-256 of the body), body ``application/webhook+json``.
- **Agent workers** on ``GET /agent`` (websocket, binary ``WorkerMessage`` /
  ``ServerMessage`` protobufs): register, availability, assignment with a room
  token, worker status (load) and job status.

Media is not emulated here: a real SFU carries WebRTC audio. The agent's
room is reached through ``calls.transports.livekit.room.RoomConnector``;
``EmulatedRoomConnector`` below joins the emulator's rooms in-process.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import numpy as np
import structlog
from aiohttp import WSMsgType, web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit import rtc
from livekit.api import AccessToken, TokenVerifier, VideoGrants
from livekit.api.access_token import Claims
from livekit.protocol import agent as agent_pb
from livekit.protocol import models, room, sip, webhook

from calls.transports.livekit.room import AgentRoom, RoomParticipant

logger = structlog.get_logger(__name__)

PROTOBUF = "application/protobuf"
JSON = "application/json"
SIP_PARTICIPANT_PREFIX = "sip_"


class TwirpError(Exception):
    """An error the server answers with: HTTP status and Twirp code."""

    STATUS = {
        "unauthenticated": 401,
        "permission_denied": 403,
        "not_found": 404,
        "invalid_argument": 400,
        "malformed": 400,
        "already_exists": 409,
        "bad_route": 404,
        "resource_exhausted": 429,
        "deadline_exceeded": 408,
        "failed_precondition": 412,
        "aborted": 409,
    }

    def __init__(self, code: str, msg: str, meta: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.meta = code, msg, meta or {}

    def body(self) -> dict[str, Any]:
        """The Twirp error body; ``meta`` carries the SIP status of a failed call or transfer."""
        return {"code": self.code, "msg": self.msg, **({"meta": self.meta} if self.meta else {})}

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 500)


@dataclass
class EmulatedParticipant:
    info: models.ParticipantInfo
    # Caller audio, as the SFU would forward it to subscribers (agent rooms read it).
    audio: asyncio.Queue[rtc.AudioFrame | None] | None = None
    # The loop ``audio`` belongs to: the agent's, not the server thread's.
    loop: asyncio.AbstractEventLoop | None = None


@dataclass
class EmulatedRoomState:
    info: models.Room
    participants: dict[str, EmulatedParticipant] = field(default_factory=dict)
    # Frames the agent published, in order, for tests to listen to.
    published: list[rtc.AudioFrame] = field(default_factory=list)
    clears: int = 0
    agent_joined: asyncio.Event | None = None


@dataclass
class _Worker:
    worker_id: str
    agent_name: str
    ws: web.WebSocketResponse
    status: int = agent_pb.WS_AVAILABLE
    load: float = 0.0
    job_count: int = 0
    availability: dict[str, asyncio.Future[agent_pb.AvailabilityResponse]] = field(default_factory=dict)


# How a transfer ends, as LiveKit SIP reports it: a failed REFER is a Twirp error carrying the SIP
# status (LiveKit's protocol maps 486 Busy Here to resource_exhausted, a ringing timeout to
# deadline_exceeded, a 5xx from the far end to failed_precondition) and the transfer's reason.
TRANSFER_OUTCOMES = ("answered", "busy", "no_answer", "failed")
_TRANSFER_ERRORS: dict[str, tuple[str, int, str, str]] = {
    "busy": ("resource_exhausted", 486, "Busy Here", "STR_REJECTED"),
    "no_answer": ("deadline_exceeded", 408, "Request Timeout", "STR_RINGING_TIMEOUT"),
    "failed": ("failed_precondition", 503, "Service Unavailable", "STR_REJECTED"),
}


@dataclass(frozen=True)
class TransferRecord:
    """One ``TransferSIPParticipant`` the emulator served."""

    room_name: str
    participant_identity: str
    transfer_to: str
    play_dialtone: bool
    outcome: str


@dataclass
class JobRecord:
    job: agent_pb.Job
    worker_id: str = ""
    status: int = agent_pb.JS_PENDING
    error: str = ""
    refused_by: list[str] = field(default_factory=list)


class LiveKitEmulator:
    """The server, in a thread with its own event loop. ``start()`` then use ``url``."""

    def __init__(
        self,
        *,
        api_key: str = "devkey",
        api_secret: str = "devsecret-devsecret-devsecret-00",  # noqa: S107 (the development server's own)
        webhook_url: str = "",
        port: int = 0,
    ) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.webhook_url = webhook_url
        self.port = port
        self.rules: dict[str, sip.SIPDispatchRuleInfo] = {}
        self.rooms: dict[str, EmulatedRoomState] = {}
        self.workers: dict[str, _Worker] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.webhooks_sent: list[tuple[str, int]] = []  # (event, HTTP status)
        # How a transfer to each number ends ("tel:+1..." or "sip:..."; default answered): tests choose.
        self.transfer_outcomes: dict[str, str] = {}
        self.transfers: list[TransferRecord] = []
        # Who delivers webhooks; tests replace it to post through Django's test client.
        self.webhook_deliver: Callable[[bytes, str], int] = self._webhook_post
        self._verifier = TokenVerifier(api_key, api_secret)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveKitEmulator:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="livekit-emulator", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/twirp/livekit.{service}/{method}", self._twirp)
        app.router.add_get("/agent", self._agent_socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            for worker in list(self.workers.values()):
                await worker.ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` on the server's loop from any thread and wait for it."""
        assert self._loop is not None, "start() the emulator first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- auth --------------------------------------------------------------------------------
    def _claims(self, request: web.Request) -> Claims:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise TwirpError("unauthenticated", "no authorization token")
        try:
            return self._verifier.verify(header.removeprefix("Bearer "))
        except (jwt.PyJWTError, ValueError) as exc:
            raise TwirpError("unauthenticated", f"invalid token: {exc}") from exc

    @staticmethod
    def _require_sip_admin(claims: Claims) -> None:
        if claims.sip is None or not claims.sip.admin:
            raise TwirpError("permission_denied", "requires SIP admin permission")

    @staticmethod
    def _require_video(claims: Claims, grant: str, room_name: str = "") -> None:
        video = claims.video or VideoGrants()
        if not getattr(video, grant, False):
            raise TwirpError("permission_denied", f"requires {grant} permission")
        if grant == "room_admin" and video.room != room_name:
            raise TwirpError("permission_denied", "token is not for this room")

    # -- twirp --------------------------------------------------------------------------------
    async def _twirp(self, request: web.Request) -> web.Response:
        service, method = request.match_info["service"], request.match_info["method"]
        content_type = request.content_type
        try:
            route = self._routes().get((service, method))
            if route is None:
                raise TwirpError("bad_route", f"no handler for livekit.{service}/{method}")
            request_class, handler = route
            claims = self._claims(request)
            body = await request.read()
            message = request_class()
            if content_type == PROTOBUF:
                try:
                    message.ParseFromString(body)
                except DecodeError as exc:
                    raise TwirpError("malformed", f"bad protobuf body: {exc}") from exc
            elif content_type == JSON:
                try:
                    json_format.Parse(body.decode() or "{}", message)
                except (json_format.ParseError, UnicodeDecodeError) as exc:
                    raise TwirpError("malformed", f"bad JSON body: {exc}") from exc
            else:
                raise TwirpError("bad_route", f"unexpected Content-Type {content_type!r}")
            with self._lock:
                reply: Message = handler(claims, message)
        except TwirpError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except Exception as exc:  # a fault of the emulator, answered as the server answers its own
            logger.exception("livekit_emulator_internal_error")
            return web.json_response({"code": "internal", "msg": str(exc)}, status=500)
        if content_type == PROTOBUF:
            return web.Response(body=reply.SerializeToString(), content_type=PROTOBUF)
        return web.Response(text=json_format.MessageToJson(reply), content_type=JSON)

    def _routes(self) -> dict[tuple[str, str], tuple[type[Message], Callable[[Claims, Any], Message]]]:
        return {
            ("SIP", "CreateSIPDispatchRule"): (sip.CreateSIPDispatchRuleRequest, self.dispatch_rule_create),
            ("SIP", "ListSIPDispatchRule"): (sip.ListSIPDispatchRuleRequest, self.dispatch_rule_list),
            ("SIP", "DeleteSIPDispatchRule"): (sip.DeleteSIPDispatchRuleRequest, self.dispatch_rule_delete),
            ("SIP", "TransferSIPParticipant"): (sip.TransferSIPParticipantRequest, self.sip_participant_transfer),
            ("RoomService", "CreateRoom"): (room.CreateRoomRequest, self.room_create),
            ("RoomService", "ListRooms"): (room.ListRoomsRequest, self.room_list),
            ("RoomService", "DeleteRoom"): (room.DeleteRoomRequest, self.room_delete),
            ("RoomService", "ListParticipants"): (room.ListParticipantsRequest, self.participant_list),
            ("RoomService", "RemoveParticipant"): (room.RoomParticipantIdentity, self.participant_remove),
        }

    # -- SIP dispatch rules --------------------------------------------------------------------
    def dispatch_rule_create(self, claims: Claims, req: sip.CreateSIPDispatchRuleRequest) -> sip.SIPDispatchRuleInfo:
        self._require_sip_admin(claims)
        info = sip.SIPDispatchRuleInfo()
        if req.HasField("dispatch_rule"):
            info.CopyFrom(req.dispatch_rule)
        else:  # the deprecated flat fields older clients send
            info.rule.CopyFrom(req.rule)
            info.trunk_ids.extend(req.trunk_ids)
            info.inbound_numbers.extend(req.inbound_numbers)
            info.hide_phone_number, info.name, info.metadata = req.hide_phone_number, req.name, req.metadata
            info.attributes.update(req.attributes)
            info.room_config.CopyFrom(req.room_config)
        if info.rule.WhichOneof("rule") is None:
            raise TwirpError("invalid_argument", "dispatch rule is required")
        for other in self.rules.values():
            same_trunks = not other.trunk_ids or not info.trunk_ids or set(other.trunk_ids) & set(info.trunk_ids)
            shared = set(other.inbound_numbers) & set(info.inbound_numbers)
            if same_trunks and (shared or not (other.inbound_numbers or info.inbound_numbers)):
                raise TwirpError(
                    "invalid_argument",
                    f"Conflicting SIP Dispatch Rules: same Trunk+Number+PIN combination for "
                    f"{other.sip_dispatch_rule_id} and new rule ({', '.join(sorted(shared)) or 'any number'})",
                )
        info.sip_dispatch_rule_id = f"SDR_{secrets.token_hex(6)}"
        info.created_at.GetCurrentTime()
        self.rules[info.sip_dispatch_rule_id] = info
        return info

    def dispatch_rule_list(
        self, claims: Claims, req: sip.ListSIPDispatchRuleRequest
    ) -> sip.ListSIPDispatchRuleResponse:
        self._require_sip_admin(claims)
        items = [
            r
            for r in self.rules.values()
            if not req.dispatch_rule_ids or r.sip_dispatch_rule_id in req.dispatch_rule_ids
        ]
        return sip.ListSIPDispatchRuleResponse(items=items)

    def dispatch_rule_delete(self, claims: Claims, req: sip.DeleteSIPDispatchRuleRequest) -> sip.SIPDispatchRuleInfo:
        self._require_sip_admin(claims)
        info = self.rules.pop(req.sip_dispatch_rule_id, None)
        if info is None:
            raise TwirpError("not_found", f"dispatch rule {req.sip_dispatch_rule_id} not found")
        return info

    # -- SIP transfers --------------------------------------------------------------------------
    def sip_participant_transfer(
        self, claims: Claims, req: sip.TransferSIPParticipantRequest
    ) -> sip.TransferSIPParticipantResponse:
        """A cold transfer (SIP REFER) of a room's SIP participant, ending as ``transfer_outcomes`` says.

        Needs the ``sip.call`` grant and ``roomAdmin`` for the room. Put
        through, the SIP participant leaves the room (its call now runs
        between the carrier and the number); a failure is the Twirp error
        LiveKit answers with, and the caller stays in the room.
        """
        if claims.sip is None or not claims.sip.call:
            raise TwirpError("permission_denied", "requires SIP call permission")
        self._require_video(claims, "room_admin", req.room_name)
        if not req.transfer_to.startswith(("tel:", "sip:")):
            raise TwirpError("invalid_argument", "transfer_to must be a tel: or sip: URI")
        state = self.rooms.get(req.room_name)
        if state is None:
            raise TwirpError("not_found", "requested room does not exist")
        participant = state.participants.get(req.participant_identity)
        if participant is None:
            raise TwirpError("not_found", "participant not found")
        if participant.info.kind != models.ParticipantInfo.SIP:
            raise TwirpError("invalid_argument", "participant is not a SIP participant")
        outcome = self.transfer_outcomes.get(req.transfer_to, "answered")
        self.transfers.append(
            TransferRecord(
                room_name=req.room_name,
                participant_identity=req.participant_identity,
                transfer_to=req.transfer_to,
                play_dialtone=req.play_dialtone,
                outcome=outcome,
            )
        )
        transfer_id = f"STR_{secrets.token_hex(6)}"
        error = _TRANSFER_ERRORS.get(outcome)
        if error is not None:
            code, sip_code, sip_status, reason = error
            meta = {
                "sip_status_code": str(sip_code),
                "sip_status": sip_status,
                "sip_transfer_reason": reason,
                "sip_transfer_id": transfer_id,
            }
            raise TwirpError(code, f"sip status {sip_code}: {sip_status}", meta)
        # The carrier hangs up our leg once the REFER succeeded: just after the answer.
        assert self._loop is not None
        self._loop.call_later(0.05, self._participant_leave_locked, req.room_name, req.participant_identity)
        return sip.TransferSIPParticipantResponse(
            transfer_id=transfer_id,
            status=sip.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
            reason=sip.SIPTransferReason.STR_COMPLETED,
        )

    def _participant_leave_locked(self, room_name: str, identity: str) -> None:
        with self._lock:
            self._participant_leave(room_name, identity)

    # -- rooms --------------------------------------------------------------------------------
    def room_create(self, claims: Claims, req: room.CreateRoomRequest) -> models.Room:
        self._require_video(claims, "room_create")
        return self._room_open(req.name, metadata=req.metadata).info

    def room_list(self, claims: Claims, req: room.ListRoomsRequest) -> room.ListRoomsResponse:
        self._require_video(claims, "room_list")
        rooms = [r.info for name, r in self.rooms.items() if not req.names or name in req.names]
        return room.ListRoomsResponse(rooms=rooms)

    def room_delete(self, claims: Claims, req: room.DeleteRoomRequest) -> room.DeleteRoomResponse:
        self._require_video(claims, "room_create")
        if req.room not in self.rooms:
            raise TwirpError("not_found", "room not found")
        self._room_close(req.room)
        return room.DeleteRoomResponse()

    def participant_list(self, claims: Claims, req: room.ListParticipantsRequest) -> room.ListParticipantsResponse:
        self._require_video(claims, "room_admin", req.room)
        state = self.rooms.get(req.room)
        if state is None:
            raise TwirpError("not_found", "room not found")
        return room.ListParticipantsResponse(participants=[p.info for p in state.participants.values()])

    def participant_remove(self, claims: Claims, req: room.RoomParticipantIdentity) -> room.RemoveParticipantResponse:
        self._require_video(claims, "room_admin", req.room)
        state = self.rooms.get(req.room)
        if state is None or req.identity not in state.participants:
            raise TwirpError("not_found", "participant not found")
        self._participant_leave(req.room, req.identity)
        return room.RemoveParticipantResponse()

    def _room_open(self, name: str, *, metadata: str = "") -> EmulatedRoomState:
        state = self.rooms.get(name)
        if state is None:
            info = models.Room(sid=f"RM_{secrets.token_hex(6)}", name=name, metadata=metadata)
            info.creation_time = int(time.time())
            state = self.rooms[name] = EmulatedRoomState(info=info)
            self._webhook_send("room_started", room_info=info)
        return state

    def _room_close(self, name: str, *, reason: int = 0) -> None:
        state = self.rooms.pop(name, None)
        if state is None:
            return
        for identity in list(state.participants):
            self._participant_leave(name, identity, state=state)
        self._webhook_send("room_finished", room_info=state.info, room_end_reason=reason)

    def _participant_leave(self, name: str, identity: str, *, state: EmulatedRoomState | None = None) -> None:
        state = state or self.rooms.get(name)
        if state is None or identity not in state.participants:
            return
        participant = state.participants.pop(identity)
        participant.info.state = models.ParticipantInfo.DISCONNECTED
        if participant.audio is not None and participant.loop is not None:
            participant.loop.call_soon_threadsafe(participant.audio.put_nowait, None)
        state.info.num_participants = len(state.participants)
        self._webhook_send("participant_left", room_info=state.info, participant=participant.info)

    # -- SIP calls ----------------------------------------------------------------------------
    def sip_call_inbound(self, *, from_number: str, to_number: str, call_id: str = "") -> str:
        """A carrier's INVITE to ``to_number`` reached LiveKit SIP; returns the room the caller joined.

        Raises ``LookupError`` when no dispatch rule takes the number (LiveKit
        answers the carrier 404 then).
        """
        with self._lock:
            rule = next((r for r in self.rules.values() if to_number in r.inbound_numbers), None)
            if rule is None:
                rule = next((r for r in self.rules.values() if not r.inbound_numbers), None)
            if rule is None:
                raise LookupError(f"no dispatch rule for {to_number}")
            kind = rule.rule.WhichOneof("rule")
            if kind == "dispatch_rule_individual":
                room_name = f"{rule.rule.dispatch_rule_individual.room_prefix}{from_number}_{secrets.token_hex(4)}"
            elif kind == "dispatch_rule_direct":
                room_name = rule.rule.dispatch_rule_direct.room_name
            else:
                room_name = f"{rule.rule.dispatch_rule_callee.room_prefix}{to_number}"
            state = self._room_open(room_name, metadata=rule.room_config.metadata)
            call_id = call_id or f"SCL_{secrets.token_hex(6)}"
            attributes = dict(rule.attributes)
            attributes.update(
                {
                    "sip.callID": call_id,
                    "sip.callStatus": "active",
                    "sip.ruleID": rule.sip_dispatch_rule_id,
                    "sip.trunkID": "ST_emulated",
                }
            )
            if not rule.hide_phone_number:
                attributes.update({"sip.phoneNumber": from_number, "sip.trunkPhoneNumber": to_number})
            identity = f"{SIP_PARTICIPANT_PREFIX}{from_number}"
            info = models.ParticipantInfo(
                sid=f"PA_{secrets.token_hex(6)}",
                identity=identity,
                name=f"Phone {from_number}",
                state=models.ParticipantInfo.ACTIVE,
                kind=models.ParticipantInfo.SIP,
                attributes=attributes,
                joined_at=int(time.time()),
            )
            state.participants[identity] = EmulatedParticipant(info=info)
            state.info.num_participants = len(state.participants)
            self._webhook_send("participant_joined", room_info=state.info, participant=info)
            agents = list(rule.room_config.agents)
            room_info = models.Room()
            room_info.CopyFrom(state.info)
        for dispatch in agents:
            self._run(self._job_dispatch(room_info, dispatch.agent_name, dispatch.metadata))
        return room_name

    def sip_call_hangup(self, room_name: str) -> None:
        """The caller hung up: the SIP participant leaves and the room closes (empty_timeout passed)."""
        with self._lock:
            state = self.rooms.get(room_name)
            if state is None:
                return
            for identity, participant in list(state.participants.items()):
                if participant.info.kind == models.ParticipantInfo.SIP:
                    self._participant_leave(room_name, identity)
            self._room_close(room_name)

    # -- webhooks ---------------------------------------------------------------------------------
    def webhook_sign(self, body: bytes, *, ttl_s: int = 600, api_secret: str | None = None) -> str:
        """The ``Authorization`` LiveKit sends: a JWT whose ``sha256`` claim is the body's hash."""
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = AccessToken(self.api_key, api_secret or self.api_secret).with_sha256(digest)
        return token.with_ttl(datetime.timedelta(seconds=ttl_s)).to_jwt()

    def webhook_event(self, event: str, **fields: Any) -> webhook.WebhookEvent:
        message = webhook.WebhookEvent(event=event, id=f"EV_{uuid.uuid4().hex[:12]}", created_at=int(time.time()))
        if "room_info" in fields:
            message.room.CopyFrom(fields["room_info"])
        if "participant" in fields:
            message.participant.CopyFrom(fields["participant"])
        if fields.get("room_end_reason"):
            message.room_end_reason = fields["room_end_reason"]
        return message

    def _webhook_send(self, event: str, **fields: Any) -> None:
        if not self.webhook_url and self.webhook_deliver == self._webhook_post:
            return
        body = json_format.MessageToJson(self.webhook_event(event, **fields)).encode()
        status = self.webhook_deliver(body, self.webhook_sign(body))
        self.webhooks_sent.append((event, status))

    def _webhook_post(self, body: bytes, auth: str) -> int:
        request = urllib.request.Request(  # noqa: S310 (the configured loopback endpoint)
            self.webhook_url,
            data=body,
            headers={"Content-Type": "application/webhook+json", "Authorization": auth},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL from config
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    # -- agent workers ----------------------------------------------------------------------------
    async def _agent_socket(self, request: web.Request) -> web.StreamResponse:
        try:
            claims = self._claims(request)
            if claims.video is None or not claims.video.agent:
                raise TwirpError("permission_denied", "requires agent permission")
        except TwirpError as exc:
            return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        worker: _Worker | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                message = agent_pb.WorkerMessage.FromString(msg.data)
                kind = message.WhichOneof("message")
                if kind == "register":
                    worker = _Worker(
                        worker_id=f"AW_{secrets.token_hex(6)}", agent_name=message.register.agent_name, ws=ws
                    )
                    self.workers[worker.worker_id] = worker
                    reply = agent_pb.ServerMessage(register=agent_pb.RegisterWorkerResponse(worker_id=worker.worker_id))
                    await ws.send_bytes(reply.SerializeToString())
                elif worker is None:
                    await ws.close(code=1008, message=b"register first")
                elif kind == "availability":
                    future = worker.availability.pop(message.availability.job_id, None)
                    if future is not None and not future.done():
                        future.set_result(message.availability)
                elif kind == "update_worker":
                    worker.status, worker.load = message.update_worker.status, message.update_worker.load
                    worker.job_count = message.update_worker.job_count
                elif kind == "update_job":
                    record = self.jobs.get(message.update_job.job_id)
                    if record is not None:
                        record.status, record.error = message.update_job.status, message.update_job.error
                elif kind == "ping":
                    pong = agent_pb.WorkerPong(last_timestamp=message.ping.timestamp, timestamp=int(time.time() * 1000))
                    await ws.send_bytes(agent_pb.ServerMessage(pong=pong).SerializeToString())
        finally:
            if worker is not None:
                self.workers.pop(worker.worker_id, None)
        return ws

    async def _job_dispatch(self, room_info: models.Room, agent_name: str, metadata: str) -> JobRecord:
        """Offer the job to each available worker of ``agent_name``, least loaded first, until one takes it."""
        job = agent_pb.Job(
            id=f"AJ_{secrets.token_hex(6)}",
            dispatch_id=f"AD_{secrets.token_hex(6)}",
            type=agent_pb.JT_ROOM,
            room=room_info,
            metadata=metadata,
            agent_name=agent_name,
        )
        record = self.jobs[job.id] = JobRecord(job=job)
        candidates = sorted(
            (w for w in self.workers.values() if w.agent_name == agent_name and w.status == agent_pb.WS_AVAILABLE),
            key=lambda w: w.load,
        )
        for worker in candidates:
            future: asyncio.Future[agent_pb.AvailabilityResponse] = asyncio.get_running_loop().create_future()
            worker.availability[job.id] = future
            await worker.ws.send_bytes(
                agent_pb.ServerMessage(availability=agent_pb.AvailabilityRequest(job=job)).SerializeToString()
            )
            try:
                answer = await asyncio.wait_for(future, 10)
            except TimeoutError:
                answer = agent_pb.AvailabilityResponse(job_id=job.id, available=False)
            if not answer.available:
                record.refused_by.append(worker.worker_id)
                continue
            identity = answer.participant_identity or f"agent-{job.id}"
            token = (
                AccessToken(self.api_key, self.api_secret)
                .with_identity(identity)
                .with_name(answer.participant_name or agent_name)
                .with_kind("agent")
                .with_grants(VideoGrants(room_join=True, room=room_info.name, agent=True))
                .to_jwt()
            )
            record.worker_id = worker.worker_id
            assignment = agent_pb.JobAssignment(job=job, url=self.url.replace("http", "ws", 1), token=token)
            await worker.ws.send_bytes(agent_pb.ServerMessage(assignment=assignment).SerializeToString())
            return record
        logger.warning("livekit_emulator_job_unassigned", job_id=job.id, agent_name=agent_name)
        return record

    def job_terminate(self, job_id: str) -> None:
        record = self.jobs[job_id]
        worker = self.workers.get(record.worker_id)
        if worker is not None:
            message = agent_pb.ServerMessage(termination=agent_pb.JobTermination(job_id=job_id))
            self._run(worker.ws.send_bytes(message.SerializeToString()))

    # -- the emulated media path ------------------------------------------------------------------
    def room_connector(self) -> EmulatedRoomConnector:
        return EmulatedRoomConnector(self)


class EmulatedRoom:
    """The agent's side of an emulated room: the caller's frames in, the agent's frames collected.

    It lives on the agent's event loop; the test (on the same loop) speaks
    for the caller with ``caller_say`` and reads ``state.published``.
    """

    def __init__(self, emulator: LiveKitEmulator, state: EmulatedRoomState, identity: str) -> None:
        self.emulator, self.state, self.identity = emulator, state, identity
        self.name = state.info.name
        self.metadata = state.info.metadata
        self._joined = asyncio.Event()
        self.disconnected = False
        # The caller's phone listening: each frame the agent publishes, and each queue clear.
        self.on_publish: Callable[[rtc.AudioFrame], None] | None = None
        self.on_clear: Callable[[], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None

    async def wait_for_sip_participant(self, timeout: float = 10.0) -> RoomParticipant:
        async def wait() -> EmulatedParticipant:
            while True:
                for participant in self.state.participants.values():
                    if participant.info.kind == models.ParticipantInfo.SIP:
                        return participant
                await asyncio.sleep(0.01)

        participant = await asyncio.wait_for(wait(), timeout)
        if participant.audio is None:
            participant.audio, participant.loop = asyncio.Queue(), asyncio.get_running_loop()
        self._joined.set()
        return RoomParticipant(identity=participant.info.identity, attributes=dict(participant.info.attributes))

    async def caller_frames(self, participant: RoomParticipant) -> AsyncIterator[rtc.AudioFrame]:
        emulated = self.state.participants.get(participant.identity)
        if emulated is None or emulated.audio is None:
            return
        queue = emulated.audio
        while True:
            frame = await queue.get()
            if frame is None:
                return
            yield frame

    async def publish_frame(self, frame: rtc.AudioFrame) -> None:
        self.state.published.append(frame)
        if self.on_publish is not None:
            self.on_publish(frame)

    def clear_queue(self) -> None:
        self.state.clears += 1
        if self.on_clear is not None:
            self.on_clear()

    async def disconnect(self) -> None:
        if not self.disconnected:
            self.disconnected = True
            if self.on_disconnect is not None:
                self.on_disconnect()
            with self.emulator._lock:
                self.emulator._participant_leave(self.name, self.identity)

    # -- the caller's side, for tests ----------------------------------------------------------
    def caller_frame(self, frame: rtc.AudioFrame) -> None:
        """One frame of the SIP caller's track (the caller's phone paces them)."""
        for participant in self.state.participants.values():
            if participant.info.kind == models.ParticipantInfo.SIP and participant.audio is not None:
                participant.audio.put_nowait(frame)

    async def caller_say(self, pcm: np.ndarray[Any, Any], *, sample_rate: int = 48000, frame_ms: int = 10,
                         real_time: bool = True) -> None:  # fmt: skip
        """Send ``pcm`` as the SIP caller's track, in ``frame_ms`` ``AudioFrame``s (paced like a live call)."""
        await self._joined.wait()
        step = sample_rate * frame_ms // 1000
        queue = next(
            p.audio for p in self.state.participants.values() if p.info.kind == models.ParticipantInfo.SIP and p.audio
        )
        started = time.monotonic()
        for index, at in enumerate(range(0, len(pcm) - step + 1, step)):
            chunk = np.ascontiguousarray(pcm[at : at + step], dtype=np.int16)
            queue.put_nowait(rtc.AudioFrame(chunk.tobytes(), sample_rate, 1, step))
            if real_time:
                delay = started + (index + 1) * frame_ms / 1000 - time.monotonic()
                await asyncio.sleep(max(0.0, delay))
            else:
                await asyncio.sleep(0)


class EmulatedRoomConnector:
    """Joins emulator rooms with the token a job assignment carries, checked as the SFU checks it."""

    def __init__(self, emulator: LiveKitEmulator) -> None:
        self.emulator = emulator
        self.rooms: dict[str, EmulatedRoom] = {}
        self.joined = asyncio.Queue[EmulatedRoom]()

    async def connect(self, url: str, token: str) -> AgentRoom:
        claims = TokenVerifier(self.emulator.api_key, self.emulator.api_secret).verify(token)
        if claims.video is None or not claims.video.room_join:
            raise PermissionError("token does not grant roomJoin")
        state = self.emulator.rooms.get(claims.video.room)
        if state is None:
            raise LookupError(f"room {claims.video.room} does not exist")
        info = models.ParticipantInfo(
            sid=f"PA_{secrets.token_hex(6)}",
            identity=claims.identity,
            state=models.ParticipantInfo.ACTIVE,
            kind=models.ParticipantInfo.AGENT,
        )
        with self.emulator._lock:
            state.participants[claims.identity] = EmulatedParticipant(info=info)
        joined = EmulatedRoom(self.emulator, state, claims.identity)
        self.rooms[joined.name] = joined
        self.joined.put_nowait(joined)
        return joined
