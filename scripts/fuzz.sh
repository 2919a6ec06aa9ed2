#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer) of every parser that
# reads someone else's bytes: one target after another, each for SECONDS
# (default 60), starting from the committed corpus (fuzz/corpus/<target>)
# copied to a temporary directory, so the repository's corpus is never
# touched by a run.
#
#   scripts/fuzz.sh [SECONDS]            every target for SECONDS each
#   FUZZ_RUNS=10000000 scripts/fuzz.sh   every target for that many executions
#   FUZZ_TARGETS="schedule target" ...   only these targets
#   FUZZ_MERGE=1 ...                     afterwards, minimise what the run found
#                                        (cargo fuzz cmin, a set cover of the
#                                        edges) into fuzz/corpus/
#   FUZZ_ARGS="-max_len=512" ...        more libFuzzer flags for every target
#   FUZZ_JOBS=2 ...                      run that many targets at a time (each for its
#                                        full SECONDS; their output interleaves)
#   FUZZ_BUILD_ONLY=1 ...                build the targets, run nothing (CI builds them
#                                        in the background while the tests run)
#   FUZZ_SANITIZER=address ...           build with ASan (default none: the crate
#                                        forbids unsafe code; overflow checks are on)
#
# Fails if any target crashes or breaks a property; the crashing input is
# printed (path, base64 and hex) and kept in fuzz/artifacts/<target>/.
# Installs cargo-fuzz when it is missing; RUSTC_BOOTSTRAP=1 lets it use the
# stable toolchain's -Z flags.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CARGO_FUZZ_VERSION=0.13.2
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"
export RUSTC_BOOTSTRAP=1
seconds="${1:-60}"
jobs_max="${FUZZ_JOBS:-1}"
if ! [[ "$jobs_max" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz: FUZZ_JOBS must be a positive whole number, not '$jobs_max'" >&2
    exit 2
fi
sanitizer="${FUZZ_SANITIZER:-none}"
# One build directory per sanitizer: switching does not rebuild the other.
build_flags=(--release --debug-assertions --sanitizer "$sanitizer"
    --target-dir "$root/fuzz/target/sanitizer-$sanitizer")

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --force cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

cd fuzz
read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"
started=$(date +%s)
echo "fuzz: building ${#targets[@]} targets (sanitizer $sanitizer, debug assertions on)"
cargo fuzz build "${build_flags[@]}"
echo "fuzz: built in $(($(date +%s) - started)) s"
if [[ "${FUZZ_BUILD_ONLY:-0}" == 1 ]]; then
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n "${FUZZ_RUNS:-}" ]]; then
    limit=(-runs="$FUZZ_RUNS")
    echo "fuzz: $FUZZ_RUNS executions per target"
else
    limit=(-max_total_time="$seconds")
    echo "fuzz: $seconds s per target"
fi

# One target: its log in $work/<t>.log, its table row in $work/<t>.row,
# and $work/<t>.failed when it failed.
run_target() {
    local t=$1 log status runs secs last cov ft corp rate f kept
    local -a dict
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    if [[ -d "corpus/$t" ]]; then
        cp -R "corpus/$t/." "$work/corpus/$t/"
    fi
    dict=()
    if [[ -f "dict/$t.dict" ]]; then
        dict=(-dict="dict/$t.dict")
    fi
    echo "fuzz: $t ($(find "$work/corpus/$t" -type f | wc -l) corpus files)"
    log="$work/$t.log"
    status=0
    # FUZZ_ARGS is split into libFuzzer flags on purpose
    # shellcheck disable=SC2086
    cargo fuzz run "${build_flags[@]}" "$t" "$work/corpus/$t" -- \
        "${limit[@]}" "${dict[@]}" ${FUZZ_ARGS:-} -artifact_prefix="$work/artifacts/$t/" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    last=$(grep -E '(cov|ft): ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    rate=""
    if [[ -n "$runs" && -n "$secs" && "$secs" -gt 0 ]]; then
        rate=$((runs / secs))
    fi
    echo "| \`$t\` | ${runs:-?} | ${secs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} |" >"$work/$t.row"
    if [[ $status -ne 0 ]]; then
        touch "$work/$t.failed"
        echo "fuzz: $t FAILED (exit $status); the end of its log:" >&2
        tail -n 60 "$log" >&2
        mkdir -p "$root/fuzz/artifacts/$t"
        for f in "$work/artifacts/$t"/*; do
            [[ -f "$f" ]] || continue
            kept="$root/fuzz/artifacts/$t/$(basename "$f")"
            cp "$f" "$kept"
            echo "fuzz: $t crashing input: $kept ($(wc -c <"$f") bytes)" >&2
            echo "fuzz: base64: $(base64 -w0 "$f")" >&2
            echo "fuzz: hex:" >&2
            od -An -tx1 -v "$f" | head -n 64 >&2
            echo "fuzz: reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} $t $kept" >&2
        done
    else
        echo "fuzz: $t ok: ${runs:-?} runs in ${secs:-?} s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
        if [[ "${FUZZ_MERGE:-0}" == 1 ]]; then
            # A set cover of the edges (not of hit counts): a few hundred
            # small files per target, which regain the counts in seconds.
            cargo fuzz cmin "${build_flags[@]}" "$t" "$work/corpus/$t" -- \
                -set_cover_merge=1 -use_counters=0 -use_cmp=0 >"$work/$t.cmin.log" 2>&1
            rm -rf "corpus/$t"
            mkdir -p "corpus/$t"
            cp -R "$work/corpus/$t/." "corpus/$t/"
            echo "fuzz: $t corpus minimised to $(find "corpus/$t" -type f | wc -l) files"
        fi
    fi
}

# FUZZ_JOBS targets at a time (default 1): each still runs its full time.
for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
    run_target "$t" &
done
wait

failed=()
rows=()
for t in "${targets[@]}"; do
    rows+=("$(cat "$work/$t.row" 2>/dev/null || echo "| \`$t\` | ? | ? | ? | ? | ? | ? |")")
    if [[ -e "$work/$t.failed" || ! -e "$work/$t.row" ]]; then
        failed+=("$t")
    fi
done

echo
echo "| target | executions | seconds | exec/s | cov | ft | corpus (files/bytes) |"
echo "|---|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
echo
echo "fuzz: $(($(date +%s) - started)) s in all"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ok (${#targets[@]} targets)"
