"""Offline request analysis: which of the five request types a request is, and how complex.

The classifier is a TF-IDF nearest-centroid model over a small labelled corpus of requirement
phrasings (data below, easy to extend). It needs no download, is deterministic, and scores a
request in microseconds. The complexity score (1–10) grows with the number of requirements,
constraints and words that signal hard work (migrations, concurrency, security, …).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from taskloom.contracts.enums import RequestType
from taskloom.contracts.requests import ComplexRequest

__all__ = ["Classification", "TRAINING_CORPUS", "classify_request", "classify_texts", "complexity_score"]

TRAINING_CORPUS: dict[RequestType, tuple[str, ...]] = {
    RequestType.FEATURE_DEVELOPMENT: (
        "Add new MCP tool for semantic search",
        "Implement caching for search results",
        "Add configuration options",
        "Add a new endpoint to create orders",
        "Implement user authentication with OAuth",
        "Support exporting reports as CSV",
        "Build a command line interface for the service",
        "Create a plugin system for custom agents",
        "Introduce rate limiting on the public API",
        "Allow users to upload files",
        "Add pagination and filtering to the list endpoint",
        "Integrate a payment provider",
        "Implement a new feature for discounts in the cart",
        "Enable webhooks for status changes",
        "Add support for dark mode in the dashboard",
        "Develop a scheduler for recurring jobs",
    ),
    RequestType.DOCUMENTATION_UPDATE: (
        "Update the README with installation steps",
        "Document the public API",
        "Write docstrings for all public functions",
        "Improve docstring coverage",
        "Fix broken links in the documentation",
        "Add a tutorial for getting started",
        "Update the user guide for the new release",
        "Generate an API reference from the code",
        "Document configuration options in the docs",
        "Review the documentation for outdated sections",
        "Write a how-to guide for deployment",
        "Rewrite the architecture overview page",
        "Add usage examples to the docs",
        "Document every environment variable",
    ),
    RequestType.SYSTEM_ANALYSIS: (
        "Analyze code quality",
        "Check test coverage",
        "Review documentation",
        "Assess performance",
        "Audit the repository structure",
        "Find import cycles and layering violations",
        "Measure import time of the package",
        "Identify untested code",
        "Analyze the dependency tree for outdated packages",
        "Evaluate the architecture for maintainability",
        "Assess technical debt in the codebase",
        "Profile slow tests",
        "Inspect the codebase for security risks",
        "Report on overall code health",
        "Scan the project for hard coded secrets",
    ),
    RequestType.RELEASE_MANAGEMENT: (
        "Prepare release 2.0",
        "Bump the version and publish to PyPI",
        "Write the changelog for the next release",
        "Draft release notes",
        "Check deployment readiness before shipping",
        "Tag the release and build artifacts",
        "Verify schema compatibility with the previous version",
        "Run release checks before publishing",
        "Cut a release candidate",
        "Pin dependency versions for the release",
        "Ship version 1.4 to production",
        "Make sure there are no breaking changes in the API before the release",
        "Publish the package and announce the release",
    ),
    RequestType.BUG_INVESTIGATION: (
        "Investigate why checkout crashes with an empty cart",
        "Fix the bug where totals are wrong",
        "Reproduce the failure in the inventory test",
        "Find the root cause of the timeout error",
        "Debug the exception raised on login",
        "Users report that search returns no results",
        "The service returns 500 errors intermittently",
        "Memory leak in the worker process",
        "Regression: discount no longer applied",
        "Traceback when parsing an invalid schema",
        "Flaky test in the payment module",
        "Diagnose incorrect rounding of prices",
        "Crash on startup after upgrading",
        "Broken behaviour: orders are duplicated",
    ),
}

_TOKEN = re.compile(r"[a-z][a-z0-9]+")
_STOP = frozenset(
    "the a an and or of to for in on with by at as is are be it this that from all our its "
    "into new each every any some".split()
)
# Suffixes stripped longest-first: a tiny stemmer that keeps "analyze"/"analysis" together.
_SUFFIXES = ("izations", "ization", "ations", "ation", "ysis", "yses", "yze", "yzes", "ings", "ing",
             "ies", "ied", "ed", "es", "er", "s", "e", "y")  # fmt: skip


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> list[str]:
    words = [_stem(w) for w in _TOKEN.findall(text.lower()) if w not in _STOP]
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]


@dataclass(frozen=True)
class _Model:
    idf: Mapping[str, float]
    centroids: Mapping[RequestType, Mapping[str, float]]


def _vector(terms: Iterable[str], idf: Mapping[str, float]) -> dict[str, float]:
    counts = Counter(t for t in terms if t in idf)
    vec = {t: (1 + math.log(c)) * idf[t] for t, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
    return {t: v / norm for t, v in vec.items()}


@lru_cache(maxsize=1)
def _model() -> _Model:
    docs = [(label, _terms(text)) for label, texts in TRAINING_CORPUS.items() for text in texts]
    df: Counter[str] = Counter()
    for _, terms in docs:
        df.update(set(terms))
    n = len(docs)
    idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}
    centroids: dict[RequestType, dict[str, float]] = {}
    for label in TRAINING_CORPUS:
        total: dict[str, float] = {}
        for doc_label, terms in docs:
            if doc_label == label:
                for t, v in _vector(terms, idf).items():
                    total[t] = total.get(t, 0.0) + v
        norm = math.sqrt(sum(v * v for v in total.values())) or 1.0
        centroids[label] = {t: v / norm for t, v in total.items()}
    return _Model(idf=idf, centroids=centroids)


@dataclass(frozen=True)
class Classification:
    request_type: RequestType
    confidence: float
    scores: Mapping[str, float]
    source: str  # "given" or "classified"


def classify_texts(texts: Sequence[str]) -> Classification:
    """The most similar request type for requirement texts (ties go to the corpus order)."""
    model = _model()
    vec = _vector([t for text in texts for t in _terms(text)], model.idf)
    scores = {
        label.value: round(sum(v * centroid.get(t, 0.0) for t, v in vec.items()), 4)
        for label, centroid in model.centroids.items()
    }
    best = max(TRAINING_CORPUS, key=lambda label: scores[label.value])
    total = sum(scores.values())
    confidence = scores[best.value] / total if total > 0 else 0.0
    if total == 0:
        # Nothing recognisable: building something new is the most common request.
        best = RequestType.FEATURE_DEVELOPMENT
    return Classification(best, round(confidence, 3), scores, "classified")


def classify_request(request: ComplexRequest) -> Classification:
    if request.request_type is not None:
        return Classification(request.request_type, 1.0, {request.request_type.value: 1.0}, "given")
    reqs = request.requirements
    return classify_texts([*reqs.functional, *reqs.non_functional, *reqs.constraints])


_HARD_WORDS = frozenset(
    "distributed concurrency concurrent migration migrate security encryption authentication "
    "scalability scale realtime streaming consistency transaction transactions backward "
    "compatibility legacy performance latency cache caching protocol refactor multi".split()
)


def complexity_score(request: ComplexRequest) -> int:
    """The request's complexity on 1–10: the given level, or one computed from its requirements."""
    if request.complexity_level is not None:
        return request.complexity_level
    reqs = request.requirements
    words = {w for text in [*reqs.functional, *reqs.non_functional, *reqs.constraints]
             for w in _TOKEN.findall(text.lower())}  # fmt: skip
    raw = (
        1.0
        + 1.0 * len(reqs.functional)
        + 0.6 * len(reqs.non_functional)
        + 0.4 * len(reqs.constraints)
        + 0.5 * len(words & _HARD_WORDS)
    )
    return max(1, min(10, round(raw)))
