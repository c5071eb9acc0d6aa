# Every install step lives here: a fresh clone needs only python3 (3.11+), make, Postgres and RabbitMQ.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install run test test-under-load test-unit lint format bench dashboards infra up down clean apt-bench apt-test

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced ## Install every package and the dev tools into .venv (from uv.lock)

run: install ## Start the whole system in the foreground (Ctrl-C stops it)
	$(BIN)/python -m shared.devstack

apt-test: ## Debian tools some tests use (promtool, chromium); skipped quietly where apt is not available
	@missing="$$(command -v promtool >/dev/null || echo prometheus) $$(command -v chromium >/dev/null || echo chromium)"; \
	if [ -n "$${missing// /}" ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  service prometheus stop >/dev/null 2>&1; \
	fi; true

test: install apt-test ## Run the whole suite against real Postgres and RabbitMQ
	$(BIN)/python -m pytest

test-under-load: ## The whole suite 3 times in a row while two busy loops hold both cores (no test may depend on a quiet machine)
	@python3 -c 'while True: pass' & b1=$$!; python3 -c 'while True: pass' & b2=$$!; \
	trap 'kill $$b1 $$b2' EXIT; \
	for run in 1 2 3; do echo "test-under-load: run $$run"; $(MAKE) --no-print-directory test || exit 1; done

test-unit: install ## Only the tests that need no infrastructure
	$(BIN)/python -m pytest -m "not integration and not system"

lint: install ## ruff and mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

apt-bench: ## Debian tools the benches use: wrk, nginx, and prometheus for make dashboards
	@missing="$$(command -v wrk >/dev/null || echo wrk) $$(command -v nginx >/dev/null || echo nginx) $$(command -v prometheus >/dev/null || echo prometheus)"; \
	missing="$$(echo $$missing)"; \
	if [ -n "$$missing" ]; then \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || { echo "make bench needs $$missing (apt-get install $$missing)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  service prometheus stop >/dev/null 2>&1; \
	fi; true

bench: install apt-bench ## The benchmarks: prints a table of figures per part
	$(BIN)/python -m bench.gateway_bench
	$(BIN)/python -m bench.transport_bench
	$(BIN)/python -m bench.orders_bench
	$(BIN)/python -m bench.notification_bench
	$(BIN)/python -m bench.realtime_bench
	$(BIN)/python -m bench.jobs_bench
	$(BIN)/python -m bench.graphql_bench
	$(BIN)/python -m bench.rooms_bench
	$(BIN)/python services/realtime/bench/connections.py --connections 10000 --users 1000

dashboards: install apt-bench ## Draw the Grafana dashboards from a bench run into deploy/grafana/images
	$(BIN)/python -m bench.dashboards

# The compose file publishes no host port; these targets ask for the developer's ports on 127.0.0.1.
COMPOSE := docker compose -f docker-compose.yml -f deploy/docker/compose.ports.yml

infra: ## Postgres, RabbitMQ and the mail catcher in Docker
	$(COMPOSE) up -d --wait postgres rabbitmq mailpit

up: ## The whole stack in Docker Compose (add --profile observability for Prometheus and Grafana)
	$(COMPOSE) up -d --build --wait

down: ## Stop the Compose stack
	$(COMPOSE) --profile observability down

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
