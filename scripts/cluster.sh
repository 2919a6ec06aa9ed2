#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for tests and the soak run, beside the
# default broker (rabbit@localhost on 5672, never touched by this script).
#
#   scripts/cluster.sh start [--fresh]     # boot a, b, c; join b and c to a (idempotent);
#                                          # --fresh: a cluster that is not all up is wiped first
#   scripts/cluster.sh status              # each node, its ports, running or not, cluster membership
#   scripts/cluster.sh stop [--clean]      # stop the three nodes; --clean also deletes their state
#   scripts/cluster.sh kill NODE           # kill -9 the node's Erlang VM (NODE: a, b, c or rabbit-a@localhost)
#   scripts/cluster.sh restart NODE        # start a killed/stopped node again and wait for it
#   scripts/cluster.sh stop-app NODE       # rabbitmqctl stop_app (VM stays up, node leaves service)
#   scripts/cluster.sh start-app NODE      # rabbitmqctl start_app
#   scripts/cluster.sh memory-alarm NODE on|off  # set off a memory alarm (high watermark 0: the
#                                          # cluster blocks every publishing connection), or
#                                          # clear it (the watermark the node booted with);
#                                          # returns once the node reports the alarm so
#
# Nodes (all on 127.0.0.1, guest/guest, vhost /):
#   rabbit-a@localhost  AMQP 5681  management 15681  distribution 25681
#   rabbit-b@localhost  AMQP 5682  management 15682  distribution 25682
#   rabbit-c@localhost  AMQP 5683  management 15683  distribution 25683
# so AMQP_URL=amqp://guest:guest@127.0.0.1:5681/%2f,amqp://guest:guest@127.0.0.1:5682/%2f,amqp://guest:guest@127.0.0.1:5683/%2f
#
# CLUSTER_VERSION=4.3 drives a second cluster, of RabbitMQ 4.3 (Debian sid's
# package, in the chroot of scripts/brokers.sh, made when missing), beside
# the first one (every command as above):
#   rabbit-a43@localhost AMQP 5745  management 15745  distribution 25745
#   rabbit-b43@localhost AMQP 5746  management 15746  distribution 25746
#   rabbit-c43@localhost AMQP 5747  management 15747  distribution 25747
# with its own epmd on 4745 and its state under /var/lib/rabbitmq/cluster
# inside the chroot.
#
# Made for the Debian/Ubuntu packages of RabbitMQ 3.10+ and run as root (or as
# the rabbitmq user, 3.10 only): the nodes run as the rabbitmq user and share
# the Erlang cookie of their root's /var/lib/rabbitmq/.erlang.cookie. 3.10
# state lives under $CLUSTER_DIR (default /var/tmp/webhook-worker-cluster),
# owned by rabbitmq.
# A node that was killed and restarted rejoins the cluster by itself (its
# membership is in its own metadata directory); nothing has to be re-joined.
#
# Environment: CLUSTER_VERSION (3.10 or 4.3, default 3.10), CLUSTER_DIR,
# BROKERS_DIR, BOOT_TIMEOUT (seconds per wait, default 120), BOOT_ATTEMPTS
# (launches of a node that exits during boot, default 3).
set -euo pipefail

CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/webhook-worker-cluster}
CLUSTER_VERSION=${CLUSTER_VERSION:-3.10}
BROKERS_DIR=${BROKERS_DIR:-/var/tmp/webhook-worker-brokers}
NODES=(a b c)
RMQ_LOG_TAG=cluster.sh
# shellcheck source=scripts/lib/rabbitmq.sh
source "$(dirname "$0")/lib/rabbitmq.sh"

case $CLUSTER_VERSION in
  3.10) SUFFIX='' PORT0=5680 ROOT='' STATE=$CLUSTER_DIR EPMD='' ;;
  4.3) SUFFIX=43 PORT0=5744 ROOT=$BROKERS_DIR/sid STATE=/var/lib/rabbitmq/cluster EPMD=4745 ;;
  *) bad_arg "CLUSTER_VERSION is '$CLUSTER_VERSION': 3.10 or 4.3" ;;
esac

idx() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; *) bad_arg "unknown node '$1' (a, b or c)" ;; esac; }
nodename() { echo "rabbit-$1$SUFFIX@localhost"; }

rmq_spec() {
  local port; port=$((PORT0 + $(idx "$1")))
  RMQ_NAME=$(nodename "$1")
  RMQ_ROOT=$ROOT
  RMQ_DIR=$STATE/$1
  RMQ_AMQP_PORT=$port
  RMQ_MGMT_PORT=$((port + 10000))
  RMQ_DIST_PORT=$((port + 20000))
  RMQ_EPMD_PORT=$EPMD
  # a minority side of a partition pauses instead of diverging (4.3: Raft
  # decides, the key is accepted and ignored)
  RMQ_CONF_EXTRA="cluster_partition_handling = pause_minority"
  # 4.3 keeps a dead node's consumers' messages this long (default 60 s),
  # set as docs/deployment.md recommends where a minute's delay after a
  # node crash matters: the cluster tests that kill a node then wait 10 s
  # for those messages instead of a minute (they count them either way)
  [[ -z $SUFFIX ]] || RMQ_CONF_EXTRA+=$'\n'"consumer_disconnected_timeout = 10000"
}

# NODE argument: a | b | c | rabbit-a | rabbit-a@localhost (rabbit-a43@localhost)
short() {
  local n=${1:-}
  n=${n%@localhost}
  n=${n#rabbit-}
  n=${n%"$SUFFIX"}
  idx "$n" >/dev/null
  echo "$n"
}

ctl() { rmq_ctl "$@"; }

# cluster_status of node $1 as "running: x y z / members: x y z"
membership() {
  local json
  json=$(ctl "$1" cluster_status --formatter json 2>/dev/null) || return 1
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])
members = sorted(set(s.get("disk_nodes", []) + s.get("ram_nodes", [])))
print("members: " + " ".join(members) + " | running: " + " ".join(sorted(s.get("running_nodes", []))))
' "$json"
}

running_members() {  # running nodes as seen from node $1, one a line
  local json
  json=$(ctl "$1" cluster_status --formatter json 2>/dev/null) || return 1
  python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1]).get("running_nodes", [])))' "$json"
}

is_member_of_a() {  # is node $1 a member (disc or ram) of a's cluster?
  local json
  json=$(ctl a cluster_status --formatter json 2>/dev/null) || return 1
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(0 if sys.argv[2] in s.get("disk_nodes", []) + s.get("ram_nodes", []) else 1)' "$json" "$(nodename "$1")"
}

join_to_a() {
  local n=$1 t0=$SECONDS
  log "joining $(nodename "$n") to $(nodename a)"
  ctl "$n" stop_app
  if ! ctl "$n" join_cluster "$(nodename a)" 2>"$ROOT$STATE/$n/log/join.err"; then
    # stale state from an earlier cluster: wipe the node and try again
    log "join failed ($(tr '\n' ' ' <"$ROOT$STATE/$n/log/join.err")); resetting $(nodename "$n")"
    ctl "$n" reset
    ctl "$n" join_cluster "$(nodename a)" || { ctl "$n" start_app || true; rmq_log_tail "$n"; die "join_cluster failed for $(nodename "$n")"; }
  fi
  ctl "$n" start_app || { rmq_log_tail "$n"; die "start_app failed for $(nodename "$n")"; }
  log "$(nodename "$n") joined in $((SECONDS - t0))s"
}

all_clustered() {
  local n r
  for n in "${NODES[@]}"; do rmq_app_running "$n" || return 1; done
  r=$(running_members a) || return 1
  for n in "${NODES[@]}"; do grep -qx "$(nodename "$n")" <<<"$r" || return 1; done
}

one_line_status() {
  local n line=
  for n in "${NODES[@]}"; do line+="$(nodename "$n"):$((PORT0 + $(idx "$n"))) "; done
  echo "cluster up: $line($(membership a))"
}

cmd_start() {
  local fresh=${1:-} t0=$SECONDS n
  [[ -z $fresh || $fresh == --fresh ]] || usage
  [[ -z $ROOT ]] || rmq_chroot_ensure "$ROOT" sid
  [[ -r $ROOT/var/lib/rabbitmq/.erlang.cookie ]] || die "no Erlang cookie at $ROOT/var/lib/rabbitmq/.erlang.cookie (is the rabbitmq-server package installed?)"
  mkdir -p "$ROOT$STATE"
  if all_clustered 2>/dev/null; then
    for n in "${NODES[@]}"; do rmq_plugins_enable "$n"; done
    one_line_status; return 0
  fi
  if [[ $fresh == --fresh ]]; then
    # The tests want a cluster, not the one they left: fresh nodes boot
    # alone (nothing to sync) and join one at a time, which is the most
    # dependable start there is.
    log "the cluster is not all up: wiping it and booting fresh nodes"
    cmd_stop --clean
    mkdir -p "$ROOT$STATE"
  fi
  # Boot every node that is down at once: a node that restarts from a
  # cluster waits for its peers' tables, so they must come up together.
  for n in "${NODES[@]}"; do
    if ! rmq_vm_up "$n"; then log "booting $(nodename "$n")"; rmq_write_config "$n"; rmq_launch "$n"; fi
  done
  rmq_await "${NODES[@]}"
  log "all three nodes booted after $((SECONDS - t0))s"
  for n in b c; do
    if ! is_member_of_a "$n"; then join_to_a "$n"; fi
  done
  for n in "${NODES[@]}"; do rmq_app_running "$n" || ctl "$n" start_app; done
  for n in "${NODES[@]}"; do rmq_plugins_enable "$n"; done
  all_clustered || { for n in "${NODES[@]}"; do rmq_log_tail "$n"; done; die "nodes are up but not all clustered: $(membership a || true)"; }
  one_line_status
  log "start took $((SECONDS - t0))s"
}

cmd_stop() {
  local clean=${1:-} n
  for n in "${NODES[@]}"; do rmq_stop "$n"; done
  if [[ $clean == --clean ]]; then
    rm -rf "$ROOT${STATE:?}"
    log "deleted $ROOT$STATE"
  fi
}

cmd_status() {
  local n
  for n in "${NODES[@]}"; do rmq_status_line "$n"; done
  for n in "${NODES[@]}"; do
    if rmq_app_running "$n"; then
      echo "cluster (as seen from $(nodename "$n")): $(membership "$n")"
      return 0
    fi
  done
  echo "cluster: no node running"
  return 1
}

cmd_restart() {
  local n t0=$SECONDS
  n=$(short "$1")
  if rmq_vm_up "$n"; then
    if rmq_app_running "$n"; then echo "$(nodename "$n") is already running"; return 0; fi
    ctl "$n" start_app
  else
    rmq_write_config "$n"; rmq_launch "$n"
  fi
  rmq_await "$n"
  echo "$(nodename "$n") running after $((SECONDS - t0))s ($(membership "$n"))"
}

cmd_memory_alarm() {
  local n t0=$SECONDS; n=$(short "$1")
  case $2 in
    on) ctl "$n" set_vm_memory_high_watermark 0 ;;
    # The watermark the node booted with, whatever its form in this version.
    off) ctl "$n" eval '{ok, W} = application:get_env(rabbit, vm_memory_high_watermark), vm_memory_monitor:set_vm_memory_high_watermark(W).' >/dev/null ;;
    *) bad_arg "memory-alarm: '$2' is not on or off" ;;
  esac
  # Done when the node itself says so (the management API's view lags by
  # its 5 s statistics interval).
  until [[ $(memory_alarm_state "$n") == "$2" ]]; do
    (( SECONDS - t0 < 30 )) || die "memory-alarm: $(nodename "$n") is not $2 30 s after the change"
    sleep 0.5
  done
  echo "$(nodename "$n"): memory alarm $2"
}

# "on" while node $1 has a local memory alarm, else "off".
memory_alarm_state() {
  local alarms
  alarms=$(ctl "$1" eval 'rabbit_alarm:get_local_alarms().') || return 1
  if [[ $alarms == *"resource_limit,memory"* ]]; then echo on; else echo off; fi
}

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

case ${1:-} in
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status ;;
  kill) [[ $# -eq 2 ]] || usage; n=$(short "$2"); rmq_kill "$n" ;;
  restart) [[ $# -eq 2 ]] || usage; cmd_restart "$2" ;;
  stop-app) [[ $# -eq 2 ]] || usage; n=$(short "$2"); ctl "$n" stop_app; echo "$(nodename "$n"): app stopped" ;;
  start-app) [[ $# -eq 2 ]] || usage; n=$(short "$2"); ctl "$n" start_app; rmq_await "$n"; echo "$(nodename "$n"): app started" ;;
  memory-alarm) [[ $# -eq 3 ]] || usage; cmd_memory_alarm "$2" "$3" ;;
  *) usage ;;
esac
