#!/usr/bin/env bash
# System calls and wake-ups per HTTP request, per model: what `--model uring` changes beside
# `epoll` (or any models given). Three loads, the server on one worker:
#   - sequential: N requests for a 1 KiB file one after another on one keep-alive connection
#     (curl);
#   - concurrent: the 1 KiB file, wrk -t1 -c50 for DURATION seconds (the request count is wrk's);
#   - bigfile: a 16 MiB file, wrk -t1 -c4 for DURATION seconds (sendfile blocks on a full socket,
#     so the loop watches for writability and stops again: interest changes);
#   - newconn: the 1 KiB file, wrk -t1 -c50 -H 'Connection: close' for DURATION seconds: a new
#     connection per request, so the accepts show (the "accepts" column counts accept4 and
#     getpeername, the calls a connection's admission makes outside the ring);
#   - newseq: N requests one after another, each on a new connection (curl, Connection: close):
#     one accept per wake-up, where a batch cannot share the drain's last accept4.
# KINDS picks the loads (default: all five).
# Each load runs twice per model: under `strace -c -f` (system calls, by name), and bare, for the
# wake-ups (voluntary context switches of the server's threads, from /proc, so strace's own
# stops are not counted). Rounds alternate which model runs first.
#
#   scripts/syscalls-per-request.sh                       # epoll and uring, release build
#   BIN=target/debug/bingfa N=2000 ROUNDS=3 MODELS="epoll uring poll" scripts/syscalls-per-request.sh
#
# Needs: strace, curl, wrk, python3. Prints one Markdown table (medians over the rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

N=${N:-2000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
MODELS=${MODELS:-"epoll uring"}
KINDS=${KINDS:-"sequential concurrent bigfile newconn newseq"}

bench_need syscalls-per-request strace curl wrk python3
bench_bin
bench_workdir bingfa-syscalls
head -c 1024 /dev/urandom >"$WORK/1k.bin"
head -c 16M /dev/urandom >"$WORK/16m.bin"

# start MODEL — sets SRV (pid) and PORT.
start() {
  PORT=$(free_port)
  "$BIN" http serve --root "$WORK" --bind "127.0.0.1:$PORT" --model "$1" --workers 1 \
    >"$WORK/ready" 2>"$WORK/log" &
  SRV=$!
  PIDS+=("$SRV")
  wait_port "$PORT"
}
stop() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; }

# The server's voluntary context switches so far, all threads.
switches() {
  cat /proc/"$SRV"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'
}

# load KIND — run the load; prints the number of requests served.
load() {
  if [ "$1" = sequential ] || [ "$1" = newseq ]; then
    : >"$WORK/urls"
    for _ in $(seq "$N"); do
      printf 'url = "http://127.0.0.1:%s/1k.bin"\noutput = "/dev/null"\n' "$PORT" >>"$WORK/urls"
    done
    if [ "$1" = newseq ]; then
      curl -s --fail -H 'Connection: close' -K "$WORK/urls"
    else
      curl -s --fail -K "$WORK/urls"
    fi
    echo "$N"
  elif [ "$1" = concurrent ]; then
    wrk -t1 -c50 -d"${DURATION}s" "http://127.0.0.1:$PORT/1k.bin" | awk '/requests in/ {print $1}'
  elif [ "$1" = newconn ]; then
    wrk -t1 -c50 -d"${DURATION}s" -H 'Connection: close' "http://127.0.0.1:$PORT/1k.bin" |
      awk '/requests in/ {print $1}'
  else
    wrk -t1 -c4 -d"${DURATION}s" "http://127.0.0.1:$PORT/16m.bin" | awk '/requests in/ {print $1}'
  fi
}

# traced MODEL KIND — "calls_per_request enters_per_request": every system call of the
# server's threads under strace -c, and those that wait (epoll_wait, io_uring_enter, poll).
traced() {
  start "$1"
  strace -c -f -q -o "$WORK/strace" -p "$SRV" &
  local st=$!
  sleep 1 # strace attaches to every thread
  local reqs
  reqs=$(load "$2")
  kill -INT "$st"
  wait "$st" 2>/dev/null || true
  stop
  awk -v r="$reqs" '
    $NF == "total" { total = $4 }
    $NF ~ /^(epoll_wait|epoll_pwait|io_uring_enter|poll|ppoll)$/ { w += $4 }
    $NF ~ /^(epoll_ctl)$/ { c += $4 }
    $NF ~ /^(accept|accept4|getpeername)$/ { a += $4 }
    END { printf "%.2f %.2f %.2f %.2f\n", total / r, w / r, c / r, a / r }' "$WORK/strace"
}

# bare MODEL KIND — wake-ups per request.
bare() {
  start "$1"
  local before reqs after
  before=$(switches)
  reqs=$(load "$2")
  after=$(switches)
  stop
  awk -v a="$after" -v b="$before" -v r="$reqs" 'BEGIN { printf "%.2f\n", (a - b) / r }'
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

declare -A CALLS WAITS CTLS ACCS WAKES
list=($MODELS)
for round in $(seq "$ROUNDS"); do
  # Alternate which model goes first.
  if [ $((round % 2)) -eq 0 ]; then
    order=$(printf '%s\n' "${list[@]}" | tac)
  else
    order=$(printf '%s\n' "${list[@]}")
  fi
  for m in $order; do
    for kind in $KINDS; do
      read -r c w e a < <(traced "$m" "$kind")
      CALLS[$m.$kind]+="$c "
      WAITS[$m.$kind]+="$w "
      CTLS[$m.$kind]+="$e "
      ACCS[$m.$kind]+="$a "
      WAKES[$m.$kind]+="$(bare "$m" "$kind") "
    done
  done
done

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds, medians; N=$N sequential; wrk -t1 -c50 (1 KiB; newconn with Connection: close), -c4 (16 MiB), -d${DURATION}s"
echo
echo "| model | load | system calls / request | of them waits (epoll_wait, io_uring_enter) | epoll_ctl | accepts (accept4, getpeername) | wake-ups / request |"
echo "|---|---|---|---|---|---|---|"
for m in "${list[@]}"; do
  for kind in $KINDS; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$kind" \
      "$(tr ' ' '\n' <<<"${CALLS[$m.$kind]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${WAITS[$m.$kind]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${CTLS[$m.$kind]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${ACCS[$m.$kind]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${WAKES[$m.$kind]}" | grep . | median)"
  done
done
