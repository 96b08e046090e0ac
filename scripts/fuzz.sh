#!/usr/bin/env bash
# Coverage-guided fuzzing with afl.rs (stable Rust): scripts/fuzz.sh TARGET [SECONDS]
# runs one target of fuzz/ (scripts/fuzz.sh all SECONDS runs each in turn), seeded from
# fuzz/corpus/TARGET, findings in fuzz/out/TARGET. Needs `cargo install cargo-afl` once (it
# builds AFL++ from the crate's sources). A crash is a failure: the script exits 1 and names it.
# MINIMISE=1 afterwards replaces fuzz/corpus/TARGET with afl-cmin's minimal set of the queue
# (scripts/fuzz.sh minimise TARGET... does only that, from the last run's queue);
# scripts/fuzz.sh table prints the last runs' figures as Markdown rows.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
TARGETS=(http_head http_range ftp_command ftp_users ftp_client chat_rules chat_ws chat_handshake chat_backplane mp_wire tls_session)
target=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]  (targets: ${TARGETS[*]})}
secs=${2:-60}
command -v cargo-afl >/dev/null || { echo "fuzz.sh: cargo-afl is missing: cargo install cargo-afl" >&2; exit 2; }
[ "$target" = table ] || nice -n 10 cargo afl build --release --quiet
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_QUIET=1
# afl-cmin's shell version (cargo afl cmin runs the Python one, which here keeps no file).
minimise() {
    local t=$1 out=out/$1 bin
    bin=$(ls -d "$HOME"/.local/share/afl.rs/rustc-*/afl.rs-*/afl/bin | tail -1)
    rm -rf "$out/cmin"
    PATH=$bin:$PATH AFL_PATH=$bin nice -n 10 "$bin/afl-cmin.bash" -i "$out/default/queue" \
        -o "$out/cmin" -- "target/release/$t" >"$out/cmin.log" 2>&1
    local n
    n=$(find "$out/cmin" -type f -size -4097c | wc -l)
    [ "$n" -gt 0 ] || { echo "fuzz.sh: afl-cmin kept nothing for $t; corpus unchanged" >&2; return 0; }
    # Keep the committed corpus small: inputs up to 4 KiB, named by content.
    rm -rf "corpus/$t" && mkdir -p "corpus/$t"
    find "$out/cmin" -type f -size -4097c | while read -r f; do
        cp "$f" "corpus/$t/$(sha1sum "$f" | cut -c1-16)"
    done
    echo "$t: corpus minimised to $n inputs ($(cat "corpus/$t"/* | wc -c) bytes)"
}
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
    if [ "${MINIMISE:-0}" = 1 ]; then minimise "$t"; fi
    local crashes
    crashes=$(find "$out/default/crashes" "$out/default/hangs" -type f ! -name README.txt | wc -l)
    if [ "$crashes" -gt 0 ]; then
        echo "fuzz.sh: $t: $crashes crash/hang inputs in $out/default/{crashes,hangs}" >&2
        return 1
    fi
}
if [ "$target" = table ]; then
    # The last run of each target as a Markdown row (docs/FUZZING.md).
    for t in "${TARGETS[@]}"; do
        f=out/$t/default/fuzzer_stats
        [ -f "$f" ] || continue
        v() { awk -v k="$1" '$1 == k { print $3 }' "$f"; }
        echo "| \`$t\` | $(v run_time) s | $(v execs_done) | $(v edges_found) / $(v total_edges) | $(v saved_crashes) | $(v saved_hangs) | $(ls "corpus/$t" | wc -l) |"
    done
    exit 0
fi
if [ "$target" = minimise ]; then
    for t in "${@:2}"; do minimise "$t"; done
    exit 0
fi
if [ "$target" = all ]; then
    rc=0
    for t in "${TARGETS[@]}"; do run "$t" || rc=1; done
    exit $rc
fi
run "$target"
