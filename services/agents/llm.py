"""An optional OpenAI-compatible chat endpoint for agents that write prose; without one (or
when it fails) the agents keep their deterministic text."""

from __future__ import annotations

from typing import Any

import httpx

from taskloom.observability import get_logger

__all__ = ["LlmClient"]

log = get_logger(__name__)


class LlmClient:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Any) -> LlmClient | None:
        base = getattr(settings, "llm_base_url", None)
        if not base:
            return None
        key = getattr(settings, "llm_api_key", None)
        return cls(
            base,
            getattr(settings, "llm_model", None) or "gpt-4o-mini",
            key.get_secret_value() if key else None,
        )

    async def complete(self, system: str, prompt: str, max_tokens: int = 800) -> str | None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": 0.2,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
                resp.raise_for_status()
                return str(resp.json()["choices"][0]["message"]["content"]).strip() or None
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            log.warning("llm call failed, using the deterministic text", error=str(exc))
            return None
