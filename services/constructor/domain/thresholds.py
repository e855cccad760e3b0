"""Parsing non-functional requirements into measurable ``Threshold``s.

"Response time < 500ms", "95% cache hit rate", "coverage ≥ 90%", "p99 latency under 2 s" and
"at least 80% docstring coverage" all state a metric, a comparison and a number. Times are
normalised to milliseconds; a requirement without a number ("Comprehensive test coverage")
states no threshold and yields ``None``.
"""

from __future__ import annotations

import re

from taskloom.contracts.graph import Threshold

__all__ = ["metric_slug", "parse_threshold"]

# Longest phrases first, so "no more than" wins over "more than".
_WORD_OPS: tuple[tuple[str, str], ...] = (
    ("must not exceed", "<="),
    ("should not exceed", "<="),
    ("does not exceed", "<="),
    ("not exceeding", "<="),
    ("not exceed", "<="),
    ("no more than", "<="),
    ("no less than", ">="),
    ("no lower than", ">="),
    ("no higher than", "<="),
    ("greater than or equal to", ">="),
    ("less than or equal to", "<="),
    ("greater than", ">"),
    ("higher than", ">"),
    ("more than", ">"),
    ("less than", "<"),
    ("lower than", "<"),
    ("fewer than", "<"),
    ("at least", ">="),
    ("at most", "<="),
    ("up to", "<="),
    ("exactly", "=="),
    ("equal to", "=="),
    ("maximum of", "<="),
    ("minimum of", ">="),
    ("maximum", "<="),
    ("minimum", ">="),
    ("max", "<="),
    ("min", ">="),
    ("within", "<="),
    ("under", "<"),
    ("below", "<"),
    ("above", ">"),
    ("over", ">"),
    ("exceeding", ">"),
    ("exceeds", ">"),
)
_SYMBOL_OPS = {"<=": "<=", ">=": ">=", "=<": "<=", "=>": ">=", "<": "<", ">": ">", "==": "==", "=": "=="}

# unit spelling -> (canonical unit, factor to the canonical unit)
_UNITS: dict[str, tuple[str, float]] = {
    "%": ("%", 1.0),
    "percent": ("%", 1.0),
    "ms": ("ms", 1.0),
    "millisecond": ("ms", 1.0),
    "milliseconds": ("ms", 1.0),
    "msec": ("ms", 1.0),
    "s": ("ms", 1000.0),
    "sec": ("ms", 1000.0),
    "secs": ("ms", 1000.0),
    "second": ("ms", 1000.0),
    "seconds": ("ms", 1000.0),
    "min": ("ms", 60000.0),
    "mins": ("ms", 60000.0),
    "minute": ("ms", 60000.0),
    "minutes": ("ms", 60000.0),
    "us": ("ms", 0.001),
    "µs": ("ms", 0.001),
    "kb": ("MB", 1 / 1024),
    "mb": ("MB", 1.0),
    "gb": ("MB", 1024.0),
    "rps": ("req/s", 1.0),
    "req/s": ("req/s", 1.0),
    "requests per second": ("req/s", 1.0),
    "requests/s": ("req/s", 1.0),
    "qps": ("req/s", 1.0),
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
# A number not glued to a word before it ("p99" is a name, not the number 99).
_NUMBER = re.compile(rf"(?<![\w.])(?P<num>\d+(?:[.,]\d+)?)\s*(?P<unit>{_UNIT_RE})?(?![\w])", re.IGNORECASE)
_SYMBOL = re.compile(r"(<=|>=|=<|=>|==|<|>|=)")

# Which way is "good" when the text states no comparison ("95% cache hit rate").
_HIGHER_IS_BETTER = frozenset(
    "coverage rate uptime availability throughput hit hits success score accuracy precision "
    "recall satisfaction pass".split()
)
_LOWER_IS_BETTER = frozenset(
    "time latency duration error errors failure failures memory size cpu usage delay cost "
    "downtime warning warnings violation violations bug bugs defect defects".split()
)
_STOPWORDS = frozenset(
    "the a an of to be is are must should shall will with for than and or in on at by our its "
    "it has have keep kept stay remain reach achieve target ensure needs need per every all "
    "than that not no".split()
)


def metric_slug(text: str) -> str:
    """A metric name from free text: lower case words joined by ``_`` ("p99 latency" → ``p99_latency``)."""
    words = re.findall(r"[a-z][a-z0-9]*", text.lower())
    kept = [w for w in words if w not in _STOPWORDS]
    return "_".join(kept)[:64]


def _normalise(text: str) -> str:
    return (
        text.replace("≥", ">=")
        .replace("≤", "<=")
        .replace("⩾", ">=")
        .replace("⩽", "<=")
        .replace("＜", "<")
        .replace("＞", ">")
    )


def _find_op(text: str) -> tuple[str | None, tuple[int, int] | None]:
    sym = _SYMBOL.search(text)
    if sym:
        return _SYMBOL_OPS[sym.group(1)], sym.span()
    lowered = text.lower()
    for phrase, op in _WORD_OPS:
        m = re.search(rf"\b{re.escape(phrase)}\b", lowered)
        if m:
            return op, m.span()
    return None, None


def _default_op(metric: str) -> str | None:
    # lower-is-better words are checked first: "error rate" is about errors, not a rate to raise
    words = set(metric.split("_"))
    if words & _LOWER_IS_BETTER:
        return "<="
    if words & _HIGHER_IS_BETTER:
        return ">="
    return None


def parse_threshold(text: str) -> Threshold | None:
    """The threshold a requirement states, or ``None`` when it states no measurable one."""
    clean = _normalise(text.strip())
    number = _NUMBER.search(clean)
    if number is None:
        return None
    value = float(number.group("num").replace(",", "."))
    unit_word = (number.group("unit") or "").lower()
    unit, factor = _UNITS.get(unit_word, (None, 1.0))
    op, op_span = _find_op(clean)
    spans = sorted([number.span()] + ([op_span] if op_span else []))
    remainder = clean
    for start, end in reversed(spans):
        remainder = remainder[:start] + " " + remainder[end:]
    for phrase in ("requests per second", "per second", "percent"):
        remainder = re.sub(rf"\b{phrase}\b", " ", remainder, flags=re.IGNORECASE)
    metric = metric_slug(remainder)
    if not metric:
        return None
    if op is None:
        op = _default_op(metric)
        if op is None:
            return None
    return Threshold.model_validate(
        {"metric": metric, "op": op, "value": round(value * factor, 6), "unit": unit, "source": text}
    )
