"""``/ws/workflows/{id}``: the seed's status frames, replayed from the event store and then live.

Gap- and duplicate-free switch: the stream joins the workflow's shared feed first (buffering its
frames), then replays the stored history, then takes the feed's frames after the last position it
sent. The feed (``taskloom.gateway.feeds``) is one NATS subscription, projector and serialisation
per workflow for all of this process's clients, and fills in from the store any event that
skips ahead. Authentication happens
at the handshake (token in ``?token=``, an ``Authorization`` header, or the subprotocol pair
``bearer, <token>``); an unknown Origin is refused; the socket closes with 1008 when the token
expires and with 1013 when the client reads too slowly for its bounded buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from taskloom.gateway.api.deps import audit_auth_failure, client_ip
from taskloom.gateway.domain.authz import Operation, Principal
from taskloom.gateway.domain.frames import FrameProjector
from taskloom.gateway.errors import GatewayError
from taskloom.gateway.feeds import FEED_FAILED, Subscriber
from taskloom.gateway.handlers import Caller
from taskloom.gateway.metrics import WS_CLIENTS, WS_DROPPED, WS_FRAMES
from taskloom.gateway.security import AuthError
from taskloom.gateway.state import GatewayState

router = APIRouter()

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Non-browser clients send no Origin; browsers must come from an allowed one."""
    return origin is None or "*" in allowed or origin.rstrip("/") in {a.rstrip("/") for a in allowed}


def _token_from(websocket: WebSocket, query_token: str | None) -> tuple[str | None, str | None]:
    """``(token, subprotocol to answer with)``."""
    protocols = [p.strip() for p in websocket.scope.get("subprotocols", [])]
    if len(protocols) >= 2 and protocols[0].lower() == "bearer":
        return protocols[1], protocols[0]
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), None
    return query_token, None


@router.websocket("/ws/workflows/{workflow_id}")
async def workflow_stream(
    websocket: WebSocket,
    workflow_id: str,
    since: Annotated[int, Query(ge=0)] = 0,
    token: Annotated[str | None, Query()] = None,
) -> None:
    state: GatewayState = websocket.app.state.taskloom
    if not origin_allowed(websocket.headers.get("origin"), state.settings.allowed_origins):
        await audit_auth_failure(state, websocket, f"origin {websocket.headers.get('origin')} not allowed")
        await websocket.close(POLICY_VIOLATION, "origin not allowed")
        return
    raw_token, subprotocol = _token_from(websocket, token)
    try:
        principal = await state.verify(raw_token or "")
    except AuthError as exc:
        await audit_auth_failure(state, websocket, exc.reason)
        await websocket.close(POLICY_VIOLATION, exc.reason)
        return
    caller = Caller(principal, client_ip(websocket), websocket.headers.get("user-agent"))
    try:
        await state.gateway.authorize_workflow(caller, Operation.VIEW_WORKFLOW, workflow_id)
    except GatewayError as exc:
        await websocket.close(POLICY_VIOLATION, exc.message[:120])
        return
    await websocket.accept(subprotocol=subprotocol)
    WS_CLIENTS.inc()
    try:
        await StatusStream(state, websocket, workflow_id, principal, since).run()
    finally:
        WS_CLIENTS.dec()


class StatusStream:
    def __init__(
        self, state: GatewayState, websocket: WebSocket, workflow_id: str, principal: Principal, since: int
    ) -> None:
        self.state = state
        self.ws = websocket
        self.workflow_id = workflow_id
        self.principal = principal
        self.since = since
        self.projector = FrameProjector(workflow_id)
        self.last = 0
        self.subscriber = Subscriber(asyncio.Queue(state.settings.ws_buffer_frames), self._on_overflow)
        self._pump: asyncio.Task[None] | None = None

    def _on_overflow(self) -> None:
        if self._pump is not None:
            self._pump.cancel()

    async def run(self) -> None:
        feed = await self.state.feeds.join(self.workflow_id, self.subscriber)
        self._pump = asyncio.create_task(self._replay_then_live())
        receiver = asyncio.create_task(self._drain_client())
        expiry = asyncio.create_task(asyncio.sleep(max(self.principal.expires_at - time.time(), 0)))
        try:
            done, _ = await asyncio.wait({self._pump, receiver, expiry}, return_when=asyncio.FIRST_COMPLETED)
            if expiry in done:
                WS_DROPPED.labels("token_expired").inc()
                await self._close(POLICY_VIOLATION, "token expired")
            elif self._pump in done:
                if self.subscriber.overflowed or self._pump.cancelled():
                    WS_DROPPED.labels("slow_client").inc()
                    feed.leave(self.subscriber)
                    await self._close(TRY_AGAIN_LATER, "client too slow; reconnect with ?since=")
                elif self._pump.exception() is None:
                    await self._close(1000, "workflow finished")
                else:
                    await self._close(1011, "stream failed; reconnect with ?since=")
        finally:
            for task in (self._pump, receiver, expiry):
                task.cancel()
            feed.leave(self.subscriber)

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, reason), timeout=5)

    async def _drain_client(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await self.ws.receive_text()

    async def _replay_then_live(self) -> None:
        """The stored history with a projector of its own, then the feed's shared frames after
        the last position replayed (the feed joined first, so none is missing)."""
        for event in await self.state.store.read_stream(self.workflow_id, 1):
            status = self.projector.apply(event.version, event.type, event.data, event.recorded_at)
            await self._send(event.version, status.model_dump_json() if event.version > self.since else "")
            if self.projector.finished:
                return
        while True:
            frame = await self.subscriber.queue.get()
            if frame is FEED_FAILED:
                raise RuntimeError("the workflow feed failed")
            if frame.position <= self.last:
                continue
            if frame.position != self.last + 1:
                raise RuntimeError(f"feed frame {frame.position} after {self.last}")
            await self._send(frame.position, frame.text)
            if frame.final:
                return

    async def _send(self, position: int, text: str) -> None:
        self.last = position
        if position > self.since:
            await self.ws.send_text(text)
            WS_FRAMES.inc()
