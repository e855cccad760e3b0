"""Production readiness: container and health-endpoint checks, configuration hygiene and a
secret scan (known token formats plus high-entropy string literals)."""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from taskloom.agents.domain.pysource import SourceFile

__all__ = [
    "DeploymentReadiness",
    "ReadinessCheck",
    "SecretFinding",
    "deployment_readiness",
    "scan_secrets",
    "shannon_entropy",
    "web_modules_without_health",
]

_WEB_HINTS = ("fastapi", "flask", "starlette", "aiohttp", "django", "sanic", "quart", "bottle")
_HEALTH = re.compile(r"""["'](/(?:health|healthz|ready|readyz|livez|ping|status))["']""")


class ReadinessCheck(BaseModel):
    check: str
    passed: bool
    detail: str


class DeploymentReadiness(BaseModel):
    ready: bool
    score: float
    checks: list[ReadinessCheck]
    web_modules: list[str]
    modules_without_health_endpoint: list[str]


def _is_web_module(source: SourceFile) -> bool:
    if source.tree is None:
        return False
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            if any(n.split(".")[0] in _WEB_HINTS for n in names):
                return True
        elif isinstance(node, ast.AsyncFunctionDef) and [a.arg for a in node.args.args] == [
            "scope",
            "receive",
            "send",
        ]:
            return True  # a bare ASGI application
    return False


def web_modules_without_health(sources: Sequence[SourceFile]) -> tuple[list[str], list[str]]:
    """(web application modules, those of them serving no health/readiness route)."""
    web = [s for s in sources if not s.is_test and _is_web_module(s)]
    return [s.module for s in web], [s.module for s in web if not _HEALTH.search(s.text)]


def deployment_readiness(root: Path, sources: Sequence[SourceFile]) -> DeploymentReadiness:
    checks: list[ReadinessCheck] = []
    dockerfile = next((p for p in (root / "Dockerfile", root / "Containerfile") if p.is_file()), None)
    checks.append(
        ReadinessCheck(
            check="container_image",
            passed=dockerfile is not None,
            detail=dockerfile.name if dockerfile else "no Dockerfile or Containerfile",
        )
    )
    if dockerfile is not None:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
        froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE | re.IGNORECASE)
        floating = [f for f in froms if ":" not in f.split("/")[-1] or f.endswith(":latest")]
        checks.append(
            ReadinessCheck(
                check="pinned_base_image",
                passed=not floating,
                detail="floating: " + ", ".join(floating) if floating else "pinned",
            )
        )
        user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE | re.IGNORECASE)
        checks.append(
            ReadinessCheck(
                check="non_root_user",
                passed=bool(user) and user[-1] not in {"root", "0"},
                detail=f"USER {user[-1]}" if user else "runs as root (no USER)",
            )
        )
        checks.append(
            ReadinessCheck(
                check="container_healthcheck",
                passed=bool(re.search(r"^HEALTHCHECK", text, re.MULTILINE | re.IGNORECASE)),
                detail="HEALTHCHECK instruction",
            )
        )
    web, without = web_modules_without_health(sources)
    checks.append(
        ReadinessCheck(
            check="health_endpoint",
            passed=not without,
            detail="missing in " + ", ".join(without)
            if without
            else (f"served by {', '.join(web)}" if web else "no web application"),
        )
    )
    env_example = any((root / n).is_file() for n in (".env.example", ".env.sample", "config.example.yaml"))
    reads_env = any(
        "os.environ" in s.text or "getenv" in s.text or "BaseSettings" in s.text
        for s in sources
        if not s.is_test
    )
    checks.append(
        ReadinessCheck(
            check="config_from_environment",
            passed=reads_env or env_example,
            detail="reads environment"
            if reads_env
            else ("documented .env example" if env_example else "configuration is hard-coded"),
        )
    )
    debug = [s.relpath for s in sources if not s.is_test and re.search(r"\bdebug\s*=\s*True", s.text)]
    checks.append(
        ReadinessCheck(check="no_debug_mode", passed=not debug, detail=", ".join(debug) or "no debug=True")
    )
    passed = sum(c.passed for c in checks)
    return DeploymentReadiness(
        ready=passed == len(checks),
        score=round(100.0 * passed / len(checks), 1),
        checks=checks,
        web_modules=web,
        modules_without_health_endpoint=without,
    )


class SecretFinding(BaseModel):
    file: str
    line: int
    rule: str
    preview: str
    entropy: float


_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws_access_key_id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private_key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----")),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    (
        "credential_assignment",
        re.compile(
            r"""(?i)\b[\w]*(?:api[_-]?key|secret|token|passw(?:or)?d|credential)[\w]*\s*[:=]\s*["']([^"'\s]{12,})["']"""
        ),
    ),
)
_LITERAL = re.compile(r"""["']([A-Za-z0-9+/_\-=]{24,})["']""")
_TEXT_SUFFIXES = {".py", ".txt", ".cfg", ".ini", ".toml", ".yaml", ".yml", ".json", ".env", ".sh", ".md", ""}


def shannon_entropy(value: str) -> float:
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _mask(value: str) -> str:
    return value[:4] + "…" + f"({len(value)} chars)" if len(value) > 6 else "…"


def scan_secrets(root: Path, entropy_threshold: float = 4.0) -> list[SecretFinding]:
    """Secrets in text files under ``root``; values are masked in the findings."""
    found: list[SecretFinding] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(
            p.startswith(".") and p not in {".env"} or p in {"node_modules", "__pycache__"}
            for p in rel.parts[:-1]
        ):
            continue
        if path.suffix not in _TEXT_SUFFIXES and path.name not in {"Dockerfile", ".env"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            hit_rules: set[str] = set()
            for rule, pattern in _RULES:
                m = pattern.search(line)
                if m:
                    value = m.group(m.lastindex or 0)
                    if rule == "credential_assignment" and shannon_entropy(value) < 3.0:
                        continue  # "password = 'changeme-please'" style placeholders
                    hit_rules.add(rule)
                    found.append(
                        SecretFinding(
                            file=rel.as_posix(),
                            line=lineno,
                            rule=rule,
                            preview=_mask(value),
                            entropy=round(shannon_entropy(value), 2),
                        )
                    )
            if hit_rules:
                continue
            for m in _LITERAL.finditer(line):
                value = m.group(1)
                if (
                    shannon_entropy(value) >= entropy_threshold
                    and re.search(r"\d", value)
                    and re.search(r"[A-Za-z]", value)
                ):
                    found.append(
                        SecretFinding(
                            file=rel.as_posix(),
                            line=lineno,
                            rule="high_entropy_string",
                            preview=_mask(value),
                            entropy=round(shannon_entropy(value), 2),
                        )
                    )
    return found
