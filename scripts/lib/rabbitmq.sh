# shellcheck shell=bash
# The one shell library for the RabbitMQ nodes the project starts beside the
# default broker (rabbit@localhost on 5672, never touched here): the version
# nodes of scripts/brokers.sh (in Debian chroots), the local cluster of
# scripts/cluster.sh and the TLS node of scripts/tls-broker.sh.
#
# A script that sources this file defines `rmq_spec KEY`, which sets the
# variables below for its node KEY; every function here takes KEY first and
# declares those variables local before calling rmq_spec, so nested calls
# for other nodes do not disturb each other (bash scopes locals dynamically).
#
#   RMQ_NAME       node name (rabbit-40@localhost)
#   RMQ_ROOT       root directory of the node's RabbitMQ ("" = this system,
#                  else a chroot made by rmq_chroot_ensure)
#   RMQ_DIR        state folder as the node sees it (inside RMQ_ROOT)
#   RMQ_AMQP_PORT  plain AMQP listener on 127.0.0.1
#   RMQ_MGMT_PORT  management listener on 127.0.0.1 ("" = plugin off)
#   RMQ_DIST_PORT  Erlang distribution port
#   RMQ_EPMD_PORT  port of the node's own epmd ("" = the default 4369)
#   RMQ_CONF_EXTRA more rabbitmq.conf lines
#
# The caller sets RMQ_LOG_TAG (its name, for messages) and may set
# BOOT_TIMEOUT (seconds per wait, default 120) and BOOT_ATTEMPTS (launches of
# a node that exits during boot, default 3).

RMQ_VARS=(RMQ_NAME RMQ_ROOT RMQ_DIR RMQ_AMQP_PORT RMQ_MGMT_PORT RMQ_DIST_PORT RMQ_EPMD_PORT RMQ_CONF_EXTRA)
RMQ_USER=rabbitmq
RMQ_BIN=/usr/lib/rabbitmq/bin
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
BOOT_ATTEMPTS=${BOOT_ATTEMPTS:-3}

die() { echo "${RMQ_LOG_TAG:-rabbitmq.sh}: $*" >&2; exit 1; }
# A wrong argument or setting: one line naming it, exit 2.
bad_arg() { echo "${RMQ_LOG_TAG:-rabbitmq.sh}: $*" >&2; exit 2; }
log() { echo "${RMQ_LOG_TAG:-rabbitmq.sh}: $*" >&2; }

rmq_name() { local "${RMQ_VARS[@]}"; rmq_spec "$1"; echo "$RMQ_NAME"; }


# uid:gid of the rabbitmq user of root $1 ("" = this system).
rmq_ids() {
  local ids
  ids=$(awk -F: -v u="$RMQ_USER" '$1 == u { print $3 ":" $4 }' "${1:-}/etc/passwd")
  [[ -n $ids ]] || die "no $RMQ_USER user in ${1:-/}/etc/passwd (is rabbitmq-server installed there?)"
  echo "$ids"
}

# Runs a command as the rabbitmq user inside the node's root, with the
# node's environment (what rmq_env exported) and its home (the Erlang cookie
# /var/lib/rabbitmq/.erlang.cookie of that root).
rmq_as() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"; shift
  local epmd=${RMQ_EPMD_PORT:-4369}
  if [[ $(id -u) -eq 0 ]]; then
    ERL_EPMD_PORT=$epmd HOME=/var/lib/rabbitmq \
      chroot --userspec="$(rmq_ids "$RMQ_ROOT")" "${RMQ_ROOT:-/}" \
      /bin/sh -c 'cd /var/lib/rabbitmq && exec "$@"' sh "$@"
  elif [[ -z $RMQ_ROOT && $(id -un) == "$RMQ_USER" ]]; then
    (cd /var/lib/rabbitmq && ERL_EPMD_PORT=$epmd HOME=/var/lib/rabbitmq exec "$@")
  else
    die "run as root${RMQ_ROOT:+ (the node lives in the chroot $RMQ_ROOT)} or as the $RMQ_USER user"
  fi
}

rmq_ctl() { rmq_tool rabbitmqctl "$@"; }
rmq_diag() { rmq_tool rabbitmq-diagnostics "$@"; }
rmq_tool() {
  local "${RMQ_VARS[@]}" tool=$1 key=$2; rmq_spec "$key"; shift 2
  rmq_as "$key" "$RMQ_BIN/$tool" -q -n "$RMQ_NAME" "$@"
}

# Exports the environment of the node (call in a subshell).
rmq_env() {
  rmq_spec "$1"
  export RABBITMQ_NODENAME=$RMQ_NAME RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$RMQ_AMQP_PORT RABBITMQ_DIST_PORT=$RMQ_DIST_PORT
  export RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia RABBITMQ_LOG_BASE=$RMQ_DIR/log
  export RABBITMQ_PID_FILE=$RMQ_DIR/rabbit.pid RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$RMQ_DIR/advanced.config # absent on purpose
  export RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/enabled_plugins
  # epmd and the distribution listen on loopback only; RMQ_EXTRA_ERL_ARGS
  # adds Erlang VM flags (measurements: bench/README.md, "Outcome events")
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} ${RMQ_EXTRA_ERL_ARGS:-}"
}

# The plugins a node runs (call after rmq_spec): the management API when it
# has a port, and the consistent-hash exchange of sharded work queues
# (WEBHOOK_SHARDS above 1).
rmq_plugins() {
  if [[ -n $RMQ_MGMT_PORT ]]; then echo rabbitmq_management rabbitmq_consistent_hash_exchange
  else echo rabbitmq_consistent_hash_exchange; fi
}

# Enables rmq_plugins on a running node (one booted before the list grew).
# Names them all: `rabbitmq-plugins enable` makes the node run exactly what
# its enabled_plugins file lists.
rmq_plugins_enable() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  # The CLI refuses a plugins path with a missing entry (the node's default
  # names /usr/lib/rabbitmq/plugins, absent here): name the server's own.
  local dirs=("$RMQ_ROOT"/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins)
  (
    rmq_env "$1"
    export RABBITMQ_PLUGINS_DIR=${dirs[-1]#"$RMQ_ROOT"}
    # shellcheck disable=SC2046 # one word per plugin
    rmq_tool rabbitmq-plugins "$1" enable $(rmq_plugins) >/dev/null
  )
}

# Writes the node's rabbitmq.conf and enabled_plugins.
rmq_write_config() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  local d=$RMQ_ROOT$RMQ_DIR
  mkdir -p "$d/mnesia" "$d/log"
  {
    echo "# generated by ${RMQ_LOG_TAG:-scripts/lib/rabbitmq.sh} — node $RMQ_NAME"
    echo "listeners.tcp.1 = 127.0.0.1:$RMQ_AMQP_PORT"
    if [[ -n $RMQ_MGMT_PORT ]]; then
      echo "management.tcp.port = $RMQ_MGMT_PORT"
      echo "management.tcp.ip = 127.0.0.1"
    fi
    echo "log.file.level = info"
    echo "log.console = false"
    [[ -z $RMQ_CONF_EXTRA ]] || echo "$RMQ_CONF_EXTRA"
  } >"$d/rabbitmq.conf"
  echo "[$(rmq_plugins | tr ' ' ',')]." >"$d/enabled_plugins"
  chown -R "$(rmq_ids "$RMQ_ROOT")" "$d"
}

# Boots the node in the background (its config must be written); rmq_await
# waits for it.
rmq_launch() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  local d=$RMQ_ROOT$RMQ_DIR
  rm -f "$d/rabbit.pid"
  (
    rmq_env "$1"
    rmq_as "$1" "$RMQ_BIN/rabbitmq-server" -detached >"$d/log/startup.log" 2>&1
  ) || { rmq_log_tail "$1"; die "rabbitmq-server -detached failed for $RMQ_NAME"; }
}

# The OS pid of the node's beam.smp, or nothing.
rmq_beam_pid() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  local pf=$RMQ_ROOT$RMQ_DIR/rabbit.pid pid p
  if [[ -s $pf ]]; then
    pid=$(tr -dc '0-9' <"$pf")
    if [[ -n $pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == beam.smp ]]; then
      echo "$pid"; return
    fi
  fi
  # fallback: the beam.smp whose environment names this node
  for p in $(pgrep -x beam.smp || true); do
    # (the process may be gone by now: the redirection's error is hidden too)
    if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$RMQ_NAME"; then
      echo "$p"; return
    fi
  done
}

rmq_vm_up() { [[ -n $(rmq_beam_pid "$1") ]]; }
rmq_app_running() { rmq_diag "$1" check_running >/dev/null 2>&1; }

rmq_log_tail() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  local f d=$RMQ_ROOT$RMQ_DIR
  echo "---- last lines of the logs of $RMQ_NAME ($d/log) ----" >&2
  for f in "$d/log/$RMQ_NAME.log" "$d/log/startup.log"; do
    [[ -f $f ]] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }
  done
  return 0
}

# The reason the node's last boot ended, in one line (the exit reason its log names).
rmq_boot_failure() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  grep -o 'Application rabbit exited with reason: {{[a-z_]*' "$RMQ_ROOT$RMQ_DIR/log/$RMQ_NAME.log" 2>/dev/null |
    tail -n 1 | sed 's/.*reason: {{//' || true
}

# Waits until the nodes KEY... are booted (rabbitmq-server -detached returns
# before the node even exists, so await_startup is retried until the
# deadline). They are awaited together: a node of a stopped cluster waits for
# its peers' tables, so one that died must be relaunched while the others
# are still waiting.
#
# A node that exits during boot is launched again, up to BOOT_ATTEMPTS times
# in all: when the nodes of a stopped cluster boot together, RabbitMQ 3.10 can
# crash one of them while it syncs feature flags with a peer whose registry is
# not initialised yet ({incompatible_feature_flags, {badrpc, {badmap,
# undefined}}} in rabbit_feature_flags:enable_dependencies, seen in CI); the
# same node boots once its peers are further along.
rmq_await() {
  local n why pending=("$@") left
  local -A attempt=() started=()
  local deadline=$((SECONDS + BOOT_TIMEOUT))
  for n in "$@"; do attempt[$n]=1; started[$n]=$SECONDS; done
  while ((${#pending[@]} > 0)); do
    left=()
    for n in "${pending[@]}"; do
      if rmq_ctl "$n" await_startup --timeout 5 >/dev/null 2>&1; then continue; fi
      left+=("$n")
      if ! rmq_vm_up "$n" && ((SECONDS > started[$n] + 15)); then
        if ((attempt[$n] >= BOOT_ATTEMPTS)); then
          rmq_log_tail "$n"; die "$(rmq_name "$n") exited during boot (${attempt[$n]} attempts)"
        fi
        why=$(rmq_boot_failure "$n")
        log "$(rmq_name "$n") exited during boot (attempt ${attempt[$n]} of $BOOT_ATTEMPTS${why:+: $why}); launching it again"
        attempt[$n]=$((attempt[$n] + 1))
        rmq_launch "$n"
        started[$n]=$SECONDS
        deadline=$((SECONDS + BOOT_TIMEOUT))
      fi
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS >= deadline)); then
      for n in "${pending[@]}"; do rmq_log_tail "$n"; done
      die "$(for n in "${pending[@]}"; do printf '%s ' "$(rmq_name "$n")"; done)did not boot within ${BOOT_TIMEOUT}s"
    fi
    sleep 1
  done
}

# Stops the node (rabbitmqctl stop, else kill -9) and waits until its VM is gone.
rmq_stop() {
  local "${RMQ_VARS[@]}" pid; rmq_spec "$1"
  pid=$(rmq_beam_pid "$1")
  [[ -n $pid ]] || return 0
  log "stopping $RMQ_NAME (pid $pid)"
  if ! rmq_ctl "$1" stop >/dev/null 2>&1; then
    log "rabbitmqctl stop failed; killing pid $pid"
    kill -9 "$pid" 2>/dev/null || true
  fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
}

# kill -9 of the node's VM, waiting until it is gone.
rmq_kill() {
  local "${RMQ_VARS[@]}" pid; rmq_spec "$1"
  pid=$(rmq_beam_pid "$1")
  [[ -n $pid ]] || die "$RMQ_NAME is not running"
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  echo "killed $RMQ_NAME (pid $pid)"
}

# One status line: name, ports, state (pid, RSS, version).
rmq_status_line() {
  local "${RMQ_VARS[@]}"; rmq_spec "$1"
  local pid state rss
  pid=$(rmq_beam_pid "$1")
  if [[ -z $pid ]]; then
    state=down
  else
    rss=$(($(ps -o rss= -p "$pid" | tr -d ' ') / 1024))
    if rmq_app_running "$1"; then
      state="running (pid $pid, rss ${rss} MiB, RabbitMQ $(rmq_ctl "$1" version 2>/dev/null || echo '?'))"
    else
      state="VM up, app NOT running (pid $pid, rss ${rss} MiB)"
    fi
  fi
  printf '%-22s amqp 127.0.0.1:%s  management :%s  dist :%s  epmd :%s  %s\n' "$RMQ_NAME" \
    "$RMQ_AMQP_PORT" "${RMQ_MGMT_PORT:-off}" "$RMQ_DIST_PORT" "${RMQ_EPMD_PORT:-4369}" "$state"
}

# ---- chroots ---------------------------------------------------------------

# The Debian mirror this machine's apt sources name (the first non-security
# one), else deb.debian.org.
rmq_debian_mirror() {
  local m
  m=$(
    {
      awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/*.sources 2>/dev/null
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | grep -E '/debian/?$' | grep -v security | head -n 1
  )
  echo "${m:-http://deb.debian.org/debian}"
}

# Makes sure ROOT is a chroot of Debian SUITE with rabbitmq-server installed
# (debootstrap, ~40 s and ~150 MB, when missing), with this system's
# /etc/hosts and /proc, /sys, /dev mounted. Idempotent.
rmq_chroot_ensure() {
  local root=$1 suite=$2 mirror t0=$SECONDS
  if [[ ! -x $root/usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    [[ $(id -u) -eq 0 ]] || die "making the chroot $root needs root"
    if ! command -v debootstrap >/dev/null 2>&1; then
      log "installing debootstrap (apt)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    fi
    [[ ! -e $root ]] || die "$root exists but has no rabbitmq-server: remove it (after unmounting its proc, sys and dev)"
    mirror=${DEBIAN_MIRROR:-$(rmq_debian_mirror)}
    log "building a Debian $suite chroot with rabbitmq-server in $root (mirror $mirror)"
    rmq_chroot_umount "$root.partial"
    rm -rf "$root.partial"
    mkdir -p "$(dirname "$root")"
    if ! debootstrap --variant=minbase --include=rabbitmq-server "$suite" "$root.partial" "$mirror" \
      >"$root.debootstrap.log" 2>&1; then
      rmq_chroot_umount "$root.partial"
      tail -n 20 "$root.debootstrap.log" >&2
      die "debootstrap $suite failed (log: $root.debootstrap.log)"
    fi
    rmq_chroot_umount "$root.partial"
    mv "$root.partial" "$root"
    log "chroot $root made in $((SECONDS - t0))s"
  fi
  cp /etc/hosts "$root/etc/hosts"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/sys" || mount -t sysfs sysfs "$root/sys"
  mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
}

# Unmounts what a chroot (or debootstrap) mounted inside ROOT.
rmq_chroot_umount() {
  local m
  for m in "$1/dev" "$1/sys" "$1/proc"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m"; fi
  done
}
