#!/usr/bin/env bash
# What the egress tests need beside the broker (tests/it/rotation.rs,
# tests/it/mtls.rs, tests/it/proxy*.rs):
#   - the forward proxies the proxy tests start on loopback, one per test:
#     Debian's tinyproxy (HTTP CONNECT) and microsocks (SOCKS5);
#   - python3 with the Standard Webhooks reference library (PyPI
#     `standardwebhooks`), which verifies rotated signatures.
# Usage: scripts/egress.sh deps   (idempotent: installs only what is missing)
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

deps() {
  local missing=()
  command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy)
  command -v microsocks >/dev/null 2>&1 || missing+=(microsocks)
  command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
    log "installing the Standard Webhooks reference library (pip: standardwebhooks)"
    python3 -m pip install -q standardwebhooks 2>/dev/null ||
      python3 -m pip install -q --break-system-packages standardwebhooks
  fi
}

case "${1:-}" in
  deps) deps ;;
  *) echo "usage: $0 deps" >&2; exit 2 ;;
esac
