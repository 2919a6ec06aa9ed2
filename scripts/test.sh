#!/usr/bin/env bash
# The test command: starts the broker if needed, then runs every test
# (unit, property and integration tests against the real RabbitMQ).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-rabbitmq.sh
exec cargo test --locked "$@"
