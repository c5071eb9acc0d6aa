"""The Kubernetes overlays: valid for the oldest supported release, secure pods, probes, budgets,
replicas and what each overlay brings along."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.testing.tools import require_tool

from .manifests import (
    COMPONENTS,
    CRD_KINDS,
    CREDENTIAL_URL,
    KUBERNETES_VERSION,
    OVERLAYS,
    PORTS,
    SECRET_NAME,
    SERVICES_WITH_DATABASE,
    UVICORN_GRACEFUL_SECONDS,
    WORKLOAD_KINDS,
    Manifest,
    containers,
    module,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    run,
    selects,
)


def _pod_policy_violations(workload: Manifest, *, strict: bool) -> list[str]:
    """What breaks the project's pod policy; ``strict`` adds what only our own images can promise."""
    where = f"{workload['kind']}/{workload['metadata']['name']}"
    pod = pod_spec(workload)
    pod_security = pod.get("securityContext") or {}
    problems: list[str] = []
    if strict and pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken is not false")
    tmp_volumes = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    for container in containers(pod):
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
    objects = render(overlay)
    plain = [obj for obj in objects if obj["kind"] not in CRD_KINDS]
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(plain))
    result = run(
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
    objects = render(overlay)
    for monitor in of_kind(objects, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"], monitor["metadata"]["name"]
        assert all(e["port"] and e["path"].startswith("/metrics") for e in monitor["spec"]["endpoints"])
    for rule in of_kind(objects, "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for cluster in of_kind(objects, "Cluster"):
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        assert cluster["spec"]["storage"]["size"]
    for broker in of_kind(objects, "RabbitmqCluster"):
        assert broker["apiVersion"] == "rabbitmq.com/v1beta1"
    unexpected = {obj["kind"] for obj in objects} & CRD_KINDS - {
        "ServiceMonitor",
        "PrometheusRule",
        *(("Cluster", "ScheduledBackup", "RabbitmqCluster") if overlay == "prod" else ()),
    }
    assert not unexpected, f"{overlay} renders {unexpected}"


def test_deploy_k8s_prod_postgres_is_backed_up_continuously_and_nightly() -> None:
    objects = render("prod")
    backup = named(objects, "Cluster", "app-db")["spec"]["backup"]
    store = backup["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    assert backup["retentionPolicy"]
    # The object store's credentials come from a Secret, never from the manifest.
    for key in ("accessKeyId", "secretAccessKey"):
        ref = store["s3Credentials"][key]
        assert set(ref) == {"name", "key"}, ref
    assert store["wal"]["compression"]
    scheduled = named(objects, "ScheduledBackup", "app-db-nightly")["spec"]
    assert scheduled["cluster"] == {"name": "app-db"}
    assert scheduled["method"] == "barmanObjectStore"
    assert len(scheduled["schedule"].split()) == 6, "CloudNativePG schedules have six fields, seconds first"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_workloads_follow_the_pod_security_policy(overlay: str) -> None:
    objects = render(overlay)
    problems = [
        problem
        for workload in of_kind(objects, *WORKLOAD_KINDS)
        for problem in _pod_policy_violations(workload, strict=True)
    ]
    # Third-party StatefulSets (dev Postgres and RabbitMQ) meet the restricted Pod Security profile.
    problems += [
        problem
        for workload in of_kind(objects, "StatefulSet")
        for problem in _pod_policy_violations(workload, strict=False)
    ]
    assert not problems, "\n".join(problems)
    for namespace in of_kind(objects, "Namespace"):
        labels = namespace["metadata"].get("labels") or {}
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_deployments_probe_health_and_drain_gracefully(overlay: str) -> None:
    objects = render(overlay)
    for name in COMPONENTS:
        deployment = named(objects, "Deployment", name)
        pod = pod_spec(deployment)
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
    objects = render(overlay)
    assert not of_kind(objects, "Secret"), "Secrets are created out of band (deploy/k8s/README.md)"
    problems: list[str] = []
    for workload in of_kind(objects, *WORKLOAD_KINDS, "StatefulSet"):
        for container in containers(pod_spec(workload)):
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            problems += _env_problems(where, container.get("env") or [])
    for config in of_kind(objects, "ConfigMap"):
        where = f"ConfigMap/{config['metadata']['name']}"
        problems += _env_problems(where, [{"name": k, "value": v} for k, v in config["data"].items()])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_deploys_every_component_with_a_budget_and_monitoring(overlay: str) -> None:
    objects = render(overlay)
    budgets = of_kind(objects, "PodDisruptionBudget")
    monitors = of_kind(objects, "ServiceMonitor")
    for name in COMPONENTS:
        deployment = named(objects, "Deployment", name)
        labels = pod_labels(deployment)
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command == ["python", "-m", module(name), "serve"]
        assert any(selects(b["spec"]["selector"], labels) for b in budgets), f"no PDB covers {name}"
        service = named(objects, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items(), f"Service {name} misses its pods"
        assert service["spec"]["ports"][0]["port"] == PORTS[name]
        service_labels = service["metadata"].get("labels") or {}
        assert any(selects(m["spec"]["selector"], service_labels) for m in monitors), (
            f"no ServiceMonitor scrapes {name}"
        )
    for name in SERVICES_WITH_DATABASE:
        # A new version migrates before it serves: an init container runs before every server container
        # starts, with the pod's own image (so the schema matches the code), under migrate's advisory lock.
        pod = pod_spec(named(objects, "Deployment", name))
        init = pod.get("initContainers") or []
        assert [c["command"] for c in init] == [["python", "-m", name, "migrate"]], f"{name}: {init}"
        assert init[0]["image"] == pod["containers"][0]["image"], name
    # And nothing to delete by hand before a release: no immutable migration Job.
    leftover = [
        j["metadata"]["name"] for j in of_kind(objects, "Job") if j["metadata"]["name"].endswith("-migrate")
    ]
    assert not leftover, leftover


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_gateway_scales_with_a_horizontal_pod_autoscaler(overlay: str) -> None:
    objects = render(overlay)
    hpa = named(objects, "HorizontalPodAutoscaler", "gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The HPA owns the count: a replicas field in the Deployment would reset it on every apply.
    assert "replicas" not in named(objects, "Deployment", "gateway")["spec"]


def test_deploy_k8s_prod_runs_three_replicas_of_everything() -> None:
    objects = render("prod")
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(objects, "HorizontalPodAutoscaler")
    }
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        replicas = scaled[name]["spec"]["minReplicas"] if name in scaled else deployment["spec"]["replicas"]
        # An exporter serves Prometheus alone, which retries; more replicas would only query the database
        # more often (a missed scrape pages through MicroservicesTargetDown).
        if (
            deployment["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
            == "exporter"
        ):
            assert replicas == 1, name
            continue
        assert replicas >= 3, f"{name} runs {replicas} replicas in prod"
    assert named(objects, "Cluster", "app-db")["spec"]["instances"] == 3
    assert named(objects, "RabbitmqCluster", "rabbitmq")["spec"]["replicas"] == 3
    assert not of_kind(objects, "StatefulSet"), "prod uses the operators, not its own StatefulSets"
    config = next(c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("app-env"))
    assert config["data"]["APP_ENV"] == "production"
    assert "@app-db-rw:" in config["data"]["DATABASE_URL"] or "//app-db-rw:" in config["data"]["DATABASE_URL"]


def test_deploy_k8s_dev_runs_its_own_postgres_and_rabbitmq() -> None:
    objects = render("dev")
    for name in ("postgres", "rabbitmq"):
        assert named(objects, "StatefulSet", name)["spec"]["replicas"] == 1
        assert named(objects, "Service", name)
    for deployment in of_kind(objects, "Deployment"):
        assert deployment["spec"].get("replicas", 1) == 1
    assert named(objects, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 1
    for name in SERVICES_WITH_DATABASE:
        bootstrap = named(objects, "Job", f"{name}-bootstrap-db")
        assert pod_spec(bootstrap)["containers"][0]["command"] == ["python", "-m", name, "bootstrap-db"]
