"""Base classes of every wire model: frozen, strict about unknown fields, versioned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JsonDict", "OpenModel", "Versioned", "WireModel", "new_id", "utcnow"]

JsonDict = dict[str, Any]


def new_id() -> str:
    """A fresh UUID4 as text: the id type of workflows, tasks, messages and events."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    """A model that crosses a process boundary: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, use_enum_values=False)


class OpenModel(BaseModel):
    """A free-form bag the seed calls an "object": known fields typed, extra keys kept."""

    model_config = ConfigDict(frozen=True, extra="allow")


class Versioned(WireModel):
    schema_version: int = Field(default=1, ge=1, description="Version of this message's schema")
