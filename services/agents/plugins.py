"""Which agents this installation can run: the eight built-in specialists plus third-party
agents registered through the ``taskloom.agents`` entry-point group."""

from __future__ import annotations

import importlib
import importlib.metadata as md
from collections.abc import Callable
from typing import Any

from taskloom.agents.sdk import Agent
from taskloom.observability import get_logger

__all__ = ["ENTRY_POINT_GROUP", "UnknownAgent", "available_agents", "build_agents"]

ENTRY_POINT_GROUP = "taskloom.agents"
log = get_logger(__name__)

AgentFactory = Callable[[Any], Agent]


class UnknownAgent(ValueError):
    """An agent id that is neither built in nor registered by a plugin."""


def _plugin_factories() -> dict[str, AgentFactory]:
    found: dict[str, AgentFactory] = {}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
        except Exception as exc:  # a broken plugin must not stop the built-in agents
            log.warning("cannot load agent plugin", entry_point=ep.value, error=str(exc))
            continue
        agent_id = getattr(target, "agent_id", None) or ep.name
        if isinstance(target, type) and issubclass(target, Agent):
            found[str(agent_id)] = target
        elif callable(target):
            found[str(agent_id)] = target
        else:
            log.warning("agent plugin is neither an Agent class nor a factory", entry_point=ep.value)
    return found


def available_agents() -> dict[str, AgentFactory]:
    """Agent id → class or factory; a plugin cannot replace a built-in specialist."""
    from taskloom.agents.specialists import BUILTIN_AGENT_CLASSES

    return {**_plugin_factories(), **BUILTIN_AGENT_CLASSES}


def _import_spec(spec: str) -> AgentFactory:
    """``package.module:AgentClass`` → that class (for agents not installed as plugins)."""
    module_name, _, attr = spec.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownAgent(f"cannot import agent {spec!r}: {exc}") from None
    if not callable(target):
        raise UnknownAgent(f"{spec!r} is not an Agent class or factory")
    return target  # type: ignore[no-any-return]


def build_agents(agent_ids: list[str], settings: Any) -> list[Agent]:
    known = available_agents()
    if agent_ids in (["all"], ["*"]):
        from taskloom.agents.specialists import BUILTIN_AGENT_CLASSES

        agent_ids = list(BUILTIN_AGENT_CLASSES)
    for agent_id in agent_ids:
        if ":" in agent_id and agent_id not in known:
            known[agent_id] = _import_spec(agent_id)
    missing = [a for a in agent_ids if a not in known]
    if missing:
        raise UnknownAgent(f"unknown agent(s) {missing}; available: {sorted(known)}")
    agents: list[Agent] = []
    for agent_id in dict.fromkeys(agent_ids):
        agent = known[agent_id](settings)
        if not isinstance(agent, Agent):
            raise UnknownAgent(f"plugin {agent_id!r} did not build an Agent")
        agents.append(agent)
    return agents
