"""The Helm chart, linted and rendered by Helm's own engine (helm-python-sdk), every manifest
validated against the Kubernetes schemas, and the rendered objects checked for what a real
install needs: references that resolve, non-root pods, probes, the NATS users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from taskloom.contracts.subjects import Subjects
from taskloom.natsauth import authorization_block, users_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "taskloom"
PRODUCTION = CHART / "values-production.yaml"
KUBE_VERSION = kubernetes_validate.latest_version()
SERVICES = ("gateway", "constructor", "orchestrator", "context")


def production_values() -> dict[str, Any]:
    return helm.values_from_yaml(PRODUCTION.read_text())


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out = chart.render(values, name="tl", namespace="taskloom", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


VALUE_SETS = {"default": None, "production": "production"}


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def rendered(
    request: pytest.FixtureRequest, chart: helm.Chart
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = production_values() if request.param == "production" else {}
    return values, render(chart, values)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job"}]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("values_file", [None, PRODUCTION])
def test_lint_finds_no_errors_or_warnings(values_file: Path | None) -> None:
    values = helm.values_from_yaml(values_file.read_text()) if values_file else None
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_validates_against_kubernetes_schemas(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs = rendered
    assert len(docs) > 15
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_a_deployment_per_service_and_agent_group(rendered) -> None:  # type: ignore[no-untyped-def]
    values, docs = rendered
    groups = (values.get("agents") or {}).get("groups") or helm.Chart.load(CHART).values["agents"]["groups"]
    names = {d["metadata"]["name"] for d in by_kind(docs, "Deployment")}
    expected = {f"tl-taskloom-{s}" for s in SERVICES} | {f"tl-taskloom-agents-{g['name']}" for g in groups}
    assert names == expected
    for doc in by_kind(docs, "Deployment"):
        args = pod_spec(doc)["containers"][0]["args"]
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        if component.startswith("agents-"):
            group = next(g for g in groups if f"agents-{g['name']}" == component)
            assert args == ["agents", "run", "--agents", ",".join(group["agents"])]
        else:
            assert args == ["serve", component]


def test_pods_are_hardened_probed_and_spread(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs = rendered
    for doc in by_kind(docs, "Deployment"):
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        c = spec["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert c["resources"]["limits"] and c["resources"]["requests"]
        tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    for doc in workloads(docs):
        for c in pod_spec(doc)["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_each_service_connects_as_its_own_nats_user(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs = rendered
    users = set()
    for doc in by_kind(docs, "Deployment"):
        env = {e["name"]: e for e in pod_spec(doc)["containers"][0]["env"]}
        component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
        user = env["TASKLOOM_NATS_USER"]["value"]
        assert user == component
        assert env["TASKLOOM_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == f"nats-password-{user}"
        users.add(user)
        # agents talk only to NATS: no database credentials, no database egress
        assert ("TASKLOOM_DATABASE_URL" in env) == (not component.startswith("agents-"))
    assert len(users) == len(by_kind(docs, "Deployment"))


def test_helm_writes_the_same_nats_authorization_as_the_generator(rendered) -> None:  # type: ignore[no-untyped-def]
    values, docs = rendered
    chart_values = helm.Chart.load(CHART).merge_values(values)
    groups = {g["name"]: g["agents"] for g in chart_values["agents"]["groups"]}
    auth = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-nats-auth"))
    expected = authorization_block(users_for(Subjects(chart_values["config"]["namespace"]), groups))
    assert auth["data"]["authorization.conf"] == expected


def test_a_non_default_namespace_reaches_the_nats_users(chart: helm.Chart) -> None:
    values = {
        "config": {"namespace": "acme"},
        "agents": {
            "groups": [
                {"name": "x", "agents": ["core-services", "my_agent-2"], "replicas": 1, "resources": {}}
            ]
        },
    }
    docs = render(chart, values)
    auth = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-nats-auth"))
    expected = authorization_block(users_for(Subjects("acme"), {"x": ["core-services", "my_agent-2"]}))
    assert auth["data"]["authorization.conf"] == expected
    assert "acme.progress.my_agent-2.>" in expected and "agent_my_agent_2" in expected


def test_references_resolve_within_the_render(rendered) -> None:  # type: ignore[no-untyped-def]
    values, docs = rendered
    existing_secret = (values.get("secrets") or {}).get("existingSecret")
    configmaps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in by_kind(docs, "Secret")}
    services = {d["metadata"]["name"] for d in by_kind(docs, "Service")}
    deployments = {d["metadata"]["name"] for d in by_kind(docs, "Deployment")}

    def secret_ok(name: str, key: str | None, optional: bool = False) -> None:
        if name == existing_secret:
            return  # provided by the operator, by design
        assert name in secrets, f"secret {name} not rendered"
        if key is not None and not optional:
            assert key in secrets[name]["data"], f"secret {name} has no key {key}"

    for doc in workloads(docs):
        spec = pod_spec(doc)
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps
                if "secretRef" in src:
                    secret_ok(src["secretRef"]["name"], None)
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    secret_ok(r["name"], r["key"], r.get("optional", False))
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["name"] in configmaps
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])} | {
                t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])
            }
        for v in spec.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps
            if "secret" in v:
                secret_ok(v["secret"]["secretName"], None)
    for ing in by_kind(docs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert p["backend"]["service"]["name"] in services
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for sts in by_kind(docs, "StatefulSet"):
        assert sts["spec"]["serviceName"] in services
    nats_url = next(iter(configmaps.values()))["data"]["TASKLOOM_NATS_URL"]
    if "nats.nats.svc" not in nats_url:
        assert nats_url.removeprefix("nats://").split(":")[0] in services


def test_selectors_match_their_pods(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs = rendered
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads(docs)]

    def matches(selector: dict[str, str]) -> bool:
        return any(all(labels.get(k) == v for k, v in selector.items()) for labels in pod_labels)

    for svc in by_kind(docs, "Service"):
        assert matches(svc["spec"]["selector"]), svc["metadata"]["name"]
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        assert matches(pdb["spec"]["selector"]["matchLabels"]), pdb["metadata"]["name"]
    for np in by_kind(docs, "NetworkPolicy"):
        assert matches(np["spec"]["podSelector"]["matchLabels"]), np["metadata"]["name"]


def test_autoscalers_pdbs_and_network_policies(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs = rendered
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(docs, "HorizontalPodAutoscaler")}
    assert "tl-taskloom-orchestrator" in hpa_targets
    assert any(t.startswith("tl-taskloom-agents-") for t in hpa_targets)
    for d in by_kind(docs, "Deployment"):
        # the HPA owns the replica count of what it scales
        assert ("replicas" in d["spec"]) == (d["metadata"]["name"] not in hpa_targets)
    assert len(by_kind(docs, "PodDisruptionBudget")) == len(by_kind(docs, "Deployment"))
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    assert policies["tl-taskloom-default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    postgres = policies["tl-taskloom-postgres-clients"]["spec"]["podSelector"]["matchLabels"]
    for d in by_kind(docs, "Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        reaches_db = all(labels.get(k) == v for k, v in postgres.items())
        assert reaches_db == (not labels["app.kubernetes.io/component"].startswith("agents-"))


def test_migrations_run_as_a_hook_job(rendered) -> None:  # type: ignore[no-untyped-def]
    values, docs = rendered
    job = next(d for d in by_kind(docs, "Job") if d["metadata"]["name"] == "tl-taskloom-migrate")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert "pre-upgrade" in hooks
    bundled_db = ((values.get("postgresql") or {}).get("bundled") or {}).get("enabled", True)
    assert ("pre-install" if not bundled_db else "post-install") in hooks
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    secret_name = pod_spec(job)["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"]
    secret = next((s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == secret_name), None)
    if secret is not None:
        # a pre-install hook runs before the release's resources exist: its Secret is a hook too
        assert (
            secret["metadata"]["annotations"]["helm.sh/hook"]
            == job["metadata"]["annotations"]["helm.sh/hook"]
        )
        assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0


def test_context_policies_come_from_the_policies_file(chart: helm.Chart) -> None:
    docs = render(chart)
    cm = next(
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "tl-taskloom-context-policies"
    )
    shipped = (ROOT / "deploy" / "policies" / "context-policies.yaml").read_text()
    assert cm["data"]["context-policies.yaml"].strip() == shipped.strip()
    context = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "tl-taskloom-context")
    assert {"name": "context-policies", "configMap": {"name": cm["metadata"]["name"]}} in pod_spec(context)[
        "volumes"
    ]


def test_bundled_nats_keeps_jetstream_on_a_volume_and_syncs_always(chart: helm.Chart) -> None:
    docs = render(chart)
    sts = next(d for d in by_kind(docs, "StatefulSet") if d["metadata"]["name"] == "tl-taskloom-nats")
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    conf = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "tl-taskloom-nats")
    assert "sync_interval: always" in conf["data"]["nats.conf"]
    assert 'include "auth/authorization.conf"' in conf["data"]["nats.conf"]
    env = {e["name"] for e in pod_spec(sts)["containers"][0]["env"]}
    groups = {g["name"]: g["agents"] for g in chart.values["agents"]["groups"]}
    assert {u.password_env for u in users_for(Subjects(), groups)} <= env


def test_generated_secrets_are_consistent_within_one_render(chart: helm.Chart) -> None:
    import base64

    docs = render(chart)
    main = next(s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == "tl-taskloom")
    hook = next(s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == "tl-taskloom-migrate")
    assert main["data"]["database-url"] == hook["data"]["database-url"]
    pg_password = base64.b64decode(main["data"]["postgres-password"]).decode()
    assert f":{pg_password}@" in base64.b64decode(main["data"]["database-url"]).decode()


BAD_VALUES = [
    {"config": {"namespace": "Not.A.Token"}},
    {"agents": {"groups": [{"name": "g", "agents": ["has space"], "replicas": 1, "resources": {}}]}},
    {"agents": {"groups": []}},
    {"nats": {"bundled": {"enabled": False}}},  # external NATS without a URL
    {"gateway": {"replicas": -1, "resources": {}}},
    {"auth": {"jwt": {"algorithm": "none"}}},
    {"podSecurityContext": {"runAsNonRoot": False}},
    {"config": {"maxConcurrentWorkflows": 1000}},
    {"image": {"repository": "taskloom", "pullPolicy": "Sometimes"}},
    {"unknownKey": True},
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=[str(i) for i in range(len(BAD_VALUES))])
def test_values_breaking_the_schema_are_rejected(chart: helm.Chart, bad: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        chart.validate_schema(chart.merge_values(bad))
    with pytest.raises(helm.HelmError):
        chart.render(bad, name="tl", namespace="taskloom")


def test_production_values_pass_the_schema(chart: helm.Chart) -> None:
    chart.validate_schema(chart.merge_values(production_values()))


def test_chart_permissions_file_is_what_the_generator_writes() -> None:
    from taskloom.natsauth import chart_permissions

    shipped = (CHART / "files" / "nats-permissions.json").read_text()
    assert yaml.safe_load(shipped) == chart_permissions()
