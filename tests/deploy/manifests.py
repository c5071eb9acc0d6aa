"""What the deploy checks share: where things are, the contract's components and ports, and the
Kubernetes objects an overlay renders to (kubectl kustomize, run once per overlay)."""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
CRD_KINDS = frozenset(
    {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Cluster", "ScheduledBackup", "RabbitmqCluster"}
)
WORKLOAD_KINDS = frozenset({"Deployment", "Job", "CronJob"})

# CONTRACT section 1.
PORTS = {
    "gateway": 8000,
    "users": 8001,
    "orders": 8002,
    "notification": 8003,
    "realtime": 8004,
    "graphql": 8005,
}
# The package ``python -m`` runs where it is not the component's name (``graphql`` is graphql-core's).
MODULES = {"graphql": "graphql_api"}
# Components without a database of their own (no bootstrap or migration, no Postgres or RabbitMQ).
STATELESS = frozenset({"gateway", "graphql"})
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
    return [p.name for p in packages if (p / "src" / module(p.name) / "__main__.py").is_file()]


def module(name: str) -> str:
    return MODULES.get(name, name)


COMPONENTS = _components()
SERVICES_WITH_DATABASE = [name for name in COMPONENTS if name not in STATELESS]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def render(overlay: str) -> tuple[Manifest, ...]:
    result = run(require_tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay))
    # A stale dev patch (rules added or moved) fails its `test` ops: say how to regenerate it.
    assert result.returncode == 0, (
        f"{result.stderr}\n(after changing rules: .venv/bin/python deploy/prometheus/sync.py)"
    )
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: tuple[Manifest, ...], *kinds: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] in kinds]


def named(objects: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: Manifest = spec["template"]["spec"]
    return pod


def pod_labels(workload: Manifest) -> dict[str, str]:
    spec: Manifest = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


def containers(pod: Manifest) -> Iterator[Manifest]:
    yield from pod.get("initContainers") or []
    yield from pod["containers"]


@functools.cache
def compose_file() -> Manifest:
    compose: Manifest = load_yaml(COMPOSE_FILE)
    return compose


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
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
