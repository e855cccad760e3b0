"""How payloads and headers go on the wire: pydantic models as UTF-8 JSON, header values that
NATS accepts, and the message id JetStream deduplicates on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel

__all__ = ["MSG_ID_HEADER", "Payload", "default_msg_id", "encode", "header_value", "publish_headers"]

MSG_ID_HEADER: Final = "Nats-Msg-Id"

Payload = BaseModel | bytes | bytearray | memoryview

_MAX_HEADER_VALUE: Final = 1024


def encode(payload: Payload) -> bytes:
    """A model as its JSON (``model_dump_json``, UTF-8); raw bytes unchanged."""
    if isinstance(payload, BaseModel):
        return payload.model_dump_json().encode()
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    raise TypeError(f"cannot publish a {type(payload).__name__}: pass a pydantic model or bytes")


def default_msg_id(payload: Payload) -> str | None:
    """The model's ``message_id`` (every Taskloom wire model has one), else ``None``."""
    value = getattr(payload, "message_id", None) if isinstance(payload, BaseModel) else None
    return None if value is None else str(value)


def header_value(text: object, limit: int = _MAX_HEADER_VALUE) -> str:
    """``text`` made a legal header value: one line (CR/LF would end the header block and
    corrupt the message), no other control characters, at most ``limit`` characters."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(text)).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def publish_headers(
    payload: Payload, msg_id: str | None, headers: Mapping[str, str] | None
) -> dict[str, str] | None:
    """The headers of a JetStream publish: the caller's, plus ``Nats-Msg-Id`` when there is an id
    (an explicit ``msg_id`` wins over one in ``headers``, which wins over the model's own)."""
    out = dict(headers or {})
    chosen = msg_id or out.get(MSG_ID_HEADER) or default_msg_id(payload)
    if chosen:
        out[MSG_ID_HEADER] = header_value(chosen)
    return out or None
