#!/usr/bin/env bash
# Dependency audit with cargo-deny and deny.toml: RustSec advisories (and
# yanked crates), licenses, banned crates, and sources. Installs the pinned
# cargo-deny when it is missing. Exits non-zero on any finding.
#
# The advisory database is a git repository on GitHub, fetched at every run.
# Where GitHub cannot be reached the advisories cannot be checked: the script
# then uses a database fetched earlier if there is one, and otherwise says so
# loudly and checks the rest. Set AUDIT_REQUIRE_ADVISORIES=1 to fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"

if [[ "$(cargo deny --version 2>/dev/null || true)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
    echo "audit: installing cargo-deny $CARGO_DENY_VERSION (compiles for a few minutes)"
    cargo install cargo-deny --locked --force --version "$CARGO_DENY_VERSION"
fi

status=0
advisories="checked"

echo "audit: bans, licenses, sources"
cargo deny --locked check --hide-inclusion-graph bans licenses sources || status=1

echo "audit: advisories"
if timeout 300 cargo deny --locked fetch db; then
    cargo deny --locked check --hide-inclusion-graph advisories || status=1
elif compgen -G "$CARGO_HOME/advisory-dbs/*/.git" >/dev/null; then
    echo "audit: WARNING: could not update the advisory database; checking against the copy" \
        "fetched earlier (cargo-deny refuses a copy older than its staleness limit, 90 days by default)" >&2
    cargo deny --locked --offline check --hide-inclusion-graph advisories || status=1
else
    echo "audit: WARNING: the RustSec advisory database (github.com/rustsec/advisory-db) cannot" \
        "be fetched from here and no earlier copy exists: ADVISORIES WERE NOT CHECKED" >&2
    advisories="NOT CHECKED"
    if [[ "${AUDIT_REQUIRE_ADVISORIES:-0}" == 1 ]]; then
        status=1
    fi
fi

if [[ $status -ne 0 ]]; then
    echo "audit: FAILED" >&2
else
    echo "audit: ok (advisories $advisories)"
fi
exit $status
