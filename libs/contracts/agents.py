"""The live agent registry entry each agent instance heartbeats into the KV bucket."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from taskloom.contracts.base import Versioned, utcnow

__all__ = ["AgentRegistration"]


class AgentRegistration(Versioned):
    agent_id: str = Field(min_length=1)
    instance_id: str = Field(min_length=1)
    capabilities: list[str] = Field(default_factory=list)
    task_types: list[str] = Field(default_factory=list)
    capacity: int = Field(default=1, ge=1, description="Tasks this instance runs at once")
    load: int = Field(default=0, ge=0, description="Tasks running now")
    version: str = "0"
    host: str = ""
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)

    @property
    def free_slots(self) -> int:
        return max(self.capacity - self.load, 0)
