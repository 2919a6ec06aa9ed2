#!/usr/bin/env bash
# A standalone TLS RabbitMQ node for tests: rabbit-tls@localhost (not clustered),
# beside the default broker (never touched by this script).
#
#   scripts/tls-broker.sh start DIR [--require-client-cert]
#   scripts/tls-broker.sh stop
#   scripts/tls-broker.sh status
#
# DIR holds PEM files: ca.pem (CA that signs the server's certificate and that
# client certificates must chain to), server.pem (server certificate, chain
# allowed) and server-key.pem (its key: PKCS#8, PKCS#1 or SEC1). They are
# copied into the node's state folder (owned by rabbitmq); DIR may be a
# root-only temp folder. `start` always stops a running node first, rewrites
# the config and boots again, so it doubles as "restart with new certificates".
#
# Listeners (127.0.0.1 only, user guest/guest, vhost /):
#   5690  plain AMQP (kept for rabbitmqctl-free checks; tests should not need it)
#   5691  AMQPS, verify_peer, fail_if_no_peer_cert = false: a client certificate
#         is optional, but one that is sent must chain to ca.pem
#   5692  AMQPS, verify_peer, fail_if_no_peer_cert = true: a client certificate
#         is REQUIRED (mutual TLS)
# With --require-client-cert, 5691 also requires a client certificate.
#
# RabbitMQ 3.10 has one `ssl_options` for all AMQPS listeners
# (rabbit_networking:boot_tls/2 applies the same options to every entry of
# listeners.ssl.*), so two listeners with different peer-certificate policies
# cannot be written in rabbitmq.conf or advanced.config. The 5692 listener is
# therefore added after boot with `rabbitmqctl eval` calling
# rabbit_networking:start_ssl_listener/3 with fail_if_no_peer_cert = true; it
# lives until the node stops. TLS_MTLS_PORT= (empty) skips it.
#
# The server certificate should carry subjectAltName DNS:localhost and
# IP:127.0.0.1 (clients connect to amqps://localhost:5691 or 127.0.0.1:5691).
# RabbitMQ does not check its own certificate's validity window: a node with
# an expired server certificate boots and serves it, so a client-side
# "certificate expired" check can be tested against it.
#
# Environment: TLS_DIR (state, default /var/tmp/webhook-worker-tls),
# BOOT_TIMEOUT (seconds, default 120), TLS_MTLS_PORT (default 5692).
set -euo pipefail

TLS_DIR=${TLS_DIR:-/var/tmp/webhook-worker-tls}
TLS_MTLS_PORT=${TLS_MTLS_PORT-5692}
NODE=rabbit-tls@localhost
TLS_PORT=5691
RMQ_LOG_TAG=tls-broker.sh
# shellcheck source=scripts/lib/rabbitmq.sh
source "$(dirname "$0")/lib/rabbitmq.sh"

# The one node, "tls"; RMQ_CONF_EXTRA is set by cmd_start.
rmq_spec() {
  RMQ_NAME=$NODE
  RMQ_ROOT=
  RMQ_DIR=$TLS_DIR
  RMQ_AMQP_PORT=5690
  RMQ_MGMT_PORT=
  RMQ_DIST_PORT=25690
  RMQ_EPMD_PORT=
  RMQ_CONF_EXTRA=${TLS_CONF:-}
}

cmd_start() {
  local src=${1:-} require=false f t0=$SECONDS
  [[ -n $src ]] || bad_arg "usage: start DIR [--require-client-cert]"
  [[ ${2:-} == --require-client-cert ]] && require=true
  [[ -z ${2:-} || $require == true ]] || bad_arg "unknown option '$2'"
  for f in ca.pem server.pem server-key.pem; do
    [[ -r $src/$f ]] || die "$src/$f is missing or unreadable"
  done
  rmq_stop tls
  mkdir -p "$TLS_DIR/certs"
  install -m 0644 "$src/ca.pem" "$TLS_DIR/certs/ca.pem"
  install -m 0644 "$src/server.pem" "$TLS_DIR/certs/server.pem"
  install -m 0600 "$src/server-key.pem" "$TLS_DIR/certs/server-key.pem"
  TLS_CONF="listeners.ssl.1 = 127.0.0.1:$TLS_PORT
ssl_options.cacertfile = $TLS_DIR/certs/ca.pem
ssl_options.certfile = $TLS_DIR/certs/server.pem
ssl_options.keyfile = $TLS_DIR/certs/server-key.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = $require
ssl_options.depth = 4
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2"
  rmq_write_config tls
  rmq_launch tls
  BOOT_ATTEMPTS=1 rmq_await tls
  if [[ -n $TLS_MTLS_PORT ]]; then
    local r
    r=$(rmq_ctl tls eval "{ok, O} = application:get_env(rabbit, ssl_options),
      O2 = lists:keystore(fail_if_no_peer_cert, 1, O, {fail_if_no_peer_cert, true}),
      rabbit_networking:start_ssl_listener({\"127.0.0.1\", $TLS_MTLS_PORT}, rabbit_networking:fix_ssl_options(O2), 10).") || true
    [[ $r == ok ]] || { rmq_log_tail tls; die "could not add the mutual-TLS listener on $TLS_MTLS_PORT: $r"; }
  fi
  log "$NODE up after $((SECONDS - t0))s"
  cmd_status
}

cmd_status() {
  local pid
  pid=$(rmq_beam_pid tls)
  if [[ -z $pid ]]; then echo "$NODE: down"; return 1; fi
  echo "$NODE: running (pid $pid); listeners:"
  rmq_diag tls listeners 2>/dev/null | sed 's/^/  /' || echo "  (app not running)"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) rmq_stop tls ;;
  status) cmd_status ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
