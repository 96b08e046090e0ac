#!/usr/bin/env bash
# Checks that `bingfa lab models` (the lab's own load generator) agrees with wrk: the same
# server (the default model, 2 workers, a 1 KiB file over 50 keep-alive connections) loaded by
# each in alternating rounds; prints requests/s per round and the medians.
#
#   ROUNDS=5 DURATION=5 scripts/lab-vs-wrk.sh       # needs wrk (apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
bench_need lab-vs-wrk wrk python3
bench_bin
WORK=$(mktemp -d /tmp/bingfa-labwrk.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/root"
head -c 1024 /dev/zero | tr '\0' 'a' >"$WORK/root/small.html"

lab=() wrk=()
for r in $(seq "$ROUNDS"); do
  run_lab() {
    "$BIN" lab models --app http --models epoll --workers 2 --connections "$CONNS" \
      --duration "$DURATION" --rounds 1 --json 2>/dev/null |
      python3 -c 'import json,sys; print(round(json.load(sys.stdin)[0]["rate"]["median"]))'
  }
  run_wrk() {
    "$BIN" http serve --bind 127.0.0.1:0 --root "$WORK/root" --model epoll --workers 2 \
      >"$WORK/out" 2>/dev/null &
    PID=$!
    for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.05; done
    local addr
    addr=$(awk '/listening on/ {print $4}' "$WORK/out")
    wrk -t2 -c"$CONNS" -d"${DURATION}s" "http://$addr/small.html" |
      awk '/Requests\/sec/ {printf "%d\n", $2}'
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  }
  if [ $((r % 2)) -eq 1 ]; then a=$(run_lab); b=$(run_wrk); else b=$(run_wrk); a=$(run_lab); fi
  lab+=("$a"); wrk+=("$b")
  echo "round $r: lab $a req/s, wrk $b req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ml=$(median "${lab[@]}"); mw=$(median "${wrk[@]}")
echo "median: lab $ml req/s, wrk $mw req/s, lab/wrk $(python3 -c "print(f'{$ml/$mw:.2f}')")"
