"""NetworkPolicies: deny by default, allow only the paths the system needs."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from .manifests import (
    COMPONENTS,
    OVERLAYS,
    PORTS,
    SERVICES_WITH_DATABASE,
    WORKLOAD_KINDS,
    Manifest,
    of_kind,
    pod_labels,
    render,
    selects,
)

# NetworkPolicy semantics, enough to answer "may pod A open a TCP connection to pod B on port P"
# for pods of one namespace.


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
        "podSelector" in peer and "namespaceSelector" not in peer and selects(peer["podSelector"], labels)
        for peer in peers
    )


def _allowed(
    policies: list[Manifest], direction: str, pod: Mapping[str, str], peer: Mapping[str, str], port: int
) -> bool:
    """Whether ``pod``'s policies let ``direction`` traffic with ``peer`` on TCP ``port`` through."""
    relevant = [
        p
        for p in policies
        if selects(p["spec"]["podSelector"], pod) and direction in p["spec"].get("policyTypes", ["Ingress"])
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
    labels = {s["metadata"]["name"]: pod_labels(s) for s in of_kind(objects, "StatefulSet")}
    for cluster in of_kind(objects, "Cluster"):
        inherited = (cluster["spec"].get("inheritedMetadata") or {}).get("labels") or {}
        labels["postgres"] = {**inherited, "cnpg.io/cluster": cluster["metadata"]["name"]}
    for broker in of_kind(objects, "RabbitmqCluster"):
        # The RabbitMQ Cluster Operator's pod labels.
        labels["rabbitmq"] = {
            "app.kubernetes.io/name": broker["metadata"]["name"],
            "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq",
        }
    return labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_network_denies_by_default_and_allows_only_the_paths_needed(overlay: str) -> None:
    objects = render(overlay)
    policies = of_kind(objects, "NetworkPolicy")
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

    pods = {d["metadata"]["name"]: pod_labels(d) for d in of_kind(objects, "Deployment")}
    infra = _infrastructure_pod_labels(objects)
    missing = sorted(set(COMPONENTS) - set(pods))
    assert not missing, f"no Deployment for {missing}"
    for name in SERVICES_WITH_DATABASE:
        # The gateway routes to every service; every service checks tokens against users' JWKS.
        assert _connects(policies, pods["gateway"], pods[name], PORTS[name]), f"gateway -> {name}"
        if name != "users":
            assert _connects(policies, pods[name], pods["users"], PORTS["users"]), f"{name} -> users"
    # Every pod of a service with a database (its API, its migration and bootstrap Jobs).
    for workload in of_kind(objects, *WORKLOAD_KINDS):
        labels = pod_labels(workload)
        if labels.get("app.kubernetes.io/name") in SERVICES_WITH_DATABASE:
            where = f"{workload['kind']}/{workload['metadata']['name']}"
            assert _connects(policies, labels, infra["postgres"], 5432), f"{where} -> postgres:5432"
    for name in SERVICES_WITH_DATABASE:
        assert _connects(policies, pods[name], infra["rabbitmq"], 5672), f"{name} -> rabbitmq:5672"
    if "graphql" in pods:
        # The gateway routes /graphql to it; it calls every service's public API, and nothing else does.
        assert _connects(policies, pods["gateway"], pods["graphql"], PORTS["graphql"]), "gateway -> graphql"
        for name in SERVICES_WITH_DATABASE:
            assert _connects(policies, pods["graphql"], pods[name], PORTS[name]), f"graphql -> {name}"
        assert not _connects(policies, pods["graphql"], infra["postgres"], 5432), "graphql -> postgres"
        assert not _connects(policies, pods["users"], pods["graphql"], PORTS["graphql"]), "users -> graphql"
    # And nothing more than asked: the gateway reaches no database, users does not call the gateway.
    assert not _connects(policies, pods["gateway"], infra["postgres"], 5432), "gateway -> postgres"
    assert not _connects(policies, pods["users"], pods["gateway"], PORTS["gateway"]), "users -> gateway"
