"""Requirements → user stories with Given/When/Then acceptance criteria, a MoSCoW + value/effort
prioritisation, and a review of which acceptance criteria the test results cover."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from taskloom.agents.domain.architecture import tokens

__all__ = [
    "RequirementAnalysis",
    "UserStory",
    "acceptance_review",
    "analyze_requirements",
    "prioritize",
    "user_stories",
]

_STORY = re.compile(
    r"^\s*as an?\s+(?P<role>.+?),?\s+i want(?: to)?\s+(?P<want>.+?)(?:,?\s+so that\s+(?P<why>.+?))?\.?\s*$",
    re.IGNORECASE,
)
_ROLES = (
    ("admin", "administrator"),
    ("operator", "operator"),
    ("ops", "operator"),
    ("developer", "developer"),
    ("api", "API client"),
    ("customer", "customer"),
    ("shopper", "customer"),
    ("user", "user"),
)
_MUST = ("must", "shall", "required", "security", "secure", "critical", "never", "always")
_SHOULD = ("should", "important", "fast", "performance", "reliable")
_COULD = ("could", "may", "nice", "optionally", "optional")
_VAGUE = (
    "fast",
    "easy",
    "user-friendly",
    "simple",
    "efficient",
    "robust",
    "scalable",
    "etc",
    "appropriate",
    "quickly",
)


class UserStory(BaseModel):
    story_id: str
    requirement: str
    role: str
    goal: str
    benefit: str
    acceptance_criteria: list[str]
    priority: str = "should"
    value: int = 3
    effort: int = 3
    score: float = 1.0


def _role(text: str) -> str:
    low = text.lower()
    return next((role for key, role in _ROLES if re.search(rf"\b{key}s?\b", low)), "user")


def _strip_modal(text: str) -> str:
    text = re.sub(
        r"^(the system|the service|it|we|users?)\s+(must|shall|should|could|can|may|will)\s+(be able to\s+)?",
        "",
        text.strip(),
        flags=re.IGNORECASE,
    )
    return re.sub(r"^(must|shall|should|could|can|may|will)\s+", "", text, flags=re.IGNORECASE).rstrip(".")


def user_stories(requirements: Sequence[str]) -> list[UserStory]:
    """One story per requirement (an "As a … I want … so that …" sentence is kept as is)."""
    stories: list[UserStory] = []
    for i, req in enumerate(r.strip() for r in requirements if r.strip()):
        m = _STORY.match(req)
        if m:
            role, goal, benefit = (
                m.group("role"),
                m.group("want").rstrip("."),
                (m.group("why") or "").rstrip("."),
            )
        else:
            role, goal = _role(req), _strip_modal(req)
            benefit = ""
        goal = goal[0].lower() + goal[1:] if goal else goal
        if not benefit:
            benefit = f"the {role} can rely on it"
        criteria = [
            f"Given a {role} with access to the system, When they {goal}, "
            "Then the outcome is visible and correct",
            f"Given invalid or incomplete input, When the {role} tries to {goal}, "
            "Then a clear error explains what was wrong and nothing changes",
        ]
        numbers = re.findall(r"\d+(?:\.\d+)?\s*(?:ms|s|seconds|%|requests)", req)
        if numbers:
            criteria.append(
                f"Given normal load, When the {role} tries to {goal}, Then it meets {', '.join(numbers)}"
            )
        stories.append(
            UserStory(
                story_id=f"US-{i + 1}",
                requirement=req,
                role=role,
                goal=goal,
                benefit=benefit,
                acceptance_criteria=criteria,
            )
        )
    return stories


def prioritize(stories: Sequence[UserStory]) -> list[UserStory]:
    """MoSCoW from the wording, value from its category, effort from its size; sorted by
    value / effort within MoSCoW class."""
    ranked: list[UserStory] = []
    order = {"must": 0, "should": 1, "could": 2}
    for s in stories:
        low = s.requirement.lower()
        if any(re.search(rf"\b{w}\b", low) for w in _MUST):
            moscow, value = "must", 5
        elif any(re.search(rf"\b{w}\b", low) for w in _COULD):
            moscow, value = "could", 2
        elif any(re.search(rf"\b{w}\b", low) for w in _SHOULD):
            moscow, value = "should", 4
        else:
            moscow, value = "should", 3
        effort = min(5, 1 + len(tokens(s.requirement)) // 4 + low.count(" and "))
        ranked.append(
            s.model_copy(
                update={
                    "priority": moscow,
                    "value": value,
                    "effort": effort,
                    "score": round(value / effort, 2),
                }
            )
        )
    ranked.sort(key=lambda s: (order[s.priority], -s.score, s.story_id))
    return ranked


class RequirementAnalysis(BaseModel):
    requirement: str
    category: str
    ambiguities: list[str]
    testable: bool
    keywords: list[str]


def analyze_requirements(requirements: Sequence[str]) -> list[RequirementAnalysis]:
    """Classify each requirement (functional / performance / security / usability) and flag
    vague words that make it untestable."""
    out: list[RequirementAnalysis] = []
    for req in requirements:
        low = req.lower()
        if re.search(r"\b(secure|auth|encrypt|permission|secret|token)", low):
            cat = "security"
        elif re.search(r"\b(latency|fast|performance|throughput|ms\b|seconds|scale)", low):
            cat = "performance"
        elif re.search(r"\b(ui|usab|accessib|friendly|screen)", low):
            cat = "usability"
        else:
            cat = "functional"
        vague = [w for w in _VAGUE if re.search(rf"\b{re.escape(w)}\b", low)]
        measurable = bool(re.search(r"\d", req))
        testable = not vague or measurable
        out.append(
            RequirementAnalysis(
                requirement=req,
                category=cat,
                ambiguities=[f"'{w}' is not measurable" for w in vague],
                testable=testable,
                keywords=sorted(tokens(req)),
            )
        )
    return out


class CriterionCoverage(BaseModel):
    story_id: str
    criterion: str
    covering_tests: list[str]
    failing_tests: list[str]
    status: str


def acceptance_review(
    stories: Sequence[UserStory], passed: Sequence[str], failed: Sequence[str]
) -> list[CriterionCoverage]:
    """Match each story to tests by shared words: accepted (a passing test), rejected (a failing
    one), or untested."""
    out: list[CriterionCoverage] = []
    for s in stories:
        words = tokens(s.goal)
        ok = [t for t in passed if len(tokens(t.rpartition("::")[2]) & words) >= 1]
        bad = [t for t in failed if len(tokens(t.rpartition("::")[2]) & words) >= 1]
        status = "rejected" if bad else ("accepted" if ok else "untested")
        out.append(
            CriterionCoverage(
                story_id=s.story_id,
                criterion=s.acceptance_criteria[0],
                covering_tests=ok,
                failing_tests=bad,
                status=status,
            )
        )
    return out
