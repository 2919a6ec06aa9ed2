#!/usr/bin/env bash
# The forward proxy's cost on the 100 ms receiver (scenario `slow`), measured
# in one run beside the direct worker (bench/README.md, "Through a forward
# proxy"):
#
#   bench/proxy.sh [ROUNDS]     default 3 rounds
#
# Starts tinyproxy (HTTP CONNECT) and microsocks (SOCKS5, with a password) on
# loopback, then runs the bench's `slow` scenario with three workers of the
# same release binary in every round, one after the other: direct, through
# tinyproxy, through microsocks (each a wrapper that sets WEBHOOK_PROXY_URL
# and execs the binary, so the bench samples the worker's own process).
# Writes bench/results/<UTC date>-proxy.json (and .md) like bench/run.sh.
# BENCH_SKIP_BUILD=1 measures the release binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
target="${CARGO_TARGET_DIR:-target}"
export CARGO_TARGET_DIR="$target"
scripts/egress.sh deps
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    cargo build --release --quiet --bin webhook-worker --example bench
fi
bin="$(realpath "$target/release/webhook-worker")"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    local deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "proxy on port $1 did not start" >&2; exit 1; }
        sleep 0.2
    done
}

tinyproxy_port="$(free_port)"
cat >"$work/tinyproxy.conf" <<CONF
Port $tinyproxy_port
Listen 127.0.0.1
Timeout 60
MaxClients 4096
LogLevel Warning
Allow 127.0.0.1
DisableViaHeader Yes
CONF
tinyproxy -d -c "$work/tinyproxy.conf" >"$work/tinyproxy.log" 2>&1 &
pids+=($!)
microsocks_port="$(free_port)"
microsocks -i 127.0.0.1 -p "$microsocks_port" -u bench -P bench-pw >/dev/null 2>&1 &
pids+=($!)
wait_port "$tinyproxy_port"
wait_port "$microsocks_port"

wrapper() {
    printf '#!/bin/sh\nWEBHOOK_PROXY_URL=%s exec %s "$@"\n' "$2" "$bin" >"$work/$1"
    chmod +x "$work/$1"
}
wrapper via-tinyproxy "http://127.0.0.1:$tinyproxy_port"
wrapper via-microsocks "socks5://bench:bench-pw@127.0.0.1:$microsocks_port"

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
out="bench/results/$stamp-proxy.json"
echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); results -> $out" >&2
"$target/release/examples/bench" run --only slow --receiver-repeat "$rounds" \
    --worker-bin "$bin" --worker-bin "$work/via-tinyproxy" --worker-bin "$work/via-microsocks" \
    --out "$out" --command "bench/proxy.sh $rounds"
