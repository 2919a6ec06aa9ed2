#!/usr/bin/env bash
# The test command. Starts what the tests need when it is not up (the
# default RabbitMQ 3.10 node, the 4.0 and 4.3 nodes of scripts/brokers.sh,
# the local three-node clusters of 3.10 and 4.3), builds every test binary once, runs the
# unit and property tests once, then the integration tests against each
# broker version, one pass after another (never two at once: their
# timing-sensitive tests would starve each other), then the cluster tests.
# Prints the time of every pass and a summary; exits non-zero when any
# pass failed (every pass runs regardless).
#
#   scripts/test.sh [FILTER...]     # FILTER: passed to every integration pass
#   scripts/test.sh --brokers       # only start the brokers the tests need
#
# Environment: TEST_VERSIONS (default "3.10 4.0 4.3"), TEST_CLUSTER_VERSIONS
# (the clusters of scripts/cluster.sh the cluster tests run on, default
# "3.10 4.3"; "" skips them, as a FILTER does).
#
# Tests that do not depend on the broker's version (the layering test, the
# deployment artifacts, the tools, the docs' commands, CLI mistakes, the TLS
# node of scripts/tls-broker.sh, receiver mTLS, signing, the forward proxy,
# the receivers' adaptive limits) run in the first pass only.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSIONS=${TEST_VERSIONS:-3.10 4.0 4.3}
VERSION_INDEPENDENT=(layers:: deploy:: tools:: readme:: first_hour:: tls:: rotation:: proxy:: proxy_faults:: receivers::)
started=$SECONDS
summary=()
failed=0

# Runs one pass: NAME, then the command; records its time and result.
pass() {
  local name=$1 t0=$SECONDS rc=0
  shift
  printf '\n==== test pass: %s\n' "$name"
  "$@" || rc=$?
  local line
  line=$(printf '%-28s %4d s  %s' "$name" $((SECONDS - t0)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")")
  echo "==== $line"
  summary+=("$line")
  [[ $rc == 0 ]] || failed=1
}

clusters=${TEST_CLUSTER_VERSIONS-3.10 4.3}

# The brokers besides the default node: the 4.x nodes, and the clusters
# the cluster tests need, each kept when it is all up, else wiped and
# booted from fresh nodes (1-2 min; a fresh machine first builds the
# chroots with debootstrap, mostly waiting on the network).
start_brokers() {
  for v in $VERSIONS; do
    [[ $v == 3.10 ]] || scripts/brokers.sh start "$v"
  done
  for v in $clusters; do CLUSTER_VERSION=$v scripts/cluster.sh start --fresh; done
}
# `scripts/test.sh --brokers` only starts them (.ci/run does, at its start).
if [[ ${1:-} == --brokers ]]; then
  start_brokers
  exit
fi
# A FILTER runs no cluster pass, so it needs no cluster.
[[ $# == 0 ]] || clusters=

scripts/ensure-rabbitmq.sh
# Proxies and the Standard Webhooks reference library of the egress tests.
scripts/egress.sh deps

# The other brokers start while the tests build.
mkdir -p target
brokers_log=target/test-brokers.log
start_brokers >"$brokers_log" 2>&1 &
brokers=$!

pass "build" cargo test --locked --no-run
t0=$SECONDS
if ! wait "$brokers"; then
  cat "$brokers_log" >&2
  echo "test.sh: starting the brokers failed (log: $brokers_log)" >&2
  exit 1
fi
grep -E '^(rabbit|cluster up|brokers.sh: start took|cluster.sh: start took)' "$brokers_log" || true
echo "==== brokers ready $((SECONDS - t0)) s after the build"
pass "unit + property + doc" cargo test --locked --lib --bins --test properties
pass "doc tests" cargo test --locked --doc

skips=(--skip cluster::)
for v in $VERSIONS; do
  # shellcheck disable=SC2046 # the env line is NAME=VALUE words
  pass "integration, RabbitMQ $v" env $(scripts/brokers.sh env "$v") \
    cargo test --locked --test it -- "${skips[@]}" "$@"
  # after the first pass: only what depends on the broker's version
  skips=(--skip cluster::)
  for m in "${VERSION_INDEPENDENT[@]}"; do skips+=(--skip "$m"); done
done
for v in $clusters; do
  pass "cluster, RabbitMQ $v" env CLUSTER_VERSION="$v" cargo test --locked --test it -- cluster::
done

printf '\n==== test passes (%d s in all)\n' $((SECONDS - started))
printf '  %s\n' "${summary[@]}"
exit "$failed"
