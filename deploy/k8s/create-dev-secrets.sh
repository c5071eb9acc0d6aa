#!/usr/bin/env bash
# Create the Secrets the dev overlay references, with random values, in the dev namespace.
# Development only: production Secrets come from the team's secret store (README.md).
# Idempotent: a Secret that already exists is left alone (Postgres keeps the password it was
# initialised with, so regenerating it would lock the services out).
#
#   deploy/k8s/create-dev-secrets.sh [namespace]      (default: microservices-dev)
set -euo pipefail

NAMESPACE="${1:-microservices-dev}"
KUBECTL="${KUBECTL:-kubectl}"

random() { openssl rand -hex 24; }

exists() { "$KUBECTL" -n "$NAMESPACE" get secret "$1" >/dev/null 2>&1; }

# create NAME [kubectl create secret generic options...]
create() {
  local name="$1"
  shift
  if exists "$name"; then
    echo "secret/$name exists, kept"
  else
    "$KUBECTL" -n "$NAMESPACE" create secret generic "$name" "$@"
  fi
}

"$KUBECTL" get namespace "$NAMESPACE" >/dev/null 2>&1 || "$KUBECTL" create namespace "$NAMESPACE"

postgres_password="$(random)"
create postgres-admin \
  --from-literal=password="$postgres_password" \
  --from-literal=database-url="postgresql://postgres:${postgres_password}@postgres:5432/app"
# postgres_exporter logs in as the admin in dev (prod: its own pg_monitor role). The stored password:
# postgres-admin may predate this run.
postgres_password="$("$KUBECTL" -n "$NAMESPACE" get secret postgres-admin -o jsonpath='{.data.password}' | base64 -d)"
create postgres-exporter-credentials --type=kubernetes.io/basic-auth \
  --from-literal=username=postgres --from-literal=password="$postgres_password"

rabbitmq_password="$(random)"
if exists rabbitmq-admin; then
  rabbitmq_password="$("$KUBECTL" -n "$NAMESPACE" get secret rabbitmq-admin -o jsonpath='{.data.password}' | base64 -d)"
fi
create rabbitmq-admin \
  --from-literal=username=app \
  --from-literal=password="$rabbitmq_password"

create users-db-credentials --type=kubernetes.io/basic-auth \
  --from-literal=username=users_svc \
  --from-literal=password="$(random)"

# The credential each client service presents on users' /internal/*: in its own Secret and in
# users-secrets/internal-tokens. Kept when the client's Secret exists already.
client_token() {
  if exists "$1-secrets"; then
    "$KUBECTL" -n "$NAMESPACE" get secret "$1-secrets" -o jsonpath='{.data.users-service-token}' | base64 -d
  else
    random
  fi
}
orders_token="$(client_token orders)"
notification_token="$(client_token notification)"
graphql_token="$(client_token graphql)"

key_dir="$(mktemp -d)"
trap 'rm -rf "$key_dir"' EXIT
openssl genpkey -algorithm ed25519 -out "$key_dir/jwt-private-key.pem"
create users-secrets \
  --from-literal=amqp-url="amqp://app:${rabbitmq_password}@rabbitmq:5672/" \
  --from-literal=internal-tokens="${orders_token},${notification_token},${graphql_token}" \
  --from-file=jwt-private-key.pem="$key_dir/jwt-private-key.pem"

create orders-db-credentials --type=kubernetes.io/basic-auth \
  --from-literal=username=orders_svc \
  --from-literal=password="$(random)"

create orders-secrets \
  --from-literal=amqp-url="amqp://app:${rabbitmq_password}@rabbitmq:5672/" \
  --from-literal=users-service-token="$orders_token"

create notification-db-credentials --type=kubernetes.io/basic-auth \
  --from-literal=username=notification_svc \
  --from-literal=password="$(random)"

create notification-secrets \
  --from-literal=amqp-url="amqp://app:${rabbitmq_password}@rabbitmq:5672/" \
  --from-literal=users-service-token="$notification_token"

create realtime-db-credentials --type=kubernetes.io/basic-auth \
  --from-literal=username=realtime_svc \
  --from-literal=password="$(random)"

create realtime-secrets \
  --from-literal=amqp-url="amqp://app:${rabbitmq_password}@rabbitmq:5672/"

create graphql-secrets \
  --from-literal=users-service-token="$graphql_token"

# Optional: users-admin (email, password) for an admin account after start; notification-smtp
# (username, password) for a relay that wants a login (Mailpit does not).
