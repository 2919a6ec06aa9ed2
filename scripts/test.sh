#!/usr/bin/env bash
# The test command: starts the broker and the local cluster if needed, then
# runs every test (unit, property and integration tests against the real RabbitMQ).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-rabbitmq.sh
# Proxies and the Standard Webhooks reference library of the egress tests.
scripts/egress.sh deps
# tests/it/cluster.rs needs the local three-node cluster: kept when it is all
# up (a few seconds), else wiped and booted from fresh nodes (25-50 s).
scripts/cluster.sh start --fresh
exec cargo test --locked "$@"
