"""``ContextClient``: how agents and the orchestrator talk to the context service over NATS."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel

from taskloom.context.encoding import (
    ACCEPT_ENCODING,
    CONTENT_ENCODING,
    GZIP,
    UnknownReplyEncoding,
    decode_reply,
)
from taskloom.contracts.context import (
    AuditDecision,
    AuditPage,
    AuditQuery,
    Classification,
    ContextError,
    ContextErrorCode,
    ContextGetRequest,
    ContextPutReply,
    ContextPutRequest,
    ContextScope,
    ContextView,
    ContributeReply,
    ContributeRequest,
    ReloadPolicyReply,
    ReloadPolicyRequest,
    parse_context_reply,
)
from taskloom.contracts.subjects import Subjects

__all__ = ["ContextClient", "ContextRequestError", "ContextUnavailable"]

R = TypeVar("R", bound=BaseModel)


class ContextRequestError(Exception):
    """The service answered with an error reply."""

    def __init__(self, code: ContextErrorCode, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class ContextUnavailable(ContextRequestError):
    """No context service answered in time."""


class ContextClient:
    """Requests to the context service. "No responders" is retried for up to ``no_responder_wait``
    seconds: replicas restart, and the server can briefly answer 503 for a subscription it has
    only just registered.

    With ``compress`` (the default) every request offers ``Accept-Encoding: gzip``, so a large
    reply (a view of hundreds of keys) crosses NATS compressed; replies are inflated here, and
    every method returns plain JSON models or bytes either way."""

    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        timeout: float = 5.0,
        no_responder_wait: float = 2.0,
        compress: bool = True,
    ) -> None:
        self._nc = nc
        self._subjects = subjects
        self._timeout = timeout
        self._no_responder_wait = no_responder_wait
        self._headers = {ACCEPT_ENCODING: GZIP} if compress else None

    async def get(
        self,
        agent_id: str,
        workflow_id: str | None = None,
        task_id: str | None = None,
        requirements: Sequence[str] = (),
        project_id: str | None = None,
        use_cache: bool = True,
    ) -> ContextView:
        req = ContextGetRequest(
            agent_id=agent_id,
            workflow_id=workflow_id,
            task_id=task_id,
            project_id=project_id,
            requirements=list(requirements),
            use_cache=use_cache,
        )
        return await self.request("get", req, ContextView)

    async def put(
        self,
        agent_id: str,
        scope: ContextScope | str,
        key: str,
        value: Any,
        *,
        classification: Classification | str = Classification.INTERNAL,
        sensitive: bool = False,
        workflow_id: str | None = None,
        task_id: str | None = None,
        project_id: str | None = None,
        scope_id: str | None = None,
        expected_version: int | None = None,
    ) -> ContextPutReply:
        req = ContextPutRequest(
            agent_id=agent_id,
            scope=ContextScope(scope),
            key=key,
            value=value,
            classification=Classification(classification),
            sensitive=sensitive,
            workflow_id=workflow_id,
            task_id=task_id,
            project_id=project_id,
            scope_id=scope_id,
            expected_version=expected_version,
        )
        return await self.request("put", req, ContextPutReply)

    async def contribute(self, contribution: ContributeRequest) -> ContributeReply:
        return await self.request("contribute", contribution, ContributeReply)

    async def audit(
        self,
        workflow_id: str | None = None,
        agent_id: str | None = None,
        decision: AuditDecision | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> AuditPage:
        query = AuditQuery(
            workflow_id=workflow_id, agent_id=agent_id, decision=decision, after_id=after_id, limit=limit
        )
        return await self.request("audit", query, AuditPage)

    async def reload(self) -> ReloadPolicyReply:
        return await self.request("reload", ReloadPolicyRequest(), ReloadPolicyReply)

    async def request(self, op: str, body: BaseModel | bytes, expect: type[R]) -> R:
        """Send one request; return the reply as ``expect`` or raise ``ContextRequestError``."""
        data = body if isinstance(body, bytes) else body.model_dump_json().encode()
        reply = parse_context_reply(await self.request_raw(op, data))
        if isinstance(reply, ContextError):
            raise ContextRequestError(reply.code, reply.message, reply.details)
        if not isinstance(reply, expect):
            raise ContextRequestError(
                ContextErrorCode.INTERNAL,
                f"expected a {expect.__name__} reply to {op}, got {type(reply).__name__}",
            )
        return reply

    async def request_raw(self, op: str, data: bytes) -> bytes:
        """Send request bytes as they are; return the reply's JSON bytes (an error reply
        included), inflated if it came compressed."""
        subject = self._subjects.context(op)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._no_responder_wait
        pause = 0.01
        while True:
            try:
                msg = await self._nc.request(subject, data, timeout=self._timeout, headers=self._headers)
                encoding = msg.headers.get(CONTENT_ENCODING) if msg.headers else None
                return decode_reply(msg.data, encoding)
            except NoRespondersError:
                if loop.time() + pause > give_up:
                    raise ContextUnavailable(
                        ContextErrorCode.INTERNAL, "no context service is running"
                    ) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.2)
            except NatsTimeoutError:
                raise ContextUnavailable(
                    ContextErrorCode.INTERNAL, f"the context service did not answer {op} in {self._timeout}s"
                ) from None
            except UnknownReplyEncoding as exc:
                raise ContextRequestError(ContextErrorCode.INTERNAL, f"{op}: {exc}") from None
