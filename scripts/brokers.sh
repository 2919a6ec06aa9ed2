#!/usr/bin/env bash
# The RabbitMQ versions the worker supports besides the default node: 4.0
# (Debian trixie's rabbitmq-server) and 4.3 (Debian sid's), each in its own
# Debian chroot, with its own node name, ports and epmd, beside the default
# 3.10 node (rabbit@localhost on 5672, never touched by this script).
#
#   scripts/brokers.sh start [4.0|4.3|all]   # make the chroot if missing, boot the node (idempotent)
#   scripts/brokers.sh stop [4.0|4.3|all]    # stop the node (the chroot and its state stay)
#   scripts/brokers.sh status [4.0|4.3|all]  # ports, running or not, version
#   scripts/brokers.sh env VERSION           # the tests' environment for VERSION (3.10 too):
#                                            #   AMQP_URL=... RABBITMQ_MANAGEMENT_URL=...
#
# Nodes (127.0.0.1 only, guest/guest, vhost /, management plugin enabled):
#   3.10  rabbit@localhost     AMQP 5672  management 15672  (the machine's own node, scripts/ensure-rabbitmq.sh)
#   4.0   rabbit-40@localhost  AMQP 5740  management 15740  dist 25740  epmd 4740  chroot trixie
#   4.3   rabbit-43@localhost  AMQP 5743  management 15743  dist 25743  epmd 4743  chroot sid
#
# A chroot is made with `debootstrap --variant=minbase --include=rabbitmq-server
# SUITE DIR MIRROR` (about 40 s; the mirror is the one the machine's apt sources
# name, or $DEBIAN_MIRROR), gets this machine's /etc/hosts and /proc, /sys,
# /dev mounted. The node's state is /var/lib/rabbitmq/webhook-worker inside it.
# Run as root.
#
# Environment: BROKERS_DIR (chroots, default /var/tmp/webhook-worker-brokers),
# DEBIAN_MIRROR, BOOT_TIMEOUT (seconds, default 120), RMQ_EXTRA_ERL_ARGS (Erlang
# VM flags added to the node's, e.g. "+sbwt medium"; read at start).
set -euo pipefail

RMQ_LOG_TAG=brokers.sh
# shellcheck source=scripts/lib/rabbitmq.sh
source "$(dirname "$0")/lib/rabbitmq.sh"

BROKERS_DIR=${BROKERS_DIR:-/var/tmp/webhook-worker-brokers}
VERSIONS=(4.0 4.3)

suite() { case $1 in 4.0) echo trixie ;; 4.3) echo sid ;; *) bad_arg "unknown version '$1' (4.0, 4.3 or all)" ;; esac; }
short() { echo "${1//./}"; } # 4.0 -> 40

rmq_spec() {
  local v; v=$(short "$1")
  RMQ_NAME=rabbit-$v@localhost
  RMQ_ROOT=$BROKERS_DIR/$(suite "$1")
  RMQ_DIR=/var/lib/rabbitmq/webhook-worker
  RMQ_AMQP_PORT=57$v
  RMQ_MGMT_PORT=157$v
  RMQ_DIST_PORT=257$v
  RMQ_EPMD_PORT=47$v
  RMQ_CONF_EXTRA=
}

# Sets SELECTED to the versions $1 names (default all). Not called in a
# command substitution, so a bad version exits the script (2).
versions() {
  case ${1:-all} in
    all) SELECTED=("${VERSIONS[@]}") ;;
    *) suite "$1" >/dev/null; SELECTED=("$1") ;;
  esac
}

cmd_start() {
  local v t0=$SECONDS booting=()
  versions "${1:-}"
  for v in "${SELECTED[@]}"; do
    rmq_chroot_ensure "$BROKERS_DIR/$(suite "$v")" "$(suite "$v")"
    if rmq_vm_up "$v"; then
      rmq_app_running "$v" || rmq_ctl "$v" start_app
    else
      log "booting RabbitMQ $v (node rabbit-$(short "$v")@localhost)"
      rmq_write_config "$v"
      rmq_launch "$v"
    fi
    booting+=("$v")
  done
  rmq_await "${booting[@]}"
  for v in "${booting[@]}"; do rmq_plugins_enable "$v"; rmq_status_line "$v"; done
  log "start took $((SECONDS - t0))s"
}

cmd_env() {
  local v=${1:-}
  case $v in
    3.10) echo "AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:15672" ;;
    *)
      suite "$v" >/dev/null
      echo "AMQP_URL=amqp://guest:guest@127.0.0.1:57$(short "$v")/%2f RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:157$(short "$v")"
      ;;
  esac
}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

case ${1:-} in
  start) [[ $# -le 2 ]] || usage; cmd_start "${2:-all}" ;;
  stop) [[ $# -le 2 ]] || usage; versions "${2:-all}"; for v in "${SELECTED[@]}"; do rmq_stop "$v"; done ;;
  status)
    [[ $# -le 2 ]] || usage
    rc=0
    versions "${2:-all}"
    for v in "${SELECTED[@]}"; do
      rmq_status_line "$v"
      rmq_app_running "$v" || rc=1
    done
    exit "$rc"
    ;;
  env) [[ $# -eq 2 ]] || usage; cmd_env "$2" ;;
  *) usage ;;
esac
