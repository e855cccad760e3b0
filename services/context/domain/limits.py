"""Size limits of values and views: over the limit is an error, never a silent truncation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from taskloom.context.domain.errors import ContextTooLarge

__all__ = ["Limits", "dump_json", "json_size"]

MIB = 1024 * 1024


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_size(value: Any) -> int:
    return len(dump_json(value))


@dataclass(frozen=True, slots=True)
class Limits:
    max_value_bytes: int = MIB
    max_context_bytes: int = 512 * MIB

    @classmethod
    def from_mb(cls, max_context_memory_mb: int, max_value_bytes: int = MIB) -> Limits:
        return cls(max_value_bytes=max_value_bytes, max_context_bytes=max_context_memory_mb * MIB)

    def check_value(self, key: str, size: int) -> None:
        if size > self.max_value_bytes:
            raise ContextTooLarge(
                f"value of {key!r} is {size} bytes, over the limit of {self.max_value_bytes} bytes",
                key=key,
                size=size,
                limit=self.max_value_bytes,
            )

    def check_context(self, what: str, size: int) -> None:
        if size > self.max_context_bytes:
            raise ContextTooLarge(
                f"{what} would be {size} bytes, over max_context_memory_mb "
                f"({self.max_context_bytes // MIB} MiB = {self.max_context_bytes} bytes)",
                size=size,
                limit=self.max_context_bytes,
            )
