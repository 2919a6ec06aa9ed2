#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672 with the management
# API on 15672 (the tests read queue arguments and close connections through
# it). Installs rabbitmq-server from Debian's packages when it is missing and
# starts it when it is not running. Idempotent; safe to run every time.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 deadline=$((SECONDS + ${2:-120}))
  until port_open "$port"; do
    if (( SECONDS > deadline )); then log "port $port did not open"; return 1; fi
    sleep 1
  done
}

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  log "installing rabbitmq-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq rabbitmq-server >/dev/null
fi

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  log "starting rabbitmq-server"
  rabbitmq-server -detached
  deadline=$((SECONDS + 180))
  until rabbitmq-diagnostics -q ping >/dev/null 2>&1; do
    if (( SECONDS > deadline )); then log "RabbitMQ did not start"; exit 1; fi
    sleep 2
  done
fi
rabbitmqctl await_startup >/dev/null 2>&1 || true
wait_port 5672 120

if ! port_open 15672; then
  log "enabling rabbitmq_management"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_port 15672 120
fi
# Sharded topologies (WEBHOOK_SHARDS above 1) need the consistent-hash
# exchange. Named together with the management plugin: `rabbitmq-plugins
# enable` makes the node run exactly what its enabled_plugins file lists,
# so naming one alone would stop the other when the file lacks it.
if ! rabbitmq-plugins -q is_enabled rabbitmq_consistent_hash_exchange >/dev/null 2>&1; then
  log "enabling rabbitmq_consistent_hash_exchange"
  rabbitmq-plugins enable rabbitmq_management rabbitmq_consistent_hash_exchange >/dev/null
fi
log "RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?') is up (5672, management on 15672)"
