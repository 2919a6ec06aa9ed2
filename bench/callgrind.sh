#!/usr/bin/env bash
# Instructions per delivery, counted by valgrind's callgrind: repeatable for
# the same binary and inputs whatever else the machine is doing, so two
# builds can be compared on a busy machine where timings are noise.
#
#   bench/callgrind.sh BIN [BIN...]        (env: SMALL=1000 LARGE=4000)
#
# For each binary: publishes SMALL, then LARGE events to a demo receiver
# (the binary's own `demo-receiver`, outside valgrind), runs `BIN run` under
# callgrind until all are delivered, stops it with SIGTERM, and reports
# (instructions(LARGE) - instructions(SMALL)) / (LARGE - SMALL): the cost of
# one delivery without the start-up and shutdown. Same flags for every binary.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-1000}
LARGE=${LARGE:-4000}
MGMT=${MGMT:-http://guest:guest@127.0.0.1:15672}
RPORT=18181
MPORT=19191

delivered() {
  curl -fsS "http://127.0.0.1:$MPORT/metrics" 2>/dev/null |
    awk '/^webhook_delivered_total/ {s += $2} END {print s + 0}'
}

cleanup_prefix() {
  local p=$1 q
  for q in "$p.deliveries" "$p.dead" "$p.retry.60s" "$p.retry.1h" "$p.retry.24h" "$p.log"; do
    curl -fsS -X DELETE "$MGMT/api/queues/%2f/$q" >/dev/null 2>&1 || true
  done
  for e in "$p" "$p.outcomes"; do
    curl -fsS -X DELETE "$MGMT/api/exchanges/%2f/$e" >/dev/null 2>&1 || true
  done
}

instructions() { # BIN N -> total instructions of `run` delivering N events
  local bin=$1 n=$2 prefix="cg-$$-$RANDOM" out
  out=$(mktemp /tmp/callgrind.XXXXXX)
  "$bin" declare --prefix "$prefix" >/dev/null
  "$bin" publish --prefix "$prefix" --url "http://127.0.0.1:$RPORT/hook" --count "$n" >/dev/null
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin" run --prefix "$prefix" --allow-private-targets --metrics-addr "127.0.0.1:$MPORT" \
    --concurrency 256 --host-concurrency 64 2>/dev/null &
  local pid=$! deadline=$((SECONDS + 600))
  until [[ "$(delivered)" -ge "$n" ]]; do
    (( SECONDS < deadline )) || { echo "timed out" >&2; kill -9 $pid; exit 1; }
    sleep 1
  done
  kill -TERM $pid; wait $pid || true
  cleanup_prefix "$prefix"
  awk '/^summary:/ {print $2}' "$out"
  rm -f "$out"
}

first=${1:?usage: bench/callgrind.sh BIN [BIN...]}
"$first" demo-receiver --listen "127.0.0.1:$RPORT" --quiet &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
sleep 1
printf '| binary | instructions (%s events) | instructions (%s events) | per delivery |\n|---|---:|---:|---:|\n' "$SMALL" "$LARGE"
for bin in "$@"; do
  a=$(instructions "$bin" "$SMALL")
  b=$(instructions "$bin" "$LARGE")
  printf '| %s | %s | %s | %s |\n' "$bin" "$a" "$b" "$(( (b - a) / (LARGE - SMALL) ))"
done
