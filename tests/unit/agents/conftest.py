"""Fixtures for the agents' unit tests: the planted-flaw sample project and a clean one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample-project"


@pytest.fixture(scope="session")
def sample_project() -> Path:
    return SAMPLE


def write_clean_project(root: Path) -> Path:
    """A tiny project with none of the planted flaws: documented, tested, pinned, healthy."""
    files = {
        "pyproject.toml": """
            [project]
            name = "cleanpkg"
            version = "1.0.0"
            dependencies = ["pydantic>=2,<3"]
        """,
        "README.md": """
            # cleanpkg

            Adds numbers and serves them over HTTP. See the [usage](#usage) section.

            ## Installation

            `pip install cleanpkg`

            ## Usage

            ```python
            from cleanpkg.calc import add
            ```

            ## Configuration

            `CLEANPKG_PORT` sets the port.

            ## Testing

            `pytest`

            ## Contributing

            Pull requests welcome.

            ## License

            MIT
        """,
        "Dockerfile": """
            FROM python:3.11.9-slim
            COPY . /app
            USER app
            HEALTHCHECK CMD curl -f http://localhost:8000/health
        """,
        "cleanpkg/__init__.py": '"""cleanpkg: arithmetic served over HTTP."""\n',
        "cleanpkg/calc.py": '''
            """Arithmetic."""


            def add(a: int, b: int) -> int:
                """The sum of ``a`` and ``b``."""
                return a + b
        ''',
        "cleanpkg/web.py": '''
            """The HTTP API."""

            import json
            import os

            from cleanpkg.calc import add

            PORT = int(os.environ.get("CLEANPKG_PORT", "8000"))


            async def app(scope: dict, receive: object, send: object) -> None:
                """Serve ``/health`` and ``/add``."""
                path = scope.get("path", "")
                body = {"status": "ok"} if path == "/health" else {"sum": add(1, 2)}
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": json.dumps(body).encode()})
        ''',
        "tests/test_calc.py": """
            import asyncio

            from cleanpkg.calc import add
            from cleanpkg.web import app


            def test_add():
                assert add(2, 3) == 5


            def test_app_health():
                sent = []

                async def send(message):
                    sent.append(message)

                asyncio.run(app({"path": "/health"}, None, send))
                assert sent[0]["status"] == 200
        """,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def clean_project(tmp_path: Path) -> Path:
    return write_clean_project(tmp_path / "cleanpkg-project")
