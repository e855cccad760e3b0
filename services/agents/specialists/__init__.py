"""The eight built-in specialist agents, each doing real work on a project directory."""

from __future__ import annotations

from taskloom.agents.sdk import Agent
from taskloom.agents.specialists.architect import AgentDesignArchitect
from taskloom.agents.specialists.core_services import CoreServicesAgent
from taskloom.agents.specialists.docs_integration import DocsIntegrationAgent
from taskloom.agents.specialists.mcp_protocol import McpProtocolAgent
from taskloom.agents.specialists.product_manager import ProductManagerAgent
from taskloom.agents.specialists.production_ops import ProductionOpsAgent
from taskloom.agents.specialists.technical_writer import TechnicalWriterAgent
from taskloom.agents.specialists.testing import TestingSpecialistAgent

__all__ = ["BUILTIN_AGENT_CLASSES"]

BUILTIN_AGENT_CLASSES: dict[str, type[Agent]] = {
    cls.agent_id: cls
    for cls in (
        CoreServicesAgent,
        McpProtocolAgent,
        DocsIntegrationAgent,
        TestingSpecialistAgent,
        ProductManagerAgent,
        ProductionOpsAgent,
        TechnicalWriterAgent,
        AgentDesignArchitect,
    )
}
