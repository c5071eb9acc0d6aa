"""docker-compose.yml: every component and the infrastructure, for development only."""

from __future__ import annotations

import re

from shared.testing.tools import require_tool

from .manifests import (
    COMPONENTS,
    COMPOSE_FILE,
    INFRASTRUCTURE,
    OBSERVABILITY,
    PORTS,
    SECRET_NAME,
    SERVICES_WITH_DATABASE,
    Manifest,
    compose_file,
    module,
    run,
)


def _command(service: Manifest) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _compose_service(name: str) -> Manifest:
    services: Manifest = compose_file()["services"]
    assert name in services, f"docker-compose.yml has no service {name} (copy the orders block)"
    service: Manifest = services[name]
    return service


def test_deploy_compose_file_passes_the_compose_spec_schema() -> None:
    result = run(
        require_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_compose_runs_every_component_and_the_infrastructure() -> None:
    services = set(compose_file()["services"])
    missing = sorted({*COMPONENTS, *INFRASTRUCTURE, *OBSERVABILITY} - services)
    assert not missing, f"docker-compose.yml lacks {missing}"
    for name in COMPONENTS:
        assert _command(compose_file()["services"][name]) == ["python", "-m", module(name), "serve"]


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
    for name, service in compose_file()["services"].items():
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
