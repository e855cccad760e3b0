"""The project's import graph (cycles, layering violations), a review of a task graph
(critical path, bottlenecks), change-impact ranking and static code review."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
from pydantic import BaseModel

from taskloom.agents.domain.pysource import SourceFile, is_public

__all__ = [
    "CodeReviewFinding",
    "ImportGraphReport",
    "ImpactRanking",
    "TaskGraphReview",
    "code_review",
    "impact_analysis",
    "import_graph",
    "import_graph_report",
    "review_task_graph",
    "tokens",
]

DEFAULT_LAYERS: tuple[tuple[str, ...], ...] = (
    ("web", "api", "cli", "entrypoints", "routes", "views", "__main__"),
    ("service", "services", "service_layer", "handlers", "app", "application"),
    ("adapters", "infrastructure", "repository", "db", "storage"),
    ("domain", "model", "models", "core"),
)


def _resolve_from(source: SourceFile, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.module.split(".")
    if not source.relpath.endswith("__init__.py"):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, node.module] if node.module else base)


def import_graph(sources: Sequence[SourceFile]) -> nx.DiGraph:
    """Directed graph module → module it imports, restricted to the project's own modules."""
    own = {s.module for s in sources if not s.is_test and s.module}
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(own)
    for source in sources:
        if source.is_test or source.tree is None or source.module not in own:
            continue
        for node in ast.walk(source.tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_from(source, node)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                # "from pkg import mod" names a module; "from mod import func" names its module
                while target and target not in own:
                    target = target.rpartition(".")[0]
                if target and target != source.module and not source.module.startswith(target + "."):
                    graph.add_edge(source.module, target)
    return graph


def _layer_of(module: str, layers: Sequence[Sequence[str]]) -> int | None:
    parts = module.split(".")
    for index, names in enumerate(layers):
        if any(p in names for p in parts):
            return index
    return None


class LayerViolation(BaseModel):
    importer: str
    imported: str
    reason: str


class ImportGraphReport(BaseModel):
    modules: list[str]
    edges: list[tuple[str, str]]
    cycles: list[list[str]]
    modules_in_cycles: list[str]
    layer_violations: list[LayerViolation]
    most_depended_on: list[tuple[str, int]]


def import_graph_report(
    sources: Sequence[SourceFile], layers: Sequence[Sequence[str]] = DEFAULT_LAYERS
) -> ImportGraphReport:
    """Cycles (each rotated to start at its smallest module) and imports from a lower layer to a
    higher one (``layers`` lists module-name parts from the top layer down)."""
    graph = import_graph(sources)
    cycles: list[list[str]] = []
    for cycle in nx.simple_cycles(graph):
        start = cycle.index(min(cycle))
        cycles.append(cycle[start:] + cycle[:start])
    cycles.sort(key=lambda c: (len(c), c))
    violations: list[LayerViolation] = []
    for a, b in sorted(graph.edges):
        la, lb = _layer_of(a, layers), _layer_of(b, layers)
        if la is not None and lb is not None and la > lb:
            violations.append(
                LayerViolation(
                    importer=a,
                    imported=b,
                    reason=f"layer {la} ({layers[la][0]}) imports layer {lb} ({layers[lb][0]})",
                )
            )
    fan_in = sorted(((str(n), int(d)) for n, d in graph.in_degree()), key=lambda x: (-x[1], x[0]))
    return ImportGraphReport(
        modules=sorted(graph.nodes),
        edges=sorted(graph.edges),
        cycles=cycles,
        modules_in_cycles=sorted({m for c in cycles for m in c}),
        layer_violations=violations,
        most_depended_on=[x for x in fan_in if x[1] > 0][:5],
    )


class TaskGraphReview(BaseModel):
    task_count: int
    critical_path: list[str]
    critical_path_minutes: float
    max_parallelism: int
    bottlenecks: list[dict[str, Any]]
    issues: list[str]


def review_task_graph(graph_doc: Mapping[str, Any]) -> TaskGraphReview:
    """Critical path by estimated duration, widest level, and tasks many others wait on.

    ``graph_doc`` is a TaskGraph as JSON (``tasks`` with ``task_id``, ``dependencies``,
    ``estimated_duration``) or a plain ``{"tasks": [...]}``.
    """
    tasks = list(graph_doc.get("tasks", []))
    g: nx.DiGraph = nx.DiGraph()
    issues: list[str] = []
    for t in tasks:
        g.add_node(
            t["task_id"], minutes=float(t.get("estimated_duration", 0) or 0), agent=t.get("assigned_agent")
        )
    for t in tasks:
        for dep in t.get("dependencies", []):
            if dep not in g:
                issues.append(f"{t['task_id']} depends on unknown task {dep}")
                continue
            g.add_edge(dep, t["task_id"])
    if not nx.is_directed_acyclic_graph(g):
        cycle = [a for a, _ in nx.find_cycle(g)]
        return TaskGraphReview(
            task_count=len(tasks),
            critical_path=[],
            critical_path_minutes=0.0,
            max_parallelism=0,
            bottlenecks=[],
            issues=[*issues, "cycle: " + " -> ".join(cycle)],
        )
    best: dict[str, tuple[float, list[str]]] = {}
    for node in nx.topological_sort(g):
        prev = max((best[p] for p in g.predecessors(node)), key=lambda x: x[0], default=(0.0, []))
        best[node] = (prev[0] + g.nodes[node]["minutes"], [*prev[1], node])
    length, path = max(best.values(), key=lambda x: x[0], default=(0.0, []))
    generations = list(nx.topological_generations(g))
    width = max((len(gen) for gen in generations), default=0)
    descendants = {n: len(nx.descendants(g, n)) for n in g}
    bottlenecks = [
        {
            "task_id": n,
            "blocks": descendants[n],
            "minutes": g.nodes[n]["minutes"],
            "on_critical_path": n in path,
        }
        for n in sorted(g, key=lambda n: (-descendants[n], -g.nodes[n]["minutes"], n))
        if descendants[n] >= max(2, len(g) // 3)
    ]
    return TaskGraphReview(
        task_count=len(tasks),
        critical_path=path,
        critical_path_minutes=length,
        max_parallelism=width,
        bottlenecks=bottlenecks[:5],
        issues=issues,
    )


_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])")
_STOP = {
    "the",
    "and",
    "for",
    "with",
    "that",
    "this",
    "from",
    "into",
    "add",
    "use",
    "should",
    "must",
    "can",
    "will",
    "when",
    "each",
    "all",
    "new",
    "get",
    "set",
    "not",
    "are",
    "has",
    "have",
    "our",
    "a",
    "an",
    "to",
    "of",
    "in",
    "on",
    "by",
    "be",
    "is",
    "it",
    "as",
    "or",
    "so",
    "we",
    "i",
    "want",
    "user",
    "users",
}


def tokens(text: str) -> set[str]:
    """Lower-case word stems of identifiers and prose (``apply_discount`` → apply, discount)."""
    words = {w.lower() for w in _WORD.findall(text.replace("_", " "))}
    stems = {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words}
    return {w for w in stems if len(w) > 2 and w not in _STOP}


class ImpactRanking(BaseModel):
    module: str
    file: str
    score: float
    matched: list[str]


def impact_analysis(requirement: str, sources: Sequence[SourceFile], limit: int = 5) -> list[ImpactRanking]:
    """Modules a requirement most likely touches: overlap of its words with each module's
    identifiers, docstrings and name (the name counting double)."""
    wanted = tokens(requirement)
    ranked: list[ImpactRanking] = []
    for s in sources:
        if s.is_test or s.tree is None:
            continue
        idents: set[str] = set()
        for node in ast.walk(s.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                idents |= tokens(node.name) | tokens(ast.get_docstring(node) or "")
            elif isinstance(node, ast.Name):
                idents |= tokens(node.id)
        idents |= tokens(ast.get_docstring(s.tree) or "")
        name_words = tokens(s.module.rpartition(".")[2])
        matched = sorted((idents | name_words) & wanted)
        score = len(matched) + len(name_words & wanted)
        if score:
            ranked.append(ImpactRanking(module=s.module, file=s.relpath, score=float(score), matched=matched))
    ranked.sort(key=lambda r: (-r.score, r.module))
    return ranked[:limit]


class CodeReviewFinding(BaseModel):
    file: str
    line: int
    rule: str
    message: str
    severity: str


def code_review(
    sources: Sequence[SourceFile], max_function_lines: int = 60, max_params: int = 6
) -> list[CodeReviewFinding]:
    """Static review of non-test code: bare excepts, mutable defaults, long functions, many
    parameters, public functions without type annotations, leftover ``print`` calls."""
    out: list[CodeReviewFinding] = []
    for s in sources:
        if s.is_test or s.tree is None:
            continue

        def add(
            node: ast.AST, rule: str, message: str, severity: str = "warning", src: SourceFile = s
        ) -> None:
            out.append(
                CodeReviewFinding(
                    file=src.relpath,
                    line=getattr(node, "lineno", 0),
                    rule=rule,
                    message=message,
                    severity=severity,
                )
            )

        for node in ast.walk(s.tree):
            if isinstance(node, ast.ExceptHandler) and node.type is None:
                add(
                    node,
                    "bare-except",
                    "bare 'except:' also catches KeyboardInterrupt and SystemExit",
                    "error",
                )
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
                if any(isinstance(d, ast.List | ast.Dict | ast.Set) for d in defaults):
                    add(node, "mutable-default", f"{node.name}() has a mutable default argument", "error")
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > max_function_lines:
                    add(node, "long-function", f"{node.name}() is {length} lines long")
                params = [
                    a
                    for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                    if a.arg not in {"self", "cls"}
                ]
                if len(params) > max_params:
                    add(node, "many-parameters", f"{node.name}() takes {len(params)} parameters")
                if is_public(node.name) and (
                    any(a.annotation is None for a in params) or node.returns is None
                ):
                    add(node, "missing-annotations", f"{node.name}() lacks type annotations", "info")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                add(node, "print-call", "print() in library code; use logging", "info")
    return out
