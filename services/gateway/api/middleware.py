"""Pure ASGI middleware: the request body size limit (413) and request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from taskloom.gateway.metrics import HTTP_LATENCY, HTTP_REQUESTS

__all__ = ["BodySizeLimit", "RequestMetrics"]

Scope = dict[str, Any]


async def _reply_413(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body is larger than the limit of {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _reply_413(send, self.max_bytes)
                    return
        seen = 0
        started = False
        refused = False

        async def counting_receive() -> Any:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # answer now and tell the app the client left: whatever it does next is dropped
                    refused = True
                    if not started:
                        await _reply_413(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


class RequestMetrics:
    def __init__(self, app: Any) -> None:
        self.app = app
        # labelled children, looked up once per (method, route, status) instead of per request
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            counter = self._counters.get((method, path, status))
            if counter is None:
                counter = self._counters[(method, path, status)] = HTTP_REQUESTS.labels(
                    method, path, str(status)
                )
            histogram = self._histograms.get((method, path))
            if histogram is None:
                histogram = self._histograms[(method, path)] = HTTP_LATENCY.labels(method, path)
            counter.inc()
            histogram.observe(time.perf_counter() - start)
