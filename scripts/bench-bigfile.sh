#!/usr/bin/env bash
# Big files at nginx's pace: bytes/s serving one 64 MiB file, bingfa's default model beside
# nginx, in alternating rounds so that a busy neighbour (other builds on the machine) hurts
# both servers alike. Prints one Markdown table per load shape with every round and the median
# of the per-round ratios.
#
#   scripts/bench-bigfile.sh                         # 7 rounds, wrk -t1 -c4 and -t2 -c4, 3 s
#   ROUNDS=3 SHAPES="1:4" DURATION=5 scripts/bench-bigfile.sh
#   MODEL=async scripts/bench-bigfile.sh             # another model against nginx
#   BIN=/tmp/old-bingfa scripts/bench-bigfile.sh     # another build (e.g. before a change)
#
# Needs: wrk, nginx (apt-get install wrk nginx), python3. nginx runs with `sendfile on;
# tcp_nopush on;` and 2 workers; bingfa with `--workers 2`. Everything binds 127.0.0.1 on free
# ports and every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-3}
SHAPES=${SHAPES:-"1:4 2:4"}
WORKERS=${WORKERS:-2}
MODEL=${MODEL:-epoll}

bench_need bench-bigfile wrk nginx python3

bench_bin

bench_workdir bingfa-bigfile

ROOT=$WORK/root
mkdir -p "$ROOT"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$ROOT/big.bin"
chmod -R a+rX "$ROOT"
# Both servers read it from the page cache.
cat "$ROOT/big.bin" >/dev/null


NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
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
  types { application/octet-stream bin; }
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $ROOT; }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
PIDS+=($!)
wait_port "$NGINX_PORT"

BINGFA_PORT=$(free_port)
"$BIN" http serve --bind "127.0.0.1:$BINGFA_PORT" --root "$ROOT" --model "$MODEL" --workers "$WORKERS" \
  >"$WORK/bingfa.out" 2>"$WORK/bingfa.err" &
PIDS+=($!)
wait_port "$BINGFA_PORT"

# bytes/s of one wrk run: wrk prints Transfer/sec with 1024-based units.
run_wrk() { # THREADS CONNS PORT
  wrk -t"$1" -c"$2" -d"${DURATION}s" "http://127.0.0.1:$3/big.bin" 2>&1 |
    awk '/^Transfer\/sec/ {
      v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v);
      m = 1; if (u == "KB") m = 1024; if (u == "MB") m = 1048576; if (u == "GB") m = 1073741824;
      printf "%.0f\n", v * m }'
}

gbs() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }

echo "# bench-bigfile: $(date -u +%FT%TZ), $(nproc) CPUs, 64 MiB file, ${DURATION}s per run, $ROUNDS rounds"
echo "# nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (sendfile on; tcp_nopush on; 2 workers) vs bingfa --model $MODEL --workers $WORKERS ($BIN)"
echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in $SHAPES; do
  t=${shape%%:*}
  c=${shape##*:}
  echo
  echo "wrk -t$t -c$c -d${DURATION}s"
  echo
  echo "| round | first | nginx GB/s | bingfa GB/s | bingfa / nginx |"
  echo "|---|---|---|---|---|"
  ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
      n=$(run_wrk "$t" "$c" "$NGINX_PORT"); b=$(run_wrk "$t" "$c" "$BINGFA_PORT"); first=nginx
    else
      b=$(run_wrk "$t" "$c" "$BINGFA_PORT"); n=$(run_wrk "$t" "$c" "$NGINX_PORT"); first=bingfa
    fi
    ratio=$(awk -v b="$b" -v n="$n" 'BEGIN { printf "%.3f", (n > 0 ? b / n : 0) }')
    ratios+=("$ratio")
    echo "| $r | $first | $(gbs "$n") | $(gbs "$b") | $ratio |"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
  echo
  echo "median bingfa / nginx (wrk -t$t -c$c): **${median}×**"
done
echo
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
