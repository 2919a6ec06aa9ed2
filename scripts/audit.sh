#!/usr/bin/env bash
# Dependency audit with cargo-deny and deny.toml: RustSec advisories (and
# yanked crates), licenses, banned crates, and sources. Installs the pinned
# cargo-deny when it is missing. Exits non-zero on any finding.
#
# Advisories are always checked. The RustSec database is a git repository on
# GitHub, fetched first; where GitHub cannot be reached (this kind of
# machine), the dated snapshot beside the repository is used instead
# (../shared/advisory-db.tar.gz, as CI lays it out, or ADVISORY_DB_SNAPSHOT;
# the steps are those of ../shared/advisory-db.md). The run prints which
# database it checked against and its date. With neither, it fails.
# An advisory that does not apply goes into deny.toml's `ignore`, with why.
#
#   scripts/audit.sh              the audit
#   scripts/audit.sh --self-test  shows that a finding fails it: an advisory
#                                 planted in a copy of the database against a
#                                 crate we use must be reported
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"
# Where cargo-deny keeps the database of deny.toml's db-urls: db-path, then
# a directory named after the URL (cargo-deny derives it; see advisory-db.md).
DB_ROOT="$CARGO_HOME/advisory-dbs"
DB="$DB_ROOT/advisory-db-3157b0e258782691"
WORK=target/audit

if [[ "$(cargo deny --version 2>/dev/null || true)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
    echo "audit: installing cargo-deny $CARGO_DENY_VERSION (compiles for a few minutes)"
    cargo install cargo-deny --locked --force --version "$CARGO_DENY_VERSION"
fi

# The snapshot archive, if there is one.
snapshot_archive() {
    local f
    for f in "${ADVISORY_DB_SNAPSHOT:-}" ../shared/advisory-db.tar.gz /work/shared/advisory-db.tar.gz; do
        if [[ -n "$f" && -f "$f" ]]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

# The snapshot's commit date: from the notes beside the archive, else the
# newest file in it.
snapshot_date() {
    local archive=$1 notes date
    notes="$(dirname "$archive")/advisory-db.md"
    date=$(sed -n 's/.*committed \([0-9][0-9T:+-]*\).*/\1/p' "$notes" 2>/dev/null | head -n1)
    if [[ -z "$date" ]]; then
        date=$(tar tzvf "$archive" | awk '{print $4 "T" $5 ":00Z"}' | sort | tail -n1)
    fi
    echo "$date"
}

# The commit date of the database cargo-deny would read, or nothing.
db_date() {
    git -C "$DB" log -1 --format=%cI 2>/dev/null || true
}

# Installs the snapshot where cargo-deny looks, as a git repository whose
# commit carries the snapshot's date (cargo-deny reads its age from it).
install_snapshot() {
    local archive=$1 date=$2
    rm -rf "$WORK/extract" "$DB"
    mkdir -p "$WORK/extract" "$DB_ROOT"
    tar xzf "$archive" -C "$WORK/extract"
    mv "$WORK/extract/advisory-db" "$DB"
    git -C "$DB" init -q
    git -C "$DB" remote add origin https://github.com/rustsec/advisory-db
    git -C "$DB" add -A
    GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" git -C "$DB" \
        -c user.name=audit -c user.email=audit@localhost commit -q -m "RustSec advisory-db snapshot of $date"
}

# deny.toml with a staleness limit that admits a database of this date
# (cargo-deny refuses one older than 90 days by default); the live database
# is checked against deny.toml itself.
config_for_age() {
    local date=$1 days
    days=$(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 + 1 ))
    mkdir -p "$WORK"
    sed "s/^\[advisories\]$/[advisories]\nmaximum-db-staleness = \"P${days}D\"/" deny.toml >"$WORK/deny.toml"
    echo "$WORK/deny.toml"
}

# The check against a copy of the database with one advisory planted
# against humantime (a direct dependency): it must fail and name it.
self_test() {
    local copy="$WORK/self-test-db" date out
    date=$(db_date)
    if [[ -z "$date" ]]; then
        echo "audit self-test: no advisory database yet; run scripts/audit.sh first" >&2
        return 1
    fi
    rm -rf "$copy"
    mkdir -p "$copy"
    cp -r "$DB" "$copy/"
    cat >"$copy/$(basename "$DB")/crates/humantime/RUSTSEC-2026-9999.md" <<'ADVISORY'
```toml
[advisory]
id = "RUSTSEC-2026-9999"
package = "humantime"
date = "2026-01-01"

[versions]
patched = []
```

# Planted by scripts/audit.sh --self-test

Not a real advisory: the audit must fail on it.
ADVISORY
    GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" git -C "$copy/$(basename "$DB")" \
        -c user.name=audit -c user.email=audit@localhost commit -q -a -m "planted" --allow-empty
    git -C "$copy/$(basename "$DB")" add -A
    GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" git -C "$copy/$(basename "$DB")" \
        -c user.name=audit -c user.email=audit@localhost commit -q --amend --no-edit
    sed "s#^db-path = .*#db-path = \"$PWD/$copy\"#" "$(config_for_age "$date")" >"$WORK/self-test.toml"
    if out=$(cargo deny --locked --offline --config "$WORK/self-test.toml" \
        check --hide-inclusion-graph advisories 2>&1); then
        echo "$out" >&2
        echo "audit self-test FAILED: a planted advisory against humantime was not reported" >&2
        return 1
    fi
    if ! grep -q "RUSTSEC-2026-9999" <<<"$out"; then
        echo "$out" >&2
        echo "audit self-test FAILED: the check failed, but not on the planted advisory" >&2
        return 1
    fi
    grep -m2 -E "^error|RUSTSEC-2026-9999" <<<"$out"
    echo "audit self-test: ok (the planted advisory fails the check)"
}

status=0
mkdir -p "$WORK"
if [[ "${1:-}" == --self-test ]]; then
    self_test
    exit $?
fi

echo "audit: bans, licenses, sources"
cargo deny --locked check --hide-inclusion-graph bans licenses sources || status=1

echo "audit: advisories"
if timeout 120 cargo deny --locked fetch db 2>"$WORK/fetch.log"; then
    echo "audit: advisory database: live (github.com/rustsec/advisory-db), commit of $(db_date)"
    cargo deny --locked check --hide-inclusion-graph advisories || status=1
else
    reason=$(grep -m1 -o 'fatal: .*' "$WORK/fetch.log" || tail -n1 "$WORK/fetch.log")
    echo "audit: the live advisory database cannot be fetched (${reason:-no reason given})" >&2
    if archive=$(snapshot_archive); then
        date=$(snapshot_date "$archive")
        have=$(db_date)
        if [[ -z "$have" ]] || [[ $(date -d "$have" +%s) -lt $(date -d "$date" +%s) ]]; then
            install_snapshot "$archive" "$date"
        fi
    fi
    if [[ -n "$(db_date)" ]]; then
        date=$(db_date)
        echo "audit: advisory database: offline copy dated $date" \
            "($(( ($(date +%s) - $(date -d "$date" +%s)) / 86400 )) days old; snapshot: ${archive:-none})"
        cargo fetch --locked --quiet
        cargo deny --locked --offline --config "$(config_for_age "$date")" \
            check --hide-inclusion-graph advisories || status=1
    else
        echo "audit: no advisory database: neither the live one nor a snapshot" \
            "(../shared/advisory-db.tar.gz or ADVISORY_DB_SNAPSHOT): ADVISORIES NOT CHECKED" >&2
        status=1
    fi
fi

if [[ $status -ne 0 ]]; then
    echo "audit: FAILED" >&2
else
    echo "audit: ok"
fi
exit $status
