"""An async client of the gateway's REST API, used by the CLI and the MCP tools. Errors come
back as ``ApiError`` with the gateway's message, or as ``GatewayUnreachable`` with a hint."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["ApiError", "GatewayClient", "GatewayUnreachable"]


class GatewayUnreachable(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail

    @property
    def hint(self) -> str:
        if self.status == 401:
            return "the token was refused; mint one with `taskloom token --user <you> --role developer`"
        if self.status == 403:
            return "your role does not allow this operation"
        if self.status == 429:
            return "slow down: the per-user rate limit was reached"
        return ""


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def ws_url(self, workflow_id: str, since: int = 0) -> str:
        base = self.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/ws/workflows/{workflow_id}?since={since}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            response = await self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway at {self.base_url} ({type(exc).__name__}); "
                "start it with `taskloom dev` or `taskloom serve gateway`, or set TASKLOOM_GATEWAY_URL"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, str(detail))
        return response.json() if response.content else None

    # --- the API, one method per route ------------------------------------------------------
    async def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: dict[str, Any] = await self.call("POST", "/api/v1/workflows", json=body, headers=headers)
        return result

    async def status(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/api/v1/workflows/{workflow_id}")
        return result

    async def list_workflows(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = await self.call("GET", "/api/v1/workflows", params=params)
        return result

    async def graph(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/api/v1/workflows/{workflow_id}/graph")
        return result

    async def events(self, workflow_id: str, after: int = 0, limit: int = 100) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", f"/api/v1/workflows/{workflow_id}/events", params={"after": after, "limit": limit}
        )
        return result

    async def all_events(self, workflow_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.events(workflow_id, after, 1000)
            events.extend(page["events"])
            if page["next_after"] is None:
                return events
            after = page["next_after"]

    async def state_at(self, workflow_id: str, at: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", f"/api/v1/workflows/{workflow_id}/state", params={"at": at}
        )
        return result

    async def result(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/api/v1/workflows/{workflow_id}/result")
        return result

    async def control(self, workflow_id: str, action: str, reason: str = "") -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", f"/api/v1/workflows/{workflow_id}/{action}", json={"reason": reason}
        )
        return result

    async def collaborate(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("POST", "/api/v1/collaborations", json=body)
        return result

    async def agents(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/api/v1/agents")
        return result
