"""production-ops: deployment readiness (container, health endpoints, configuration), secret
scanning, HTTP health probes of given URLs, and performance validation against budgets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from pydantic import BaseModel

from taskloom.agents.domain.operations import (
    DeploymentReadiness,
    SecretFinding,
    deployment_readiness,
    scan_secrets,
)
from taskloom.agents.errors import TaskInputError
from taskloom.agents.sdk import AgentContextView, ProgressReporter
from taskloom.agents.specialists.base import Specialist, SpecialistOutput, handles
from taskloom.contracts import AgentId

__all__ = ["ProductionOpsAgent"]


class Readiness(SpecialistOutput):
    readiness: DeploymentReadiness


class SecretScan(SpecialistOutput):
    secrets: list[SecretFinding]


class Probe(BaseModel):
    url: str
    healthy: bool
    status: int | None
    latency_ms: float | None
    error: str | None = None


class HealthProbes(SpecialistOutput):
    probes: list[Probe]


class PerformanceValidation(SpecialistOutput):
    budgets: dict[str, float]
    measured: dict[str, float]
    violations: dict[str, float]


async def _probe(client: httpx.AsyncClient, url: str) -> Probe:
    start = time.perf_counter()
    try:
        resp = await client.get(url)
    except httpx.HTTPError as exc:
        return Probe(
            url=url, healthy=False, status=None, latency_ms=None, error=f"{type(exc).__name__}: {exc}"
        )
    return Probe(
        url=url,
        healthy=resp.status_code < 400,
        status=resp.status_code,
        latency_ms=round((time.perf_counter() - start) * 1000, 2),
    )


class ProductionOpsAgent(Specialist):
    agent_id = AgentId.PRODUCTION_OPS.value

    @handles("deployment_readiness")
    async def deployment_readiness(self, ctx: AgentContextView, progress: ProgressReporter) -> Readiness:
        path = ctx.project_path()
        r = deployment_readiness(path, self.sources(path))
        findings = [f"{c.check} failed: {c.detail}" for c in r.checks if not c.passed]
        findings += [f"web module '{m}' has no health endpoint" for m in r.modules_without_health_endpoint]
        return Readiness(
            summary=f"deployment readiness {r.score}% ({'ready' if r.ready else 'not ready'})",
            findings=findings,
            readiness=r,
        )

    @handles("secret_scan")
    async def secret_scan(self, ctx: AgentContextView, progress: ProgressReporter) -> SecretScan:
        found = scan_secrets(ctx.project_path(), float(ctx.lookup("entropy_threshold") or 4.0))
        return SecretScan(
            summary=f"{len(found)} possible secrets",
            secrets=found,
            findings=[f"possible secret ({s.rule}) in {s.file}:{s.line}: {s.preview}" for s in found],
        )

    @handles("health_probe")
    async def health_probe(self, ctx: AgentContextView, progress: ProgressReporter) -> HealthProbes:
        urls = [str(u) for u in ctx.lookup("urls") or ctx.lookup("health_urls") or []]
        if not urls:
            raise TaskInputError("health_probe needs inputs.parameters.urls")
        async with httpx.AsyncClient(
            timeout=float(ctx.lookup("probe_timeout_seconds") or 5), follow_redirects=True
        ) as client:
            probes = await asyncio.gather(*(_probe(client, u) for u in urls))
        bad = [p for p in probes if not p.healthy]
        return HealthProbes(
            summary=f"{len(probes) - len(bad)} of {len(probes)} endpoints healthy",
            probes=list(probes),
            findings=[f"unhealthy endpoint {p.url}: {p.status or p.error}" for p in bad],
        )

    @handles("performance_validation")
    async def performance_validation(
        self, ctx: AgentContextView, progress: ProgressReporter
    ) -> PerformanceValidation:
        budgets: dict[str, Any] = dict(
            ctx.lookup("budgets") or {"import_ms": 500.0, "max_test_seconds": 2.0, "probe_latency_ms": 500.0}
        )
        measured: dict[str, float] = {}
        import_ms = ctx.upstream_output("import_ms") or ctx.upstream_output("total_ms")
        if import_ms is not None:
            measured["import_ms"] = float(import_ms)
        durations = ctx.upstream_output("durations") or (ctx.upstream_output("results") or {}).get(
            "durations"
        )
        if durations:
            measured["max_test_seconds"] = max(float(v) for v in durations.values())
        probes = ctx.upstream_output("probes")
        if probes:
            lat = [p["latency_ms"] for p in probes if p.get("latency_ms") is not None]
            if lat:
                measured["probe_latency_ms"] = max(lat)
        if not measured:
            raise TaskInputError(
                "performance_validation needs upstream measurements "
                "(import profile, test durations or probes)"
            )
        violations = {k: v for k, v in measured.items() if k in budgets and v > float(budgets[k])}
        return PerformanceValidation(
            summary=f"{len(measured)} measurements, {len(violations)} over budget",
            budgets={k: float(v) for k, v in budgets.items()},
            measured=measured,
            violations=violations,
            findings=[f"{k} = {v:.2f} exceeds budget {float(budgets[k]):.2f}" for k, v in violations.items()],
        )
