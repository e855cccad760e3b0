"""docker-compose.yml against the Compose specification's JSON Schema, its NATS configuration run
by a real nats-server, and every command the compose file, the chart and the image run checked to
be a real entry point of the package.

``schemas/compose-spec.json`` is the Compose Specification schema shipped inside the
docker-compose 1.29.2 wheel (``compose/config/compose_spec.json``, Apache-2.0); no Docker engine or
network is available to the suite, so the file is bundled.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import nats
import pytest
import yaml

from taskloom.contracts.subjects import Subjects, inbox_prefix
from taskloom.infra import free_port
from taskloom.natsauth import DEFAULT_AGENT_GROUPS, default_users, server_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"
NATS_CONF = ROOT / "deploy" / "nats" / "nats.conf"
TASKLOOM = Path(sys.executable).with_name("taskloom")
LONG_RUNNING = ("gateway", "constructor", "orchestrator", "context", "agents")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def test_compose_file_validates_against_the_compose_spec() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator(schema).validate(compose())


def test_the_schema_rejects_a_broken_compose_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["agents"]["depends_on"]["nats"]["condition"] = "when_it_feels_like_it"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(schema).validate(broken)


def test_services_have_healthchecks_conditions_and_restart_policies() -> None:
    services = compose()["services"]
    assert set(services) == {"nats", "postgres", "migrate", *LONG_RUNNING}
    for name in LONG_RUNNING:
        svc = services[name]
        assert svc["restart"] == "unless-stopped"
        assert "/health" in " ".join(svc["healthcheck"]["test"])
        deps = svc["depends_on"]
        assert deps["nats"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert svc["read_only"] is True
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    # --scale agents=N needs no fixed name and no host port
    assert "container_name" not in services["agents"] and "ports" not in services["agents"]


def test_nats_keeps_jetstream_on_a_volume_with_fsync_always() -> None:
    nats_svc = compose()["services"]["nats"]
    assert "nats-data:/data" in nats_svc["volumes"]
    assert any(v.startswith("./deploy/nats/nats.conf:") for v in nats_svc["volumes"])
    assert any(p.endswith(":8222") for p in nats_svc["ports"])
    text = NATS_CONF.read_text()
    assert "sync_interval: always" in text and 'store_dir: "/data/jetstream"' in text


def test_checked_in_nats_conf_is_what_the_generator_writes() -> None:
    assert NATS_CONF.read_text() == server_config(default_users("taskloom", DEFAULT_AGENT_GROUPS))


def test_every_service_uses_its_own_nats_user_and_only_its_password() -> None:
    services = compose()["services"]
    users = {u.name: u for u in default_users("taskloom", DEFAULT_AGENT_GROUPS)}
    env_of_nats = services["nats"]["environment"]
    assert set(env_of_nats) == {u.password_env for u in users.values()}
    seen = set()
    for name in (*LONG_RUNNING, "migrate"):
        env = services[name]["environment"]
        user = env["TASKLOOM_NATS_USER"]
        assert user in users
        assert env["TASKLOOM_NATS_PASSWORD"].startswith("${" + users[user].password_env + ":")
        assert not [k for k in env if k.startswith("TASKLOOM_NATS_PASSWORD_")]
        seen.add(user)
    assert seen == set(users)
    agents_cmd = services["agents"]["command"]
    assert agents_cmd[:3] == ["agents", "run", "--agents"]
    assert tuple(agents_cmd[3].split(",")) == DEFAULT_AGENT_GROUPS["builtin"]
    assert "TASKLOOM_DATABASE_URL" not in services["agents"]["environment"]


def test_env_example_sets_every_variable_compose_requires() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text()))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example)


def test_the_compose_nats_conf_runs_on_a_real_server(tmp_path: Path) -> None:
    """The same generated text, on free ports: passwords really come from the environment."""
    users = default_users("taskloom", DEFAULT_AGENT_GROUPS)
    port, monitor = free_port(), free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(server_config(users, store_dir=str(tmp_path / "js"), port=port, monitor_port=monitor))
    env = {**os.environ, **{u.password_env: f"pw-{u.name}" for u in users}}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("nats-server")), "-c", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true", timeout=1
                ):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)

        async def check() -> None:
            nc = await nats.connect(
                f"nats://127.0.0.1:{port}",
                user="gateway",
                password="pw-gateway",
                inbox_prefix=inbox_prefix("gateway"),  # its replies arrive under its own prefix
                max_reconnect_attempts=0,
            )
            try:
                info = await nc.jetstream().account_info()
                assert info.limits is not None
            finally:
                await nc.close()
            with pytest.raises(Exception):  # noqa: B017 - wrong password: authorization violation
                await nats.connect(
                    f"nats://127.0.0.1:{port}",
                    user="gateway",
                    password="pw-admin",
                    max_reconnect_attempts=0,
                    allow_reconnect=False,
                    connect_timeout=2,
                )

        asyncio.run(check())
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_missing_password_variable_stops_the_server(tmp_path: Path) -> None:
    conf = tmp_path / "nats.conf"
    conf.write_text(
        server_config(
            default_users("taskloom", DEFAULT_AGENT_GROUPS),
            store_dir=str(tmp_path),
            port=free_port(),
            monitor_port=free_port(),
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLOOM_NATS_PASSWORD_")}
    run = subprocess.run(
        [str(Path(sys.executable).with_name("nats-server")), "-c", str(conf), "-t"],
        env=env,
        capture_output=True,
        timeout=20,
    )
    assert run.returncode != 0
    assert b"TASKLOOM_NATS_PASSWORD_" in run.stdout + run.stderr


def _commands() -> list[list[str]]:
    """Every argument list the compose file, the chart and the image's CMD run."""
    cmds = [svc["command"] for n, svc in compose()["services"].items() if n not in {"nats", "postgres"}]
    cmds.append(["serve", "gateway"])  # the Dockerfile's CMD
    import helm_python as helm

    with helm.Chart.load(ROOT / "deploy" / "helm" / "taskloom") as chart:
        for path, text in chart.render(name="tl", namespace="t").items():
            if path.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc and doc["kind"] in {"Deployment", "Job"}:
                    args = doc["spec"]["template"]["spec"]["containers"][0]["args"]
                    if doc["metadata"]["name"].endswith(("-nats", "-postgresql")):
                        continue
                    cmds.append(args)
    unique: list[list[str]] = []
    for c in cmds:
        # "--agents a,b" is an option value: the entry point is what comes before it
        head = c[: c.index("--agents")] if "--agents" in c else c
        if head not in unique:
            unique.append(head)
    return unique


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a))
def test_every_command_is_a_real_entry_point(args: list[str]) -> None:
    run = subprocess.run([str(TASKLOOM), *args, "--help"], capture_output=True, timeout=60, text=True)
    assert run.returncode == 0, f"taskloom {' '.join(args)} --help failed:\n{run.stdout}\n{run.stderr}"


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2 and stages[0].startswith("python:3.11-slim AS builder")
    final = stages[1]
    assert final.startswith("python:3.11-slim AS runtime")
    assert "build-essential" not in final and "apt-get install" not in final
    assert re.search(r"^USER 10001", final, flags=re.M)
    assert "HEALTHCHECK" in final and "/health" in final
    assert 'ENTRYPOINT ["taskloom"]' in final and 'CMD ["serve", "gateway"]' in final
    assert "pip wheel" in stages[0] and "--no-index --find-links=/wheels" in final
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "**" and "!libs/" in ignore and "!services/" in ignore


def test_subjects_default_namespace_is_the_deployed_one() -> None:
    assert Subjects().namespace == compose()["x-bus-settings"]["TASKLOOM_NAMESPACE"]
