#!/usr/bin/env bash
# What one small-file request costs each server: system calls per request (by name) and CPU
# per request (user and system), for nginx and bingfa's models, in the same run.
#
#   scripts/http-costs.sh                      # nginx, bingfa epoll, thread, async
#   MODELS="epoll" DURATION=3 scripts/http-costs.sh
#
# Each server serves a 1 KiB file to `wrk -t2 -c50` (keep-alive) twice:
# - once untraced: utime and stime of every process of the server (/proc/PID/stat, all
#   threads; nginx's workers are its master's children) before and after, divided by the
#   requests wrk counted;
# - once under `strace -c -f -p` (every thread/worker): calls by name divided by the requests
#   served. Tracing slows the server, so more events arrive per epoll_wait: calls that are
#   once per loop turn (epoll_wait) are fewer per request than untraced; once-per-request calls
#   are exact.
# Needs: wrk, nginx, strace, python3. Everything binds 127.0.0.1; processes are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
MODELS=${MODELS-"epoll thread async"}

bench_need http-costs wrk nginx strace python3
bench_bin
bench_workdir bingfa-costs

ROOT=$WORK/root
mkdir -p "$ROOT" "$WORK/nginx"
head -c 1024 /dev/urandom | base64 -w 76 | head -c 1024 >"$ROOT/small.html"
chmod -R a+rX "$ROOT"
HZ=$(getconf CLK_TCK)

start_nginx() {
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 60;
  types { text/html html; }
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$1; root $ROOT; }
}
EOF
  nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
  PIDS+=($!)
  wait_port "$1"
}

start_bingfa() {
  "$BIN" http serve --bind "127.0.0.1:$2" --root "$ROOT" --model "$1" --workers "$WORKERS" \
    >"$WORK/bingfa.out" 2>"$WORK/bingfa.err" &
  PIDS+=($!)
  wait_port "$2"
}

stop_last() {
  local pid=${PIDS[-1]}
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'
}

# The server's processes: the one started and its children (nginx's workers).
procs() { echo "$1" $(pgrep -P "$1" || true); }

# cpu_ticks PID → "utime stime" summed over the server's processes (all their threads).
cpu_ticks() {
  local u=0 s=0 p f
  for p in $(procs "$1"); do
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a a <<<"$f"
    u=$((u + a[11])) s=$((s + a[12]))
  done
  echo "$u $s"
}

# requests PORT → the number wrk completed (non-2xx would be an error: refused).
requests() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$1/small.html" 2>&1)
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
    echo "http-costs: errors: $out" >&2
    exit 1
  fi
  awk '/requests in/ {print $1}' <<<"$out"
}

measure() { # NAME PORT PID
  local name=$1 port=$2 pid=$3
  wrk -t1 -c2 -d1s "http://127.0.0.1:$port/small.html" >/dev/null # warm up
  read -r u0 s0 <<<"$(cpu_ticks "$pid")"
  local n
  n=$(requests "$port")
  read -r u1 s1 <<<"$(cpu_ticks "$pid")"
  local cpu_row
  cpu_row=$(awk -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$HZ" -v d="$DURATION" 'BEGIN {
    us = 1e6 / hz / n
    printf "%.0f | %.2f | %.2f | %.2f", n / d, u * us, s * us, (u + s) * us }')
  echo "| $name | $cpu_row |" >>"$WORK/cpu.md"

  local tracers=() p
  for p in $(procs "$pid"); do
    strace -c -f -o "$WORK/strace.$p" -p "$p" 2>/dev/null &
    tracers+=($!)
  done
  sleep 0.5
  n=$(requests "$port")
  for p in "${tracers[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${tracers[@]}"; do wait "$p" 2>/dev/null || true; done
  # strace -c: "% time seconds usecs/call calls [errors] syscall"; sum calls per name.
  local per
  per=$(cat "$WORK"/strace.* | awk -v n="$n" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
      calls[$NF] += $4; if (NF == 6) errs[$NF] += $5 }
    END {
      for (c in calls) {
        e = (c in errs) && errs[c] / n >= 0.005 ? sprintf(" (%.2f fail)", errs[c] / n) : ""
        if (calls[c] / n >= 0.005) printf "%.2f %s%s\n", calls[c] / n, c, e
      } }' | sort -rn)
  local total
  total=$(awk '{t += $1} END {printf "%.2f", t}' <<<"$per")
  echo "| $name | $n | $total | $(awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1; for (i = 3; i <= NF; i++) printf " %s", $i}' <<<"$per") |" >>"$WORK/sys.md"
  rm -f "$WORK"/strace.*
}

echo "# http-costs: $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$THREADS -c$CONNS -d${DURATION}s, 1 KiB file, workers=$WORKERS"
echo "| server | req/s (untraced) | user µs/req | system µs/req | CPU µs/req |" >"$WORK/cpu.md"
echo "|---|---|---|---|---|" >>"$WORK/cpu.md"
echo "| server | requests traced | syscalls/req | per request, by name (failures) |" >"$WORK/sys.md"
echo "|---|---|---|---|" >>"$WORK/sys.md"

port=$(free_port); start_nginx "$port"
measure "nginx ($WORKERS workers)" "$port" "${PIDS[-1]}"
stop_last
for m in $MODELS; do
  port=$(free_port); start_bingfa "$m" "$port"
  measure "bingfa $m" "$port" "${PIDS[-1]}"
  stop_last
done
echo
cat "$WORK/cpu.md"
echo
cat "$WORK/sys.md"
