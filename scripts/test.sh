#!/usr/bin/env bash
# The test command: starts the broker and the local cluster if needed, then
# runs every test (unit, property and integration tests against the real RabbitMQ).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-rabbitmq.sh
# tests/it/cluster.rs needs the local three-node cluster (a few seconds when it
# is already up, 25-50 s to boot).
scripts/cluster.sh start
exec cargo test --locked "$@"
