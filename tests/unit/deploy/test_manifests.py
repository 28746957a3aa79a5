"""deploy/: the Kubernetes manifests, the compose file and the Dockerfile agree with each other and with Tuneline.

The manifests are rendered by the minimal kustomize in conftest.py (and compared with `kubectl kustomize`
where kubectl exists); nothing here needs a cluster or Docker.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.kernel.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"

# docs/design.md, "Events" and "Services" (docs/events.md lists each topic).
TOPICS = [
    "tuneline." + e
    for e in (
        "goal.applied dataset.published dataset.registered dataset.rejected run.requested run.started "
        "run.finished eval.passed eval.failed deployment.started deployment.promoted deployment.rolled_back "
        "deployment.approved deployment.rejected deployment.held deployment.resumed "
        "inference.logged drift.detected rollback.requested feedback.recorded alert.raised retention.applied deadletter"
    ).split()
]
SERVICES = ["ingest", "trainer", "evaluator", "deployer", "monitor"]
GRPC_PORTS = {"deployer": 50051, "monitor": 50052}
IMAGE = "tuneline:0.1.0"
# What every service container must be given (the brief's list; RAY_ADDRESS is the trainer's alone).
REQUIRED_ENV = {
    "TUNELINE_KAFKA_BOOTSTRAP", "TUNELINE_STATE_DIR", "TUNELINE_STORE_URL", "TUNELINE_ARTIFACT_ROOT",
    "TUNELINE_GRPC_TOKENS", "TUNELINE_DEPLOYER_ADDRESS", "TUNELINE_MONITOR_ADDRESS", "OTEL_EXPORTER_OTLP_ENDPOINT",
}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
Doc = dict[str, Any]  # a Kubernetes object (or a part of one) as parsed YAML


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container(deployment: Doc) -> Doc:
    first: Doc = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def service_deployment(docs: list[Doc], svc: str) -> Doc:
    return one(docs, "Deployment", f"tuneline-{svc}")


def container_env(docs: list[Doc], c: Doc) -> dict[str, str]:
    """The environment Kubernetes would give a container: envFrom, then env (which wins)."""
    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        ref = src.get("configMapRef") or src.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in src else "Secret"
        found = find(docs, kind, ref["name"])
        assert found or ref.get("optional"), f"{kind} {ref['name']} is referenced but not rendered"
        env.update(_data(found[0]) if found else {})
    for var in c.get("env", []):
        env[var["name"]] = _value(docs, var)
    return env


def _data(obj: Doc) -> dict[str, str]:
    if obj["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
    return dict(obj.get("data", {}))


def _value(docs: list[Doc], var: Doc) -> str:
    if "value" in var:
        return str(var["value"])
    source = var["valueFrom"]
    if "fieldRef" in source:
        return "pod-name"
    kind, ref = ("Secret", source["secretKeyRef"]) if "secretKeyRef" in source else ("ConfigMap", source["configMapKeyRef"])
    data = _data(one(docs, kind, ref["name"]))
    assert ref["key"] in data, f"{kind} {ref['name']} has no key {ref['key']}"
    return data[ref["key"]]


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the process would read them from exactly this environment."""
    import os

    for name in list(os.environ):  # noqa: TID251 - empties the environment Settings() reads, to set exactly `env`
        if name.startswith(("TUNELINE_", "OTEL_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    assert parts.hostname and parts.port, f"{address!r} has no host:port"
    return parts.hostname, parts.port


def k8s_yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


# ------------------------------------------------------------------ files and kustomizations


def test_every_yaml_file_parses_and_every_object_is_named() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 15
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path} is empty"
    for path in k8s_yaml_files():
        for d in yaml.safe_load_all(path.read_text()):
            if d is None or isinstance(d, list):  # a JSON 6902 patch is a list of operations
                continue
            assert d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), f"{path}: {d}"


def test_every_path_a_kustomization_names_exists() -> None:
    kustomizations = sorted(DEPLOY.rglob("kustomization.yaml"))
    assert len(kustomizations) == 4
    for k in kustomizations:
        spec = yaml.safe_load(k.read_text())
        paths = list(spec.get("resources", [])) + [p["path"] for p in spec.get("patches", [])]
        paths += [f.rpartition("=")[2] for g in spec.get("configMapGenerator", []) for f in g.get("files", [])]
        for rel in paths:
            target = (k.parent / rel).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{k}: {rel} does not exist"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", ["base", "overlays/dev"])
def test_the_minimal_renderer_agrees_with_kubectl_kustomize(folder: str, renderer) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S / folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    real = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert _canonical(real) == _canonical(renderer(K8S / folder))


def _canonical(docs: list[Doc]) -> dict[tuple[str, str | None, str], object]:
    def norm(v: object) -> object:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            items: list[Any] = [norm(x) for x in v]  # parsed YAML nodes
            named = all(isinstance(x, dict) and "name" in x for x in items) and items
            return sorted(items, key=lambda x: x["name"]) if named else items
        return v

    def decoded(d: Doc) -> Doc:  # kustomize wraps long base64 lines; compare the bytes, not the wrapping
        return d | {"data": _data(d)} if d["kind"] == "Secret" else d

    return {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): norm(decoded(d)) for d in docs}


# ------------------------------------------------------------------ what must be there


def test_the_kernel_knows_exactly_the_topics_of_design_md() -> None:
    from services.kernel.events import EVENT_TYPES

    assert sorted(f"tuneline.{e}" for e in EVENT_TYPES) == sorted(TOPICS)


@pytest.mark.parametrize("overlay", ["base", "dev"])
def test_every_topic_is_a_kafka_topic_of_the_cluster(overlay: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(overlay)
    topics = find(docs, "KafkaTopic")
    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(TOPICS)
    for t in topics:
        assert DNS_SUBDOMAIN.match(t["metadata"]["name"]), t["metadata"]["name"]
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == one(docs, "Kafka", "tuneline")["metadata"]["name"]


@pytest.mark.parametrize("overlay", ["base", "dev"])
def test_replication_fits_the_kafka_cluster(overlay: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(overlay)
    kafka = one(docs, "Kafka", "tuneline")
    config = kafka["spec"]["kafka"]["config"]
    brokers = sum(p["spec"]["replicas"] for p in find(docs, "KafkaNodePool") if "broker" in p["spec"]["roles"])
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert config["min.insync.replicas"] <= config["default.replication.factor"] <= brokers
    settings = one(docs, "ConfigMap", "tuneline-config")["data"]
    for t in find(docs, "KafkaTopic"):
        # acks=all needs min.insync.replicas in sync: more than the replicas would refuse every write.
        assert config["min.insync.replicas"] <= t["spec"]["replicas"] <= brokers, t["metadata"]["name"]
        assert t["spec"]["replicas"] == int(settings["TUNELINE_KAFKA_REPLICATION"])
        assert t["spec"]["partitions"] == int(settings["TUNELINE_KAFKA_PARTITIONS"])


@pytest.mark.parametrize("overlay", ["base", "dev"])
def test_one_deployment_per_service_with_probes_and_resources(overlay: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(overlay)
    for svc in SERVICES:
        c = container(service_deployment(docs, svc))
        assert c["args"] == [svc, "run"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert _probe_target(c[probe]) == (("grpc", GRPC_PORTS[svc]) if svc in GRPC_PORTS else ("exec", svc)), probe
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), f"{svc} {bound}"
    for d in find(docs, "Deployment") + find(docs, "StatefulSet"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert c.get("readinessProbe") and c.get("livenessProbe") and c.get("resources", {}).get("limits"), d


def _probe_target(probe: Doc) -> tuple[str, object]:
    if "grpc" in probe:
        return "grpc", probe["grpc"]["port"]
    command = probe["exec"]["command"]
    assert command[0] == "tuneline" and command[2] == "health" and len(command) == 3, command
    return "exec", command[1]


# ------------------------------------------------------------------ consistency


@pytest.mark.parametrize("overlay", ["base", "dev"])
def test_images_and_grpc_ports_agree_across_deployments_services_and_probes(
    overlay: str, request: pytest.FixtureRequest
) -> None:
    docs = request.getfixturevalue(overlay)
    ray = one(docs, "RayCluster", "tuneline-ray")["spec"]
    ray_pods = [ray["headGroupSpec"]["template"]] + [g["template"] for g in ray["workerGroupSpecs"]]
    images = {container(service_deployment(docs, s))["image"] for s in SERVICES}
    images |= {c["image"] for pod in ray_pods for c in pod["spec"]["containers"]}
    assert images == {IMAGE}
    assert ray["rayVersion"] == _locked("ray")
    for svc, port in GRPC_PORTS.items():
        c = container(service_deployment(docs, svc))
        own = {v["name"]: v.get("value") for v in c["env"]}  # the bind address is the pod's own, not shared
        assert host_port(own[f"TUNELINE_{svc.upper()}_ADDRESS"]) == ("0.0.0.0", port)
        assert {p["name"]: p["containerPort"] for p in c["ports"]}["grpc"] == port
        service = one(docs, "Service", f"tuneline-{svc}")
        assert service["spec"]["selector"].items() <= c_labels(service_deployment(docs, svc)).items()
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "grpc")]


def c_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_the_dev_environment_gives_every_service_valid_settings(dev, monkeypatch: pytest.MonkeyPatch) -> None:
    databases = one(dev, "ConfigMap", "tuneline-postgres-init")["data"]["create-databases.sql"]
    pg = _data(one(dev, "Secret", "tuneline-postgres"))
    for svc in SERVICES:
        env = container_env(dev, container(service_deployment(dev, svc)))
        assert REQUIRED_ENV <= env.keys(), f"{svc} misses {REQUIRED_ENV - env.keys()}"
        s = settings_from(env, monkeypatch)
        url = urlsplit(s.store_url_for(svc))
        assert url.scheme == "postgresql+psycopg" and url.path == f"/tuneline_{svc}"
        assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
        assert url.hostname == one(dev, "Service", "tuneline-postgres")["metadata"]["name"]
        assert f"CREATE DATABASE tuneline_{svc};" in databases
        assert s.grpc_tokens and all(isinstance(t, str) and t for t in s.grpc_tokens)
        assert s.artifacts == "/var/lib/tuneline/artifacts"
        mounts = {m["mountPath"] for m in container(service_deployment(dev, svc))["volumeMounts"]}
        assert {s.artifacts, str(s.state_dir)} <= mounts
        _assert_endpoints_resolve(dev, s, env, svc)


def _assert_endpoints_resolve(docs: list[Doc], s: Settings, env: dict[str, str], svc: str) -> None:
    kafka = one(docs, "Kafka", "tuneline")
    plain = {lst["name"]: lst["port"] for lst in kafka["spec"]["kafka"]["listeners"]}["plain"]
    assert host_port(s.bootstrap) == (f"{kafka['metadata']['name']}-kafka-bootstrap", plain)
    host, port = host_port(s.otlp_endpoint)
    assert port in [p["port"] for p in one(docs, "Service", host)["spec"]["ports"]]
    for other, grpc_port in GRPC_PORTS.items():
        if other != svc:  # a client address: the Service and its port
            assert host_port(env[f"TUNELINE_{other.upper()}_ADDRESS"]) == (f"tuneline-{other}", grpc_port)
    if svc == "trainer":
        ray = one(docs, "RayCluster", "tuneline-ray")
        head = ray["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        client = {p["name"]: p["containerPort"] for p in head["ports"]}["client"]
        assert env["RAY_ADDRESS"] == f"ray://{ray['metadata']['name']}-head-svc:{client}"
    else:
        assert "RAY_ADDRESS" not in env


def test_every_tuneline_variable_is_a_setting_the_kernel_reads(base, dev, compose) -> None:
    names: set[str] = set()
    for docs in (base, dev):
        for cm in find(docs, "ConfigMap"):
            names |= set(cm.get("data", {}))
        for d in find(docs, "Deployment"):
            names |= {v["name"] for c in d["spec"]["template"]["spec"]["containers"] for v in c.get("env", [])}
    for svc in SERVICES:
        names |= set(compose["services"][svc]["environment"])
    fields = set(Settings.model_fields)
    unknown = {n for n in names if n.startswith("TUNELINE_") and n.removeprefix("TUNELINE_").lower() not in fields}
    assert not unknown, f"not fields of services.kernel.settings.Settings: {sorted(unknown)}"


def test_the_base_holds_no_credentials(base) -> None:
    assert not find(base, "Secret")
    for d in find(base, "Deployment") + find(base, "ConfigMap"):
        text = json.dumps(d)
        assert "tuneline-dev-token" not in text and "password" not in text.lower(), d["metadata"]["name"]
    for svc in SERVICES:
        env = {v["name"]: v for v in container(service_deployment(base, svc))["env"]}
        for name in ("TUNELINE_STORE_URL", "TUNELINE_GRPC_TOKENS"):
            assert "secretKeyRef" in env[name]["valueFrom"], f"{svc} {name} must come from a Secret"


def test_the_dev_overlay_provides_every_secret_the_base_references(base, dev) -> None:
    for svc in SERVICES:
        for var in container(service_deployment(base, svc))["env"]:
            if ref := var.get("valueFrom", {}).get("secretKeyRef"):
                assert ref["key"] in _data(one(dev, "Secret", ref["name"])), ref


# ------------------------------------------------------------------ compose and the image


def test_compose_runs_the_five_services_on_one_kraft_broker(compose, base) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert services["kafka-init"]["environment"]["TOPICS"].split() == TOPICS
    for svc in SERVICES:
        spec = services[svc]
        assert spec["image"] == IMAGE and spec["build"]["dockerfile"] == "deploy/Dockerfile"
        assert spec["command"] == [svc, "run"]
        assert spec["healthcheck"]["test"] == ["CMD", "tuneline", svc, "health"]
        assert REQUIRED_ENV <= set(spec["environment"]), svc
        assert host_port(spec["environment"]["TUNELINE_KAFKA_BOOTSTRAP"]) == ("kafka", 9092)
        assert "INTERNAL://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for svc, port in GRPC_PORTS.items():
        env = services[svc]["environment"]
        assert host_port(env[f"TUNELINE_{svc.upper()}_ADDRESS"]) == ("0.0.0.0", port)
        assert f"127.0.0.1:{port}:{port}" in services[svc]["ports"]
        assert host_port(services["ingest"]["environment"][f"TUNELINE_{svc.upper()}_ADDRESS"]) == (svc, port)


def test_compose_gives_every_service_valid_settings(compose, monkeypatch: pytest.MonkeyPatch) -> None:
    for svc in SERVICES:
        env = {k: str(v) for k, v in compose["services"][svc]["environment"].items()}
        s = settings_from(env, monkeypatch)
        assert s.grpc_tokens == ["compose-test-token"]
        assert s.store_url_for(svc).startswith("sqlite:///")  # empty TUNELINE_STORE_URL: one SQLite file each
        assert host_port(s.otlp_endpoint) == ("otel-collector", 4317)
        assert "otel-collector" in compose["services"]
        mounts = {v.split(":")[1] for v in compose["services"][svc]["volumes"]}
        assert {s.artifacts, str(s.state_dir)} <= mounts


def test_compose_refuses_to_start_without_tokens(compose_text: str, interpolator) -> None:
    with pytest.raises(KeyError, match="TUNELINE_GRPC_TOKENS"):
        interpolator(compose_text, {})


def test_compose_has_no_plaintext_token(compose_text: str) -> None:
    assert re.search(r"TUNELINE_GRPC_TOKENS:\s*\$\{TUNELINE_GRPC_TOKENS:\?", compose_text)
    assert "token\"" not in compose_text.lower().replace(" ", "")


def test_compose_mounts_the_collector_config_kubernetes_uses(compose, base) -> None:
    volumes = compose["services"]["otel-collector"]["volumes"]
    assert "./otel/collector.yaml:/etc/otelcol/config.yaml:ro" in volumes
    k8s_config = one(base, "ConfigMap", "tuneline-otel-collector")["data"]["config.yaml"]
    assert yaml.safe_load(k8s_config) == yaml.safe_load((DEPLOY / "otel" / "collector.yaml").read_text())
    assert compose["services"]["otel-collector"]["image"] == container(one(base, "Deployment", "tuneline-otel-collector"))["image"]
    receivers = yaml.safe_load(k8s_config)["receivers"]["otlp"]["protocols"]
    assert host_port(receivers["grpc"]["endpoint"]) == ("0.0.0.0", 4317)


def test_the_dockerfile_builds_the_tagged_image_from_the_lock_and_the_release_wheel() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    steps = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert steps[0] == "FROM python:3.11-slim"
    assert f"ARG TUNELINE_VERSION={version}" in steps
    assert "RUN pip install -r requirements.lock" in steps
    # The code comes from the wheel `make wheel` builds (and `make release` checks), never the source tree.
    wheel = "tuneline-${TUNELINE_VERSION}-py3-none-any.whl"
    assert f"COPY dist/{wheel} /tmp/" in steps
    assert any(s.startswith("RUN pip install --no-deps") and s.endswith(f"/tmp/{wheel} \\") for s in steps)
    assert not [s for s in steps if s.startswith("COPY") and s.split()[1] in ("services", "protos", "benchmarks", ".")]
    assert 'ENTRYPOINT ["tuneline"]' in steps
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!dist/tuneline-*-py3-none-any.whl" in ignore and "!requirements.lock" in ignore
    # Every top-level package the code imports must be in the wheel, so in the image.
    imported = {m for f in (REPO / "services").rglob("*.py") for m in re.findall(r"^\s*from (\w+)[. ]", f.read_text(), re.M)}
    packaged = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    local = {p.name for p in [*REPO.iterdir(), *(REPO / "protos").iterdir()] if (p / "__init__.py").is_file()}
    for package in imported & local:
        assert f"{package}*" in packaged, f"the wheel lacks {package}/"
    assert IMAGE == f"tuneline:{version}"


def test_the_image_has_the_database_driver_the_manifests_use(dev) -> None:
    url = _data(one(dev, "Secret", "tuneline-store"))["url"]
    assert url.startswith("postgresql+psycopg://") and _locked("psycopg")


def test_the_image_has_the_object_store_driver_the_base_uses(base) -> None:
    assert one(base, "ConfigMap", "tuneline-config")["data"]["TUNELINE_ARTIFACT_ROOT"].startswith("s3://")
    assert _locked("s3fs")


def _locked(package: str) -> str:
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    return ""


def test_dev_ray_pods_share_the_trainers_ray_storage_and_artifacts(dev) -> None:
    def shared(pod: Doc) -> set[tuple[str, str, str]]:
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        mounts = [m for c in pod["containers"] for m in c.get("volumeMounts", []) if m["name"] in claims]
        return {(m["mountPath"], claims[m["name"]], m.get("subPath", "")) for m in mounts}

    # The signing keys stay with the trainer: Ray's pods train, they never sign or verify events.
    trainer = {m for m in shared(service_deployment(dev, "trainer")["spec"]["template"]["spec"]) if m[1] != "tuneline-keys"}
    assert ("/var/lib/tuneline/state/trainer/ray", "tuneline-artifacts", "ray-storage") in trainer
    ray = one(dev, "RayCluster", "tuneline-ray")["spec"]
    for pod in [ray["headGroupSpec"]["template"]] + [g["template"] for g in ray["workerGroupSpecs"]]:
        assert trainer <= shared(pod["spec"])


def test_the_dashboard_and_the_alert_rules_query_only_catalogued_series() -> None:
    from tests.support import catalogue, dashboard_expressions, series_in

    catalogued = {re.sub(r"_(total)$", "", s) for series in catalogue().values() for s in series}
    expressions = dashboard_expressions()
    assert len(expressions) >= 30, "every panel and rule has a query"
    unknown = {name: e for e in expressions for name in series_in(e) if name not in catalogued}
    assert not unknown, f"queries of series docs/metrics.md does not list: {unknown}"
    dashboard = json.loads((DEPLOY / "grafana" / "tuneline.json").read_text())
    assert {p["title"] for p in dashboard["panels"] if p["type"] == "row"} >= {"Serving", "Rollouts", "Training", "Drift"}
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yaml").read_text())
    assert all({"alert", "expr", "labels"} <= set(r) for g in rules["groups"] for r in g["rules"])


# ------------------------------------------------------------------ metrics: scraping, dashboard, alert rules

METRICS_PORT = 9464


@pytest.mark.parametrize("overlay", ["base", "dev"])
def test_every_service_pod_serves_metrics_on_the_port_its_scrape_annotations_name(overlay: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(overlay)
    for svc in SERVICES:
        deployment = service_deployment(docs, svc)
        c = container(deployment)
        assert host_port(_metrics_address(docs, c)) == ("0.0.0.0", METRICS_PORT), svc
        assert {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"] == METRICS_PORT, svc
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == str(METRICS_PORT), svc


def _metrics_address(docs: list[Doc], c: Doc) -> str:
    """TUNELINE_METRICS_ADDRESS as the container sees it (the base renders no Secrets, so not container_env)."""
    own = {v["name"]: v["value"] for v in c.get("env", []) if "value" in v}
    shared = {k: v for src in c.get("envFrom", []) if "configMapRef" in src
              for k, v in _data(one(docs, "ConfigMap", src["configMapRef"]["name"])).items()}
    return str((shared | own)["TUNELINE_METRICS_ADDRESS"])


def test_the_dev_overlay_ships_the_dashboard_for_grafanas_sidecar(dev) -> None:
    cm = one(dev, "ConfigMap", "tuneline-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["tuneline.json"]) == json.loads((DEPLOY / "grafana" / "tuneline.json").read_text())


def test_compose_scrapes_every_service_and_provisions_the_rules_and_the_dashboard(compose) -> None:
    services = compose["services"]
    for svc in SERVICES:
        assert host_port(services[svc]["environment"]["TUNELINE_METRICS_ADDRESS"]) == ("0.0.0.0", METRICS_PORT), svc
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{svc}:{METRICS_PORT}" for svc in SERVICES}
    mounts = dict(v.removesuffix(":ro").split(":") for v in services["prometheus"]["volumes"])
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert config["rule_files"] == [mounts["./prometheus/rules.yaml"]]

    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    mounts = dict(v.removesuffix(":ro").split(":") for v in grafana["volumes"])
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and host_port(datasource["url"]) == ("prometheus", 9090)
    assert "127.0.0.1:9090:9090" in services["prometheus"]["ports"]
    provider = yaml.safe_load((provisioning / "dashboards" / "tuneline.yaml").read_text())["providers"][0]
    assert Path(mounts["./grafana/tuneline.json"]).parent == Path(provider["options"]["path"])


def test_the_dashboard_reads_its_datasource_variable_in_every_panel() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "tuneline.json").read_text())
    assert dashboard["schemaVersion"] == 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"]), "panel ids are unique"
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]


def test_the_alert_rules_page_on_what_the_runbook_names() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load((DEPLOY / "prometheus" / "rules.yaml").read_text())["groups"] for r in g["rules"]}
    for rule in rules.values():
        assert {"alert", "expr", "for"} <= rule.keys() and rule["labels"]["severity"] in {"warning", "critical"}, rule
        assert rule["annotations"]["summary"], rule
    expected = {"TunelineServingErrorRate": ("tuneline_serving_request_duration_seconds_count", "> 0.05", "5m"),
                "TunelineServingLatencyP99": ("tuneline_serving_request_duration_seconds_bucket", "> 0.5", "5m"),
                "TunelineConsumerLag": ("tuneline_bus_consumer_lag", "> 1000", "10m"),
                "TunelineDeadLetter": ("tuneline_bus_dead_letters_total[15m]", "> 0", "0m"),
                "TunelineLedgerBroken": ("tuneline_ledger_verified", "== 0", "0m")}
    for name, (series, threshold, hold) in expected.items():
        expr = " ".join(rules[name]["expr"].split())
        assert series in expr and expr.endswith(threshold) and rules[name]["for"] == hold, name
