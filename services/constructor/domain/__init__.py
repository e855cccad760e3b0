"""The constructor's pure core: request analysis, decomposition templates, dependency analysis,
agent assignment scoring, context generation and validation (no I/O)."""

from taskloom.constructor.domain.assignment import (
    WEIGHTS,
    AgentCandidate,
    AgentPool,
    Assignment,
    PerformanceStats,
    ScoreBreakdown,
    TaskNeeds,
    assign,
    assign_all,
    pool_from_catalog,
    pool_from_registrations,
)
from taskloom.constructor.domain.classify import (
    Classification,
    classify_request,
    classify_texts,
    complexity_score,
)
from taskloom.constructor.domain.construct import Construction, Defaults, construct, graph_id_for
from taskloom.constructor.domain.dependencies import GraphAnalysis, analyse, critical_path
from taskloom.constructor.domain.templates import (
    DecompositionTemplate,
    GateTemplate,
    Route,
    TaskTemplate,
    TemplateRegistry,
    builtin_templates,
    load_template,
)
from taskloom.constructor.domain.thresholds import parse_threshold

__all__ = [
    "WEIGHTS",
    "AgentCandidate",
    "AgentPool",
    "Assignment",
    "Classification",
    "Construction",
    "DecompositionTemplate",
    "Defaults",
    "GateTemplate",
    "GraphAnalysis",
    "PerformanceStats",
    "Route",
    "ScoreBreakdown",
    "TaskNeeds",
    "TaskTemplate",
    "TemplateRegistry",
    "analyse",
    "assign",
    "assign_all",
    "builtin_templates",
    "classify_request",
    "classify_texts",
    "complexity_score",
    "construct",
    "critical_path",
    "graph_id_for",
    "load_template",
    "parse_threshold",
    "pool_from_catalog",
    "pool_from_registrations",
]
