"""A pytest plugin loaded into the child process that runs a project's tests: it records which
lines of the project's non-test files executed (line coverage without coverage.py) and writes
them as JSON to ``TASKLOOM_TRACE_OUT`` when the session ends."""

from __future__ import annotations

import json
import os
import sys
import threading
from types import FrameType
from typing import Any

_ROOT = os.path.realpath(os.environ.get("TASKLOOM_TRACE_ROOT", os.getcwd())) + os.sep
_OUT = os.environ.get("TASKLOOM_TRACE_OUT")
_hits: dict[str, set[int]] = {}
_wanted: dict[str, str | None] = {}


def _relpath(filename: str) -> str | None:
    known = _wanted.get(filename, "")
    if known != "":
        return known
    real = os.path.realpath(filename)
    rel: str | None = None
    if real.startswith(_ROOT):
        rel = real[len(_ROOT) :].replace(os.sep, "/")
        parts = rel.split("/")
        if (
            any(p in {"tests", "test"} for p in parts[:-1])
            or parts[-1].startswith("test_")
            or parts[-1] == "conftest.py"
        ):
            rel = None
    _wanted[filename] = rel
    return rel


def _local(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "line":
        rel = _relpath(frame.f_code.co_filename)
        if rel is not None:
            _hits.setdefault(rel, set()).add(frame.f_lineno)
    return _local


def _global(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "call" and _relpath(frame.f_code.co_filename) is not None:
        return _local
    return None


if _OUT:
    sys.settrace(_global)
    threading.settrace(_global)


def pytest_unconfigure(config: Any) -> None:
    sys.settrace(None)
    if _OUT:
        with open(_OUT, "w", encoding="utf-8") as fh:
            json.dump({k: sorted(v) for k, v in _hits.items()}, fh)
