#!/usr/bin/env bash
# Coverage-guided fuzzing with afl.rs (stable Rust): scripts/fuzz.sh TARGET [SECONDS]
# runs one target of fuzz/ (scripts/fuzz.sh all SECONDS runs each in turn), seeded from
# fuzz/corpus/TARGET, findings in fuzz/out/TARGET. Needs `cargo install cargo-afl` once (it
# builds AFL++ from the crate's sources). A crash is a failure: the script exits 1 and names it.
# MINIMISE=1 afterwards replaces fuzz/corpus/TARGET with afl-cmin's minimal set of the queue.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
TARGETS=(http_head http_range ftp_command ftp_users ftp_client chat_rules chat_ws chat_handshake chat_backplane mp_wire tls_session)
target=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]  (targets: ${TARGETS[*]})}
secs=${2:-60}
command -v cargo-afl >/dev/null || { echo "fuzz.sh: cargo-afl is missing: cargo install cargo-afl" >&2; exit 2; }
nice -n 10 cargo afl build --release --quiet
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_QUIET=1
run() {
    local t=$1 out=out/$1
    rm -rf "$out"
    mkdir -p "$out"
    echo "== $t for ${secs}s"
    # -t: an input taking past 1 s is a hang (recorded in hangs/); -m none: our own allocator
    # bounds memory (fuzz/src/lib.rs). A short first-byte timeout keeps the dictionary small.
    nice -n 10 cargo afl fuzz -i "corpus/$t" -o "$out" -V "$secs" -t 1000 -m none \
        "target/release/$t" >"$out/log" 2>&1 || { tail -20 "$out/log"; return 1; }
    local stats=$out/default/fuzzer_stats
    grep -E '^(execs_done|edges_found|total_edges|saved_crashes|saved_hangs|corpus_count) ' "$stats"
    if [ "${MINIMISE:-0}" = 1 ]; then
        rm -rf "$out/cmin"
        nice -n 10 cargo afl cmin -i "$out/default/queue" -o "$out/cmin" -- "target/release/$t" >/dev/null
        rm -rf "corpus/$t" && mkdir -p "corpus/$t"
        # Keep the committed corpus small: inputs up to 4 KiB.
        find "$out/cmin" -type f -size -4k -exec cp {} "corpus/$t/" \;
    fi
    local crashes
    crashes=$(find "$out/default/crashes" "$out/default/hangs" -type f ! -name README.txt | wc -l)
    if [ "$crashes" -gt 0 ]; then
        echo "fuzz.sh: $t: $crashes crash/hang inputs in $out/default/{crashes,hangs}" >&2
        return 1
    fi
}
if [ "$target" = all ]; then
    rc=0
    for t in "${TARGETS[@]}"; do run "$t" || rc=1; done
    exit $rc
fi
run "$target"
