"""Offline checks of everything under deploy/: the image, Compose, Kubernetes, Prometheus and Grafana.

Nothing here needs Docker, a cluster or the network. The schema validators come with the dev tools
(check-jsonschema, kubectl with kustomize, kubernetes-validate); promtool comes from Debian's
``prometheus`` package and its checks are skipped, with the reason, where it is not installed.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.testing.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"

OVERLAYS = ("dev", "prod")
# kubernetes-validate ships schemas for 1.25 to 1.37: validate against the oldest release we support,
# so a field newer than that fails here instead of on a cluster.
KUBERNETES_VERSION = "1.31.0"
# Kinds defined by operators' CRDs, whose schemas are not available offline; checked below by hand.
CRD_KINDS = frozenset({"ServiceMonitor", "PrometheusRule", "Cluster", "RabbitmqCluster"})
WORKLOAD_KINDS = frozenset({"Deployment", "Job", "CronJob"})

# CONTRACT section 1.
PORTS = {"gateway": 8000, "users": 8001, "orders": 8002, "notification": 8003, "realtime": 8004}
INFRASTRUCTURE = ("postgres", "rabbitmq", "mailpit")
OBSERVABILITY = ("prometheus", "grafana")
# shared.web.server runs uvicorn with timeout_graceful_shutdown=20.
UVICORN_GRACEFUL_SECONDS = 20

# Environment variables whose value is a credential: they must come from a Secret.
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY(?!_FILE)|AMQP_URL", re.IGNORECASE)
# scheme://user:password@host
CREDENTIAL_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")

Manifest = dict[str, Any]


def _components() -> list[str]:
    """Every component that can run (``python -m <name>`` finds a ``__main__``): each must be deployed.

    A service whose package is still a skeleton is not required yet; once it gains its CLI these
    tests ask for its Compose services, Kubernetes folder and scrape job.
    """
    packages = [ROOT / "gateway", *sorted(p.parent for p in (ROOT / "services").glob("*/pyproject.toml"))]
    return [p.name for p in packages if (p / "src" / p.name / "__main__.py").is_file()]


COMPONENTS = _components()
SERVICES_WITH_DATABASE = [name for name in COMPONENTS if name != "gateway"]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- the image ----------------------------------------------------------------------------------


def _dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into build stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_deploy_dockerfile_builds_a_slim_non_root_image_from_the_lock() -> None:
    stages = _dockerfile_stages()
    preamble, runtime = stages[0], stages[-1]
    lines = [line for stage in stages for line in stage]

    assert any(re.match(r"ARG PYTHON_IMAGE=python:3\.11-slim", line) for line in preamble), preamble
    assert runtime[0].startswith("FROM ${PYTHON_IMAGE}"), "the runtime stage is the slim Python image"
    syncs = [line for line in lines if "uv sync" in line]
    assert len(syncs) == 2, "one uv sync for the dependencies, one for the workspace members"
    assert all("--frozen" in line and "--no-dev" in line for line in syncs), syncs
    assert "--no-install-workspace" in syncs[0], "the first sync installs third-party packages only"

    users = [line.split(maxsplit=1)[1] for line in runtime if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"runtime user must be numeric so Kubernetes can check it, got {uid}"
    assert int(uid) != 0, "the runtime user is root"
    # Only the build stage's /app (virtualenv and sources) reaches the runtime image: no uv, no context.
    runtime_copies = [line for line in runtime if line.upper().startswith("COPY ")]
    assert runtime_copies == ["COPY --from=build /app /app"], runtime_copies
    assert ".secrets" not in "\n".join(lines)


def test_deploy_dockerfile_dependency_layer_sees_only_the_manifests() -> None:
    # Every member's pyproject.toml must be there for uv (new members too), and nothing else, or
    # any source edit would reinstall every dependency.
    stages = {stage[0].split()[-1]: stage for stage in _dockerfile_stages()[1:]}
    manifests = "\n".join(stages["manifests"])
    assert "COPY . ." in manifests
    assert "! -name pyproject.toml ! -name uv.lock -delete" in manifests
    build = stages["build"]
    first_sync = next(i for i, line in enumerate(build) if "uv sync" in line)
    copies = [line for line in build[:first_sync] if line.upper().startswith("COPY ")]
    assert copies == ["COPY --from=uv /uv /usr/local/bin/uv", "COPY --from=manifests /src/ ./"], copies


def test_deploy_dockerignore_keeps_local_state_secrets_and_tests_out() -> None:
    entries = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    entries = {entry for entry in entries if not entry.startswith("#")}
    required = {
        ".venv": {".venv", "**/.venv"},
        ".git": {".git"},
        ".secrets": {".secrets", "**/.secrets"},
        "tests": {"tests", "**/tests"},
        "__pycache__": {"__pycache__", "**/__pycache__"},
        ".mypy_cache": {".mypy_cache", "**/.mypy_cache"},
        ".pytest_cache": {".pytest_cache", "**/.pytest_cache"},
        ".ruff_cache": {".ruff_cache", "**/.ruff_cache"},
    }
    missing = [name for name, spellings in required.items() if not spellings & entries]
    assert not missing, f".dockerignore does not exclude {missing}"


# --- Docker Compose -----------------------------------------------------------------------------


@functools.cache
def _compose() -> Manifest:
    compose: Manifest = _load_yaml(COMPOSE_FILE)
    return compose


def _command(service: Manifest) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _compose_service(name: str) -> Manifest:
    services: Manifest = _compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name} (copy the orders block)"
    service: Manifest = services[name]
    return service


def test_deploy_compose_file_passes_the_compose_spec_schema() -> None:
    result = _run(
        require_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_compose_runs_every_component_and_the_infrastructure() -> None:
    services = set(_compose()["services"])
    missing = sorted({*COMPONENTS, *INFRASTRUCTURE, *OBSERVABILITY} - services)
    assert not missing, f"docker-compose.yml lacks {missing}"
    for name in COMPONENTS:
        assert _command(_compose()["services"][name]) == ["python", "-m", name, "serve"]


def test_deploy_compose_prepares_each_database_before_its_service_starts() -> None:
    for name in SERVICES_WITH_DATABASE:
        bootstrap, migrate = _compose_service(f"{name}-bootstrap-db"), _compose_service(f"{name}-migrate")
        assert _command(bootstrap) == ["python", "-m", name, "bootstrap-db"]
        assert _command(migrate) == ["python", "-m", name, "migrate"]
        assert bootstrap["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert migrate["depends_on"][f"{name}-bootstrap-db"]["condition"] == "service_completed_successfully"
        depends = _compose_service(name)["depends_on"]
        assert depends[f"{name}-migrate"]["condition"] == "service_completed_successfully"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
    assert _compose_service("gateway")["depends_on"]["users"]["condition"] == "service_healthy"


def test_deploy_compose_health_checks_every_service_over_http_with_python() -> None:
    for name in COMPONENTS:
        check = _compose_service(name).get("healthcheck")
        assert check, f"{name} has no healthcheck"
        probe = " ".join(str(part) for part in check["test"])
        # The slim image has no curl: a Python one-liner against the component's own port.
        assert probe.startswith("CMD python -c"), probe
        assert re.search(rf"127\.0\.0\.1:{PORTS[name]}/(readyz|healthz)", probe), probe
    for name in (*INFRASTRUCTURE, "prometheus"):
        assert _compose_service(name).get("healthcheck"), f"{name} has no healthcheck"


def test_deploy_compose_infrastructure_starts_alone_for_make_infra() -> None:
    # `make infra` is `docker compose up -d postgres rabbitmq mailpit`: nothing else may be pulled in.
    for name in INFRASTRUCTURE:
        assert not _compose_service(name).get("depends_on"), f"{name} depends on other services"
        assert not _compose_service(name).get("profiles"), f"{name} is hidden behind a profile"


def test_deploy_compose_runs_the_application_in_development_mode_only() -> None:
    for name, service in _compose()["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        if "APP_ENV" in env or _command(service)[:2] == ["python", "-m"]:
            assert env.get("APP_ENV") == "development", f"{name} must run with APP_ENV=development"
        for key, value in env.items():
            if SECRET_NAME.search(key) and "${" not in str(value):
                # A literal secret is fine in this dev-only file only when it says so, or when it is
                # RabbitMQ's built-in guest account (the contract's default AMQP_URL).
                dev_only = "dev" in str(value) or "://guest:guest@" in str(value)
                assert dev_only, f"{name}: {key} has a value that does not look dev-only"
        ports = service.get("ports") or []
        assert all(str(port).startswith("127.0.0.1:") for port in ports), f"{name} publishes {ports}"


# --- Kubernetes ---------------------------------------------------------------------------------


@functools.cache
def _render(overlay: str) -> tuple[Manifest, ...]:
    result = _run(require_tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay))
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _of_kind(objects: tuple[Manifest, ...], *kinds: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] in kinds]


def _named(objects: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    found = [obj for obj in _of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Manifest = spec["template"]["spec"]
    return pod


def _pod_labels(workload: Manifest) -> dict[str, str]:
    spec: Manifest = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


def _containers(pod: Manifest) -> Iterator[Manifest]:
    yield from pod.get("initContainers") or []
    yield from pod["containers"]


def _pod_policy_violations(workload: Manifest, *, strict: bool) -> list[str]:
    """What breaks the project's pod policy; ``strict`` adds what only our own images can promise."""
    where = f"{workload['kind']}/{workload['metadata']['name']}"
    pod = _pod_spec(workload)
    pod_security = pod.get("securityContext") or {}
    problems: list[str] = []
    if strict and pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken is not false")
    tmp_volumes = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    for container in _containers(pod):
        at = f"{where} container {container['name']}"
        security = container.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            problems.append(f"{at}: runAsNonRoot is not true")
        seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile") or {}
        if seccomp.get("type") != "RuntimeDefault":
            problems.append(f"{at}: seccompProfile is not RuntimeDefault")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{at}: capabilities do not drop ALL")
        if security.get("privileged"):
            problems.append(f"{at}: privileged")
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            if "memory" not in (resources.get(bound) or {}):
                problems.append(f"{at}: no memory {bound}")
        if "cpu" not in (resources.get("requests") or {}):
            problems.append(f"{at}: no cpu request")
        if strict:
            if "cpu" not in (resources.get("limits") or {}):
                problems.append(f"{at}: no cpu limit")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
            if mounts.get("/tmp") not in tmp_volumes:
                problems.append(f"{at}: /tmp is not an emptyDir (the root filesystem is read-only)")
            image = str(container.get("image", ""))
            if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
                problems.append(f"{at}: image {image!r} is not pinned to a tag")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_overlay_passes_kubernetes_validate_strict(overlay: str, tmp_path: Path) -> None:
    objects = _render(overlay)
    plain = [obj for obj in objects if obj["kind"] not in CRD_KINDS]
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(plain))
    result = _run(
        require_tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(rendered)
    )
    # Offline, a kind without a bundled schema is only a WARN with exit 0: count it as a failure here,
    # since every CRD kind was taken out above.
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "WARN" not in report, report
    assert "ERROR" not in report, report
    assert len(plain) > 10, f"{overlay} renders suspiciously few objects"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_crd_objects_have_their_required_fields(overlay: str) -> None:
    objects = _render(overlay)
    for monitor in _of_kind(objects, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"], monitor["metadata"]["name"]
        assert all(e["port"] and e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])
    for rule in _of_kind(objects, "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for cluster in _of_kind(objects, "Cluster"):
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        assert cluster["spec"]["storage"]["size"]
    for broker in _of_kind(objects, "RabbitmqCluster"):
        assert broker["apiVersion"] == "rabbitmq.com/v1beta1"
    unexpected = {obj["kind"] for obj in objects} & CRD_KINDS - {
        "ServiceMonitor",
        "PrometheusRule",
        *(("Cluster", "RabbitmqCluster") if overlay == "prod" else ()),
    }
    assert not unexpected, f"{overlay} renders {unexpected}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_workloads_follow_the_pod_security_policy(overlay: str) -> None:
    objects = _render(overlay)
    problems = [
        problem
        for workload in _of_kind(objects, *WORKLOAD_KINDS)
        for problem in _pod_policy_violations(workload, strict=True)
    ]
    # Third-party StatefulSets (dev Postgres and RabbitMQ) meet the restricted Pod Security profile.
    problems += [
        problem
        for workload in _of_kind(objects, "StatefulSet")
        for problem in _pod_policy_violations(workload, strict=False)
    ]
    assert not problems, "\n".join(problems)
    for namespace in _of_kind(objects, "Namespace"):
        labels = namespace["metadata"].get("labels") or {}
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_deployments_probe_health_and_drain_gracefully(overlay: str) -> None:
    objects = _render(overlay)
    for name in COMPONENTS:
        deployment = _named(objects, "Deployment", name)
        pod = _pod_spec(deployment)
        for container in pod["containers"]:
            assert container["startupProbe"], name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            pre_stop = container["lifecycle"]["preStop"]
            if "sleep" in pre_stop:
                pause = int(pre_stop["sleep"]["seconds"])
            else:
                command = pre_stop["exec"]["command"]
                assert command[0] == "sleep", f"{name}: preStop should sleep, got {command}"
                pause = int(command[1])
            assert pause >= 5, f"{name}: a preStop of {pause}s is too short for endpoints to update"
            # The kubelet counts preStop inside the grace period; uvicorn then needs its own drain.
            grace = pod["terminationGracePeriodSeconds"]
            assert grace >= pause + UVICORN_GRACEFUL_SECONDS, f"{name}: grace {grace}s < {pause}s + 20s"


def _env_problems(where: str, env: list[Manifest]) -> list[str]:
    problems = []
    for var in env:
        name = var["name"]
        if "value" in var:
            value = str(var["value"])
            if SECRET_NAME.search(name):
                problems.append(f"{where}: {name} has a literal value instead of a secretKeyRef")
            if CREDENTIAL_URL.search(value):
                problems.append(f"{where}: {name} holds a URL with a password")
        elif SECRET_NAME.search(name) and "secretKeyRef" not in (var.get("valueFrom") or {}):
            problems.append(f"{where}: {name} does not come from a Secret")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_commits_no_secret_values(overlay: str) -> None:
    objects = _render(overlay)
    assert not _of_kind(objects, "Secret"), "Secrets are created out of band (deploy/k8s/README.md)"
    problems: list[str] = []
    for workload in _of_kind(objects, *WORKLOAD_KINDS, "StatefulSet"):
        for container in _containers(_pod_spec(workload)):
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            problems += _env_problems(where, container.get("env") or [])
    for config in _of_kind(objects, "ConfigMap"):
        where = f"ConfigMap/{config['metadata']['name']}"
        problems += _env_problems(where, [{"name": k, "value": v} for k, v in config["data"].items()])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_deploys_every_component_with_a_budget_and_monitoring(overlay: str) -> None:
    objects = _render(overlay)
    budgets = _of_kind(objects, "PodDisruptionBudget")
    monitors = _of_kind(objects, "ServiceMonitor")
    for name in COMPONENTS:
        deployment = _named(objects, "Deployment", name)
        labels = _pod_labels(deployment)
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command == ["python", "-m", name, "serve"]
        assert any(_selects(b["spec"]["selector"], labels) for b in budgets), f"no PDB covers {name}"
        service = _named(objects, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items(), f"Service {name} misses its pods"
        assert service["spec"]["ports"][0]["port"] == PORTS[name]
        service_labels = service["metadata"].get("labels") or {}
        assert any(_selects(m["spec"]["selector"], service_labels) for m in monitors), (
            f"no ServiceMonitor scrapes {name}"
        )
    for name in SERVICES_WITH_DATABASE:
        migrate = _named(objects, "Job", f"{name}-migrate")
        assert _pod_spec(migrate)["containers"][0]["command"] == ["python", "-m", name, "migrate"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_gateway_scales_with_a_horizontal_pod_autoscaler(overlay: str) -> None:
    objects = _render(overlay)
    hpa = _named(objects, "HorizontalPodAutoscaler", "gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The HPA owns the count: a replicas field in the Deployment would reset it on every apply.
    assert "replicas" not in _named(objects, "Deployment", "gateway")["spec"]


def test_deploy_k8s_prod_runs_three_replicas_of_everything() -> None:
    objects = _render("prod")
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in _of_kind(objects, "HorizontalPodAutoscaler")
    }
    for deployment in _of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        replicas = scaled[name]["spec"]["minReplicas"] if name in scaled else deployment["spec"]["replicas"]
        assert replicas >= 3, f"{name} runs {replicas} replicas in prod"
    assert _named(objects, "Cluster", "app-db")["spec"]["instances"] == 3
    assert _named(objects, "RabbitmqCluster", "rabbitmq")["spec"]["replicas"] == 3
    assert not _of_kind(objects, "StatefulSet"), "prod uses the operators, not its own StatefulSets"
    config = next(c for c in _of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("app-env"))
    assert config["data"]["APP_ENV"] == "production"
    assert "@app-db-rw:" in config["data"]["DATABASE_URL"] or "//app-db-rw:" in config["data"]["DATABASE_URL"]


def test_deploy_k8s_dev_runs_its_own_postgres_and_rabbitmq() -> None:
    objects = _render("dev")
    for name in ("postgres", "rabbitmq"):
        assert _named(objects, "StatefulSet", name)["spec"]["replicas"] == 1
        assert _named(objects, "Service", name)
    for deployment in _of_kind(objects, "Deployment"):
        assert deployment["spec"].get("replicas", 1) == 1
    assert _named(objects, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 1
    for name in SERVICES_WITH_DATABASE:
        bootstrap = _named(objects, "Job", f"{name}-bootstrap-db")
        assert _pod_spec(bootstrap)["containers"][0]["command"] == ["python", "-m", name, "bootstrap-db"]


# NetworkPolicy semantics, enough to answer "may pod A open a TCP connection to pod B on port P"
# for pods of one namespace.


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _port_matches(ports: list[Manifest] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        start = entry.get("port")
        if start is None:
            return True
        if isinstance(start, int) and start <= port <= entry.get("endPort", start):
            return True
    return False


def _peer_matches(peers: list[Manifest] | None, labels: Mapping[str, str]) -> bool:
    if not peers:
        return True
    # Same-namespace pod peers only: a namespaceSelector or ipBlock names someone else.
    return any(
        "podSelector" in peer and "namespaceSelector" not in peer and _selects(peer["podSelector"], labels)
        for peer in peers
    )


def _allowed(
    policies: list[Manifest], direction: str, pod: Mapping[str, str], peer: Mapping[str, str], port: int
) -> bool:
    """Whether ``pod``'s policies let ``direction`` traffic with ``peer`` on TCP ``port`` through."""
    relevant = [
        p
        for p in policies
        if _selects(p["spec"]["podSelector"], pod) and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not relevant:
        return True  # a pod no policy isolates accepts everything
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        _peer_matches(rule.get(peers_key), peer) and _port_matches(rule.get("ports"), port, "TCP")
        for policy in relevant
        for rule in policy["spec"].get(key) or []
    )


def _connects(
    policies: list[Manifest], source: Mapping[str, str], target: Mapping[str, str], port: int
) -> bool:
    return _allowed(policies, "Egress", source, target, port) and _allowed(
        policies, "Ingress", target, source, port
    )


def _infrastructure_pod_labels(objects: tuple[Manifest, ...]) -> dict[str, dict[str, str]]:
    """Labels of the Postgres and RabbitMQ pods, whether a StatefulSet or an operator makes them."""
    labels = {s["metadata"]["name"]: _pod_labels(s) for s in _of_kind(objects, "StatefulSet")}
    for cluster in _of_kind(objects, "Cluster"):
        inherited = (cluster["spec"].get("inheritedMetadata") or {}).get("labels") or {}
        labels["postgres"] = {**inherited, "cnpg.io/cluster": cluster["metadata"]["name"]}
    for broker in _of_kind(objects, "RabbitmqCluster"):
        # The RabbitMQ Cluster Operator's pod labels.
        labels["rabbitmq"] = {
            "app.kubernetes.io/name": broker["metadata"]["name"],
            "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq",
        }
    return labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_network_denies_by_default_and_allows_only_the_paths_needed(overlay: str) -> None:
    objects = _render(overlay)
    policies = _of_kind(objects, "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert default_deny, "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)"
    dns = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and any(
            _port_matches(rule.get("ports"), 53, "UDP") and _port_matches(rule.get("ports"), 53, "TCP")
            for rule in p["spec"].get("egress") or []
        )
    ]
    assert dns, "no NetworkPolicy lets every pod reach DNS on 53/UDP and 53/TCP"

    pods = {d["metadata"]["name"]: _pod_labels(d) for d in _of_kind(objects, "Deployment")}
    infra = _infrastructure_pod_labels(objects)
    missing = sorted(set(COMPONENTS) - set(pods))
    assert not missing, f"no Deployment for {missing}"
    for name in SERVICES_WITH_DATABASE:
        # The gateway routes to every service; every service checks tokens against users' JWKS.
        assert _connects(policies, pods["gateway"], pods[name], PORTS[name]), f"gateway -> {name}"
        if name != "users":
            assert _connects(policies, pods[name], pods["users"], PORTS["users"]), f"{name} -> users"
    # Every pod of a service with a database (its API, its migration and bootstrap Jobs).
    for workload in _of_kind(objects, *WORKLOAD_KINDS):
        labels = _pod_labels(workload)
        if labels.get("app.kubernetes.io/name") in SERVICES_WITH_DATABASE:
            where = f"{workload['kind']}/{workload['metadata']['name']}"
            assert _connects(policies, labels, infra["postgres"], 5432), f"{where} -> postgres:5432"
    for name in SERVICES_WITH_DATABASE:
        assert _connects(policies, pods[name], infra["rabbitmq"], 5672), f"{name} -> rabbitmq:5672"
    # And nothing more than asked: the gateway reaches no database, users does not call the gateway.
    assert not _connects(policies, pods["gateway"], infra["postgres"], 5432), "gateway -> postgres"
    assert not _connects(policies, pods["users"], pods["gateway"], PORTS["gateway"]), "users -> gateway"


# --- Prometheus ---------------------------------------------------------------------------------


def _rule_groups() -> list[Manifest]:
    groups: list[Manifest] = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        groups += _load_yaml(path)["groups"]
    return groups


def test_deploy_prometheus_scrapes_every_component_under_its_own_job() -> None:
    config = _load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in COMPONENTS:
        assert name in jobs, f"prometheus.yml has no job {name}"
        targets = [t for static in jobs[name]["static_configs"] for t in static["targets"]]
        # The Compose service name and port; the job label is what rules and dashboards group by.
        assert targets == [f"{name}:{PORTS[name]}"], targets
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"], "prometheus.yml loads no rules"


# The operations issue's list: RED, two-window burn rates, targets, the event flow and realtime.
REQUIRED_ALERTS = frozenset(
    {
        "HttpHighErrorRatio",
        "HttpLatencySLOFastBurn",
        "HttpLatencySLOSlowBurn",
        "TargetDown",
        "OutboxBacklogOld",
        "DeadLetterQueueNotEmpty",
        "EventConsumerDown",
        "RealtimeAllConnectionsLost",
    }
)


def test_deploy_prometheus_alerts_cover_errors_latency_and_targets() -> None:
    alerts = {rule["alert"]: rule for group in _rule_groups() for rule in group["rules"] if "alert" in rule}
    assert set(alerts) >= REQUIRED_ALERTS, sorted(REQUIRED_ALERTS - set(alerts))
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
    # Two windows per burn-rate alert.
    for name in ("HttpLatencySLOFastBurn", "HttpLatencySLOSlowBurn"):
        assert len(re.findall(r"ratio_rate\w+", alerts[name]["expr"])) == 2, name


def test_deploy_prometheus_rules_pass_promtool_check() -> None:
    promtool = require_tool("promtool")
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    result = _run(promtool, "check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_prometheus_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    tests = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "deploy/prometheus/tests has no promtool unit tests"
    result = _run(promtool, "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_prometheus_every_alert_has_a_unit_test() -> None:
    alerts = {rule["alert"] for group in _rule_groups() for rule in group["rules"] if "alert" in rule}
    tested = {
        case["alertname"]
        for path in (PROMETHEUS / "tests").glob("*.yml")
        for test in _load_yaml(path)["tests"]
        for case in test.get("alert_rule_test") or []
        if case.get("exp_alerts")
    }
    assert alerts <= tested, f"alerts no promtool test sees firing: {sorted(alerts - tested)}"


def test_deploy_k8s_prometheus_rule_is_a_copy_of_the_rules_files() -> None:
    rule = _named(_render("prod"), "PrometheusRule", "http-red")
    assert rule["spec"]["groups"] == _rule_groups(), (
        "deploy/k8s/base/monitoring/prometheusrule.yaml differs from deploy/prometheus/rules/*.yml; "
        "copy the groups over (the rules files are the tested source)"
    )


# --- Grafana ------------------------------------------------------------------------------------


def _panels(panels: list[Manifest]) -> Iterator[Manifest]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


# What each dashboard is for, by the expressions its panels must use.
DASHBOARD_NEEDLES = {
    # RED per service, and the calls between components (gateway upstreams, rate limit, breakers).
    "red-per-service.json": (
        "rate(http_requests_total",
        'status=~"5.."',
        "histogram_quantile(0.50",
        "histogram_quantile(0.99",
        "http_request_duration_seconds_bucket",
        "gateway_upstream_request_duration_seconds_bucket",
        "gateway_upstream_errors_total",
        "gateway_rate_limited_total",
        "circuit_breaker_state",
    ),
    "event-flow.json": (
        "outbox_published_total",
        "outbox_pending",
        "outbox_oldest_pending_age_seconds",
        "outbox_relay_lag_seconds_bucket",
        "events_consumed_total",
        "events_retried_total",
        "events_dead_lettered_total",
        "event_dlq_messages",
        "event_consumer_up",
    ),
    "realtime.json": (
        "realtime_connections",
        "realtime_users_online",
        "realtime_frames_sent_total",
        "realtime_disconnects_total",
        "realtime_delivery_lag_seconds_bucket",
        "realtime_listener_up",
    ),
}


def _dashboards() -> dict[str, Manifest]:
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    return {path.name: json.loads(path.read_text()) for path in paths}


def _dashboard_exprs(dashboard: Manifest) -> list[str]:
    return [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets") or []]


def test_deploy_grafana_dashboards_are_json_with_red_panels() -> None:
    datasources = _load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uids = {source["uid"] for source in datasources if source["type"] == "prometheus"}
    dashboards = _dashboards()
    assert set(dashboards) >= set(DASHBOARD_NEEDLES), sorted(set(DASHBOARD_NEEDLES) - set(dashboards))
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards), "two dashboards share a uid"
    for name, dashboard in dashboards.items():
        assert dashboard["uid"], name
        assert dashboard["title"], name
        panels = [p for p in _panels(dashboard["panels"]) if p.get("type") != "row"]
        assert panels, f"{name} has no panels"
        ids = [p["id"] for p in _panels(dashboard["panels"])]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        exprs = " ".join(_dashboard_exprs(dashboard))
        for needle in DASHBOARD_NEEDLES.get(name, ()):
            assert needle in exprs, f"{name}: no panel uses {needle}"
        for panel in panels:
            assert panel["datasource"]["uid"] in uids, f"{name}: {panel['title']} names no provisioned source"
            assert panel.get("targets"), f"{name}: {panel['title']} queries nothing"


def test_deploy_grafana_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel's query, as a recording rule (Grafana's variables filled in)."""
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:query_{n}:check", "expr": expr}
        for n, expr in enumerate(
            expr.replace("$__rate_interval", "5m").replace("$job", "users")
            for dashboard in _dashboards().values()
            for expr in _dashboard_exprs(dashboard)
        )
    ]
    check = tmp_path / "dashboard-queries.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(check))
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_grafana_provisions_the_dashboards_folder() -> None:
    providers = _load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    paths = {provider["options"]["path"] for provider in providers}
    grafana = _compose()["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    for path in paths:
        assert mounts.get(path) == "./deploy/grafana/dashboards", f"{path} is not mounted from the repo"
    assert mounts.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"
