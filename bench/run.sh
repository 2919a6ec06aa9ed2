#!/usr/bin/env bash
# The benchmark suite in one command (see bench/README.md):
#
#   bench/run.sh [bench options]      e.g. bench/run.sh --n 20000
#
# Builds the release worker and the harness (examples/bench/), runs every
# scenario against the local RabbitMQ (AMQP_URL, default guest@127.0.0.1),
# prints the summary table and writes bench/results/<UTC date>.json.
# Options are passed to `bench run` (bench/run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
export CARGO_TARGET_DIR="$target"
# Two builds: built together with an example, the worker gets the
# features the examples' dev-dependencies turn on (tokio's test-util
# among them) and is not the binary users run (bench/README.md,
# "Publishing in batches": 0.96-0.97 of it, within the rounds' spread).
cargo build --release --quiet --bin webhook-worker
cargo build --release --quiet --example bench

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
    exec "$target/release/examples/bench" run --help
fi

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
out="bench/results/$stamp.json"
mkdir -p bench/results
echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); results -> $out" >&2
"$target/release/examples/bench" run --out "$out" --command "bench/run.sh${*:+ $*}" "$@"
