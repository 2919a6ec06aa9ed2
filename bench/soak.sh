#!/usr/bin/env bash
# Soak: drain EVENTS events through the local three-node cluster
# (scripts/cluster.sh) while nodes are killed and restarted, workers are
# SIGKILLed and SIGTERMed and their broker connections are closed; then report
# published, delivered, lost, duplicates, parked and the longest delivery gap.
# Not part of CI: with the defaults it runs for 15-20 minutes.
#
#   cargo build --release && bench/soak.sh
#   EVENTS=20000 DURATION=120 bench/soak.sh        # a shorter one
#
# Needs root (scripts/cluster.sh), python3, curl and target/release/webhook-worker.
# Pieces:
#   receiver   bench/soak_receiver.py on 127.0.0.1:$RECEIVER_PORT records every
#              delivery's X-Comm100-Delivery-Id and arrival time
#   workers    $WORKERS x `webhook-worker run --amqp-url A,B,C` (each worker's
#              list starts at another node), metrics on $METRICS_PORT_BASE+i
#   publisher  `webhook-worker publish --file -` in chunks of $CHUNK events with
#              ids $PREFIX-c<chunk>-a<try>-<n>; a chunk counts as published
#              only when the publisher exits 0 having had every event
#              confirmed; otherwise (its node died, its connection was closed)
#              the chunk is published again under new ids, and the ids of the
#              failed try are "unconfirmed": delivering them is not a
#              duplicate, missing them is not a loss
#   chaos      one action at a time, every CHAOS_MIN..CHAOS_MAX seconds, each
#              undone before the next (so at most one node is down: a quorum
#              queue keeps its majority):
#                kill-node         kill -9 a node, restart it after 1..NODE_DOWN_MAX s
#                stop-app          rabbitmqctl stop_app, start_app after 1..NODE_DOWN_MAX s
#                sigkill-worker    kill -9 a worker, restart it after 0..WORKER_DOWN_MAX s
#                sigterm-worker    SIGTERM a worker, wait for it to exit (counts
#                                  exits over TERM_TIMEOUT s), restart it
#                close-connection  DELETE /api/connections/NAME of one of a
#                                  worker's two connections (consuming or
#                                  publishing) through the management API
# After DURATION seconds (and once publishing is done) the chaos stops, every
# node and worker is brought back, and the run waits until every published id
# has arrived, or the queues are empty and nothing arrived for QUIET seconds,
# or DRAIN_TIMEOUT. Messages parked in $PREFIX.dead are read back (requeued)
# and their ids subtracted from the missing ones: lost = missing - parked.
#
# Output: a table on stdout and $OUT_DIR/report.json; logs of every process,
# chaos.log and the receiver's per-delivery log in $OUT_DIR. Exit status 1 when
# anything was lost or a worker exited on its own.
#
# Settings (environment):
#   EVENTS=100000 WORKERS=3 DURATION=600 (seconds of chaos)
#   RATE=auto (events/s; auto spreads EVENTS over 80% of DURATION) CHUNK=1000
#   CHAOS_MIN=5 CHAOS_MAX=20 NODE_DOWN_MAX=30 WORKER_DOWN_MAX=5 TERM_TIMEOUT=45
#   ACTIONS="kill-node stop-app sigkill-worker sigterm-worker close-connection"
#     (a name listed twice is picked twice as often)
#   DRAIN_TIMEOUT=600 QUIET=30 FAIL_RATE=0 (receiver answers 500 to this fraction)
#   RETRY_SCHEDULE="1s*3,5s*3,30s*3" MAX_AGE=1h DELIVERY_LIMIT=10 (worker settings)
#   PREFIX=soak<unix time> SEED=<pid> RECEIVER_PORT=18080 METRICS_PORT_BASE=19100
#   BIN=target/release/webhook-worker CLUSTER=scripts/cluster.sh
#   CLUSTER_VERSION=3.10 (4.3: the 4.3 cluster, `CLUSTER_VERSION=4.3 scripts/cluster.sh start`)
#   OUT_DIR=target/soak/<UTC time> CLEANUP=0 (1: delete $PREFIX's queues at the end)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EVENTS=${EVENTS:-100000}
WORKERS=${WORKERS:-3}
DURATION=${DURATION:-600}
RATE=${RATE:-auto}
CHUNK=${CHUNK:-1000}
CHAOS_MIN=${CHAOS_MIN:-5}
CHAOS_MAX=${CHAOS_MAX:-20}
NODE_DOWN_MAX=${NODE_DOWN_MAX:-30}
WORKER_DOWN_MAX=${WORKER_DOWN_MAX:-5}
TERM_TIMEOUT=${TERM_TIMEOUT:-45}
ACTIONS=${ACTIONS:-"kill-node stop-app sigkill-worker sigterm-worker close-connection"}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
QUIET=${QUIET:-30}
FAIL_RATE=${FAIL_RATE:-0}
RETRY_SCHEDULE=${RETRY_SCHEDULE:-"1s*3,5s*3,30s*3"}
MAX_AGE=${MAX_AGE:-1h}
DELIVERY_LIMIT=${DELIVERY_LIMIT:-10}
PREFIX=${PREFIX:-soak$(date +%s)}
SEED=${SEED:-$$}
RECEIVER_PORT=${RECEIVER_PORT:-18080}
METRICS_PORT_BASE=${METRICS_PORT_BASE:-19100}
BIN=${BIN:-target/release/webhook-worker}
CLUSTER=${CLUSTER:-scripts/cluster.sh}
OUT_DIR=${OUT_DIR:-target/soak/$(date -u +%Y-%m-%dT%H%M%SZ)}
CLEANUP=${CLEANUP:-0}

NODES=(a b c)
# CLUSTER_VERSION=4.3: the RabbitMQ 4.3 cluster of scripts/cluster.sh
case ${CLUSTER_VERSION:-3.10} in
  4.3) AMQP_PORTS=(5745 5746 5747) MGMT_PORTS=(15745 15746 15747) ;;
  *) AMQP_PORTS=(5681 5682 5683) MGMT_PORTS=(15681 15682 15683) ;;
esac
MGMT_AUTH=guest:guest
RANDOM=$SEED
read -r -a ACTION_LIST <<<"$ACTIONS"

log() { printf '%s soak: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 2; }
rand() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }   # rand MIN MAX, inclusive

# --- preflight -------------------------------------------------------------
[[ -x $BIN ]] || die "$BIN not found: cargo build --release first"
[[ -x $CLUSTER ]] || die "$CLUSTER not found"
command -v python3 >/dev/null || die "python3 is needed (bench/soak_receiver.py)"
command -v curl >/dev/null || die "curl is needed"
((EVENTS > 0 && WORKERS > 0 && CHUNK > 0)) || die "EVENTS, WORKERS and CHUNK must be positive"
for a in "${ACTION_LIST[@]}"; do
  case $a in kill-node | stop-app | sigkill-worker | sigterm-worker | close-connection) ;;
    *) die "unknown action '$a' in ACTIONS" ;; esac
done
if [[ $RATE == auto ]]; then
  RATE=$(awk -v e="$EVENTS" -v d="$DURATION" 'BEGIN { r = e / (d * 0.8); printf "%.1f", (r < 1 ? 1 : r) }')
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
EXPECTED=$OUT_DIR/expected.txt       # "ID_PREFIX COUNT": confirmed chunks
UNCONFIRMED=$OUT_DIR/unconfirmed.txt # chunks whose publisher failed
PARKED=$OUT_DIR/parked.txt
CHAOS_LOG=$OUT_DIR/chaos.log
: >"$EXPECTED"; : >"$UNCONFIRMED"; : >"$PARKED"; : >"$CHAOS_LOG"

# Every worker gets all three nodes, starting at a different one.
urls_from() {
  local start=$1 i out=
  for i in 0 1 2; do
    out+=${out:+,}amqp://guest:guest@127.0.0.1:${AMQP_PORTS[$(((start + i) % 3))]}/%2f
  done
  echo "$out"
}

mgmt() {  # mgmt METHOD PATH [curl args...]: try each node's management API in turn
  local method=$1 path=$2 port
  shift 2
  for port in "${MGMT_PORTS[@]}"; do
    if curl -sf -m 10 -u "$MGMT_AUTH" -X "$method" "http://127.0.0.1:$port/api$path" "$@"; then return 0; fi
  done
  return 1
}
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# --- processes -------------------------------------------------------------
RECEIVER_PID=
PUBLISHER_PID=
declare -a WPID
declare -A COUNT=()
UNEXPECTED_EXITS=0

start_receiver() {
  python3 bench/soak_receiver.py --port "$RECEIVER_PORT" --log "$OUT_DIR/deliveries.log" \
    --fail-rate "$FAIL_RATE" >"$OUT_DIR/receiver.log" 2>&1 &
  RECEIVER_PID=$!
  local i
  for i in $(seq 50); do
    curl -sf -m 1 "http://127.0.0.1:$RECEIVER_PORT/healthz" >/dev/null && return 0
    kill -0 "$RECEIVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$OUT_DIR/receiver.log" >&2
  die "the receiver did not start on port $RECEIVER_PORT"
}

start_worker() {
  local i=$1
  WEBHOOK_RETRY_SCHEDULE=$RETRY_SCHEDULE WEBHOOK_MAX_AGE=$MAX_AGE WEBHOOK_DELIVERY_LIMIT=$DELIVERY_LIMIT \
    RUST_LOG=${RUST_LOG:-info} \
    "$BIN" run --amqp-url "$(urls_from "$i")" --prefix "$PREFIX" --allow-private-targets \
    --metrics-addr "127.0.0.1:$((METRICS_PORT_BASE + i))" >>"$OUT_DIR/worker-$i.log" 2>&1 &
  WPID[i]=$!
  echo "$(date -u +%FT%T) started pid ${WPID[i]}" >>"$OUT_DIR/worker-$i.events"
}

worker_ready() { curl -sf -m 2 "http://127.0.0.1:$((METRICS_PORT_BASE + $1))/readyz" >/dev/null; }

# Restart any worker that exited without being told to (and count it).
reap_workers() {
  local i rc
  for ((i = 0; i < WORKERS; i++)); do
    if ! kill -0 "${WPID[i]}" 2>/dev/null; then
      rc=0; wait "${WPID[i]}" 2>/dev/null || rc=$?
      UNEXPECTED_EXITS=$((UNEXPECTED_EXITS + 1))
      log "worker $i (pid ${WPID[i]}) exited on its own with status $rc; restarting it"
      echo "$(date -u +%FT%T) worker $i exited on its own, status $rc" >>"$CHAOS_LOG"
      start_worker "$i"
    fi
  done
}

# One chunk of JSON-lines events: ids ID_PREFIX-0 .. ID_PREFIX-(N-1).
gen_chunk() {
  awk -v p="$1" -v n="$2" -v u="http://127.0.0.1:$RECEIVER_PORT/hook" 'BEGIN {
    for (i = 0; i < n; i++)
      printf "{\"id\":\"%s-%d\",\"webhook\":101,\"url\":\"%s\",\"site_id\":10000,\"data\":{\"visitor\":{\"id\":%d,\"name\":\"soak\"}}}\n", p, i, u, i
  }'
}

# Runs in the background: publishes every chunk until it is confirmed.
publisher_loop() {
  local child='' k size try id out n
  trap '[[ -n $child ]] && kill "$child" 2>/dev/null; exit 0' TERM
  for ((k = 0; k * CHUNK < EVENTS; k++)); do
    size=$((EVENTS - k * CHUNK < CHUNK ? EVENTS - k * CHUNK : CHUNK))
    for ((try = 0; ; try++)); do
      id=$PREFIX-c$k-a$try
      out=$OUT_DIR/publish.log
      gen_chunk "$id" "$size" | "$BIN" publish --amqp-url "$(urls_from $((k % 3)))" --prefix "$PREFIX" \
        --file - --rate "$RATE" >"$OUT_DIR/publish.last" 2>&1 &
      child=$!
      if wait "$child"; then
        n=$(sed -n 's/^published \([0-9]*\) event.*/\1/p' "$OUT_DIR/publish.last")
      else
        n=
      fi
      child=
      { echo "== $id ($size events): ${n:-failed}"; cat "$OUT_DIR/publish.last"; } >>"$out"
      if [[ $n == "$size" ]]; then
        echo "$id $size" >>"$EXPECTED"
        break
      fi
      echo "$id $size" >>"$UNCONFIRMED"
      sleep 1
    done
  done
}

# Deletes the prefix's queues and exchange (after the workers stopped: a
# running worker would declare them again).
delete_topology() {
  local q
  for q in $(mgmt GET "/queues/%2f?columns=name" | python3 -c 'import json,sys; p=sys.argv[1]; print(" ".join(q["name"] for q in json.load(sys.stdin) if q["name"].startswith(p + ".")))' "$PREFIX"); do
    mgmt DELETE "/queues/%2f/$(urlencode "$q")" -o /dev/null || true
  done
  mgmt DELETE "/exchanges/%2f/$(urlencode "$PREFIX")" -o /dev/null || true
  log "deleted the queues and exchange of $PREFIX"
}

cleanup() {
  local i
  [[ -n $PUBLISHER_PID ]] && kill "$PUBLISHER_PID" 2>/dev/null
  for ((i = 0; i < ${#WPID[@]}; i++)); do kill -TERM "${WPID[i]}" 2>/dev/null || true; done
  for ((i = 0; i < ${#WPID[@]}; i++)); do
    for _ in $(seq 100); do kill -0 "${WPID[i]}" 2>/dev/null || break; sleep 0.4; done
    kill -9 "${WPID[i]}" 2>/dev/null || true
  done
  [[ -n $RECEIVER_PID ]] && kill "$RECEIVER_PID" 2>/dev/null
  wait 2>/dev/null || true
  if [[ $CLEANUP == 1 && -n ${STARTED_RUN:-} ]]; then delete_topology; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- chaos actions -----------------------------------------------------------
chaos() {  # one action, logged; leaves everything up again
  local action=$1 n i t0=$SECONDS down conns name list
  case $action in
    kill-node | stop-app)
      n=${NODES[$(rand 0 2)]}
      down=$(rand 1 "$NODE_DOWN_MAX")
      if [[ $action == kill-node ]]; then
        "$CLUSTER" kill "$n" >>"$CHAOS_LOG" 2>&1
        sleep "$down"
        "$CLUSTER" restart "$n" >>"$CHAOS_LOG" 2>&1 || { log "restart $n failed; cluster start"; "$CLUSTER" start >>"$CHAOS_LOG" 2>&1; }
      else
        "$CLUSTER" stop-app "$n" >>"$CHAOS_LOG" 2>&1
        sleep "$down"
        "$CLUSTER" start-app "$n" >>"$CHAOS_LOG" 2>&1 || { log "start-app $n failed; cluster start"; "$CLUSTER" start >>"$CHAOS_LOG" 2>&1; }
      fi
      echo "$(date -u +%FT%T) $action rabbit-$n: down ${down}s, back after $((SECONDS - t0))s" >>"$CHAOS_LOG"
      ;;
    sigkill-worker | sigterm-worker)
      i=$(rand 0 $((WORKERS - 1)))
      if [[ $action == sigkill-worker ]]; then
        kill -9 "${WPID[i]}" 2>/dev/null || true
        wait "${WPID[i]}" 2>/dev/null || true
        sleep "$(rand 0 "$WORKER_DOWN_MAX")"
      else
        kill -TERM "${WPID[i]}" 2>/dev/null || true
        local waited=0 rc=0
        while kill -0 "${WPID[i]}" 2>/dev/null && ((waited < TERM_TIMEOUT * 10)); do sleep 0.1; waited=$((waited + 1)); done
        if kill -0 "${WPID[i]}" 2>/dev/null; then
          COUNT[sigterm-timeout]=$((${COUNT[sigterm-timeout]:-0} + 1))
          log "worker $i did not exit ${TERM_TIMEOUT}s after SIGTERM; SIGKILL"
          kill -9 "${WPID[i]}" 2>/dev/null || true
        fi
        wait "${WPID[i]}" 2>/dev/null || rc=$?
        echo "$(date -u +%FT%T) worker $i exited $((waited / 10))s after SIGTERM, status $rc" >>"$CHAOS_LOG"
      fi
      start_worker "$i"
      echo "$(date -u +%FT%T) $action worker $i: back after $((SECONDS - t0))s" >>"$CHAOS_LOG"
      ;;
    close-connection)
      conns=$(mgmt GET "/connections?columns=name,client_properties" 2>/dev/null | python3 -c '
import json, sys
names = [c["name"] for c in json.load(sys.stdin)
         if str(c.get("client_properties", {}).get("connection_name", "")).startswith("webhook-worker")
         and str(c.get("client_properties", {}).get("connection_name", "")).endswith((" consuming", " publishing"))]
print("\n".join(names))' 2>/dev/null) || conns=
      if [[ -z $conns ]]; then
        echo "$(date -u +%FT%T) close-connection: no worker connection found" >>"$CHAOS_LOG"
        return 0
      fi
      mapfile -t list <<<"$conns"
      name=${list[$(rand 0 $((${#list[@]} - 1)))]}
      if mgmt DELETE "/connections/$(urlencode "$name")" -H "X-Reason: soak: closed on purpose" -o /dev/null; then
        echo "$(date -u +%FT%T) close-connection $name" >>"$CHAOS_LOG"
      else
        echo "$(date -u +%FT%T) close-connection $name: DELETE failed" >>"$CHAOS_LOG"
      fi
      ;;
  esac
  COUNT[$action]=$((${COUNT[$action]:-0} + 1))
}

summary_json() {
  curl -sf -m 60 "http://127.0.0.1:$RECEIVER_PORT/summary?expected=$EXPECTED&parked=$PARKED"
}
jget() { python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(d.get(sys.argv[2], ""))' "$1" "$2"; }
published_count() { awk '{ s += $2 } END { print s + 0 }' "$1"; }

# Messages in the prefix's queues: "ready unacked" summed over deliveries and retry tiers.
queue_depth() {
  mgmt GET "/queues/%2f?columns=name,messages_ready,messages_unacknowledged" 2>/dev/null | python3 -c '
import json, sys
p = sys.argv[1]
qs = [q for q in json.load(sys.stdin) if q["name"] == p + ".deliveries" or q["name"].startswith(p + ".retry.")]
print(sum(q.get("messages_ready") or 0 for q in qs), sum(q.get("messages_unacknowledged") or 0 for q in qs))' "$PREFIX"
}

# --- run ---------------------------------------------------------------------
log "prefix $PREFIX, $EVENTS events at $RATE/s in chunks of $CHUNK, $WORKERS workers, ${DURATION}s of chaos ($ACTIONS), seed $SEED; logs in $OUT_DIR"
"$CLUSTER" start >"$OUT_DIR/cluster-start.log" 2>&1 || { cat "$OUT_DIR/cluster-start.log" >&2; die "cluster start failed"; }
start_receiver
for ((i = 0; i < WORKERS; i++)); do start_worker "$i"; done
deadline=$((SECONDS + 120))
for ((i = 0; i < WORKERS; i++)); do
  until worker_ready "$i"; do
    ((SECONDS < deadline)) || { tail -n 30 "$OUT_DIR/worker-$i.log" >&2; die "worker $i not ready after 120s"; }
    kill -0 "${WPID[i]}" 2>/dev/null || { tail -n 30 "$OUT_DIR/worker-$i.log" >&2; die "worker $i exited at start"; }
    sleep 0.5
  done
done
log "workers ready; publishing and chaos start"
STARTED_RUN=1

started=$SECONDS
publisher_loop &
PUBLISHER_PID=$!
while ((SECONDS - started < DURATION)) || kill -0 "$PUBLISHER_PID" 2>/dev/null; do
  sleep "$(rand "$CHAOS_MIN" "$CHAOS_MAX")"
  reap_workers
  action=${ACTION_LIST[$(rand 0 $((${#ACTION_LIST[@]} - 1)))]}
  chaos "$action"
  s=$(summary_json || echo '{}')
  log "t+$((SECONDS - started))s $action; published $(published_count "$EXPECTED")/$EVENTS, delivered $(jget "$s" expected_delivered), duplicates $(jget "$s" duplicates)"
done
wait "$PUBLISHER_PID" || true
PUBLISHER_PID=
chaos_end=$SECONDS
log "chaos over after $((chaos_end - started))s; draining"

# --- drain -------------------------------------------------------------------
"$CLUSTER" start >>"$CHAOS_LOG" 2>&1 || log "cluster start failed before the drain (see $CHAOS_LOG)"
reap_workers
last_delivered=-1
last_change=$SECONDS
while ((SECONDS - chaos_end < DRAIN_TIMEOUT)); do
  s=$(summary_json || echo '{}')
  got=$(jget "$s" expected_delivered)
  want=$(jget "$s" expected)
  [[ -n $got && $got == "$want" ]] && break
  total=$(jget "$s" delivered)
  if [[ $total != "$last_delivered" ]]; then last_delivered=$total; last_change=$SECONDS; fi
  read -r ready unacked <<<"$(queue_depth || echo '? ?')"
  if [[ $ready == 0 && $unacked == 0 ]] && ((SECONDS - last_change >= QUIET)); then
    log "queues empty and nothing arrived for ${QUIET}s; $got of $want delivered"
    break
  fi
  sleep 5
  reap_workers
done
drain_s=$((SECONDS - chaos_end))

# Parked messages: read back from $PREFIX.dead (requeued, so they stay parked).
dead=$(mgmt GET "/queues/%2f/$(urlencode "$PREFIX.dead")" 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin).get("messages") or 0)' 2>/dev/null) || dead=0
if ((dead > 0)); then
  mgmt POST "/queues/%2f/$(urlencode "$PREFIX.dead")/get" -H 'content-type: application/json' \
    -d "{\"count\":$dead,\"ackmode\":\"ack_requeue_true\",\"encoding\":\"auto\",\"truncate\":100000}" 2>/dev/null |
    python3 -c '
import json, sys
for m in json.load(sys.stdin):
    try:
        print(json.loads(m["payload"])["id"])
    except Exception:
        pass' >"$PARKED" || true
fi

# Worker counters (current processes only: a restarted worker starts from 0).
metrics=$OUT_DIR/metrics.txt
: >"$metrics"
for ((i = 0; i < WORKERS; i++)); do
  curl -sf -m 5 "http://127.0.0.1:$((METRICS_PORT_BASE + i))/metrics" |
    grep -E '^webhook_(dropped|broker_reconnects|settle_failures|publish_failures|retried|deferred)_total' |
    sed "s/^/worker$i /" >>"$metrics" || true
done

s=$(summary_json || echo '{}')
chaos_counts=$(for k in "${!COUNT[@]}"; do echo "$k=${COUNT[$k]}"; done | sort | paste -sd' ' -)
python3 - "$s" "$OUT_DIR/report.json" "$PREFIX" "$EVENTS" "$(published_count "$EXPECTED")" \
  "$(published_count "$UNCONFIRMED")" "$dead" "$((chaos_end - started))" "$drain_s" "$chaos_counts" \
  "$UNEXPECTED_EXITS" "$SEED" <<'PY'
import json, sys
(s, out, prefix, events, published, unconfirmed, parked, chaos_s, drain_s, counts, exits, seed) = sys.argv[1:]
s = json.loads(s or "{}")
report = {
    "prefix": prefix, "seed": int(seed), "events": int(events),
    "published": int(published), "published_unconfirmed_retried": int(unconfirmed),
    "delivered_distinct": s.get("expected_delivered"), "lost": s.get("lost"),
    "duplicates": s.get("duplicates"), "ids_delivered_more_than_once": s.get("ids_delivered_more_than_once"),
    "unconfirmed_delivered": s.get("unexpected"), "parked": int(parked),
    "parked_of_missing": s.get("parked_of_missing"),
    "longest_gap_s": s.get("longest_gap_s"), "longest_gap_started_at": s.get("longest_gap_started_at"),
    "chaos_s": int(chaos_s), "drain_s": int(drain_s),
    "chaos": dict(kv.split("=") for kv in counts.split()) if counts else {},
    "worker_exits_on_their_own": int(exits),
    "lost_sample": s.get("lost_sample"), "receiver": s,
}
json.dump(report, open(out, "w"), indent=1)
rows = [
    ("published (confirmed)", report["published"]),
    ("  + unconfirmed, republished", report["published_unconfirmed_retried"]),
    ("delivered (distinct ids)", report["delivered_distinct"]),
    ("lost", report["lost"]),
    ("duplicates (deliveries - distinct)", report["duplicates"]),
    ("parked", report["parked"]),
    ("longest delivery gap (s)", report["longest_gap_s"]),
    ("chaos / drain (s)", f'{chaos_s} / {drain_s}'),
    ("chaos actions", counts or "-"),
    ("worker exits on their own", exits),
]
for k, v in rows:
    print(f"{k:<36} {v}")
if report["lost_sample"]:
    print("lost ids (sample):", " ".join(report["lost_sample"]))
print("report:", out)
PY
log "worker counters: $metrics"

lost=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["lost"] or 0)' "$OUT_DIR/report.json")
[[ $lost == 0 && $UNEXPECTED_EXITS == 0 ]]
