"""The ``make run`` demo: ``taskloom dev --demo`` starts every service, submits the example request
for the sample project, follows it, writes a Markdown report and exits; the workflow completes and
the report names the sample project's planted flaws."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import needs_full_stack

from taskloom.cli.devstack import free_port
from taskloom.infra import StackInfo

pytestmark = [needs_full_stack, pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).parents[2]
UNDOCUMENTED = ("restock", "reserve", "bulk_price")


@dataclass
class Demo:
    returncode: int
    stdout: str
    stderr: str
    report: Path | None


def run_demo(stack: StackInfo, folder: Path, request: str | None = None) -> Demo:
    """``python -m taskloom.cli dev --demo`` on the session's servers, in a namespace, data
    folder and gateway port of its own, not attached to a terminal."""
    env = {
        **os.environ,
        "TASKLOOM_NATS_URL": stack.nats_url,
        "TASKLOOM_DATABASE_URL": stack.database_url,
        "TASKLOOM_NAMESPACE": f"d{uuid.uuid4().hex[:10]}",
        "TASKLOOM_DATA_DIR": str(folder / "data"),
        "COLUMNS": "400",
    }
    args = [sys.executable, "-m", "taskloom.cli", "dev", "--demo", "--port", str(free_port())]
    args += ["--reports", str(folder / "reports")]
    if request is not None:
        args += ["--request", request]
    proc = subprocess.Popen(  # noqa: S603 - the project's own CLI
        args,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        # Ctrl-C lets the CLI stop the services it started (they run in sessions of their own)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
        pytest.fail(f"the demo did not finish in time\n{out[-3000:]}\n{err[-3000:]}")
    found = re.search(r"report: (\S+\.md)", out)
    return Demo(proc.returncode, out, err, Path(found.group(1)) if found else None)


@pytest.fixture(scope="module")
def system_analysis(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return run_demo(stack, tmp_path_factory.mktemp("demo-system-analysis"))


def check_completed(demo: Demo) -> str:
    """The run succeeded, printed where its report is and the report says the workflow completed."""
    assert demo.returncode == 0, f"{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}"
    assert demo.report is not None, f"no report path printed:\n{demo.stdout[-2000:]}"
    assert "workflow completed; report:" in demo.stdout
    assert demo.report.is_file()
    text = demo.report.read_text()
    workflow_id = demo.report.stem
    assert f"submitted workflow {workflow_id}" in demo.stdout
    assert f"workflow `{workflow_id}`" in text
    assert "- **Outcome:** completed" in text
    return text


def test_demo_completes_and_reports_the_undocumented_functions(system_analysis: Demo) -> None:
    text = check_completed(system_analysis)
    assert "- **Request type:** system_analysis" in text
    for name in UNDOCUMENTED:
        assert re.search(rf"undocumented function '[\w.]*\b{name}'", text), name
    # live progress (non-interactive: one line per frame) ended with the completion frame
    assert re.search(r"completion\s+#\d+ completed", system_analysis.stdout)


def test_demo_report_names_every_planted_flaw(system_analysis: Demo) -> None:
    text = check_completed(system_analysis)
    assert "test_discount_applies_to_total" in text
    assert re.search(r"cycle.*shopcart\.(cart|pricing).*shopcart\.(pricing|cart)", text)
    assert re.search(r"httpx.*unpinned|unpinned.*httpx", text)


def test_feature_development_demo_completes_and_names_flaws(stack: StackInfo, tmp_path: Path) -> None:
    demo = run_demo(stack, tmp_path, "examples/requests/feature-development.yaml")
    text = check_completed(demo)
    assert "- **Request type:** feature_development" in text
    assert re.search(r"failing test '[\w.:]*test_discount_applies_to_total'", text)
    assert re.search(r"import cycle: shopcart\.(cart|pricing) -> shopcart\.(pricing|cart)", text)
