#!/usr/bin/env bash
# Benchmarks `bingfa http serve` against nginx in the same run, with the same load generator.
#
#   scripts/bench-http.sh                 # nginx vs the default model, then every model
#   MODELS="epoll async" IDLE_MODELS="" DURATION=5 scripts/bench-http.sh   # empty = skip
#   MODELS="" IDLE_MODELS="" ACCESS_ROUNDS=5 scripts/bench-http.sh   # only the access-log row
#   MODELS="" IDLE_MODELS="" ACCESS_ROUNDS=0 COMPRESS_ROUNDS=0 RATIO_ROUNDS=9 DURATION=5 \
#     scripts/bench-http.sh   # only nginx against the default model, 9 alternating rounds
#
# Needs: wrk, nginx (apt-get install wrk nginx), python3 (for a free port). Prints one
# Markdown table per workload: requests/s, p50/p99 latency, bytes/s, errors and peak RSS (the
# sum of VmHWM over the server's processes). Everything binds 127.0.0.1 on free ports and
# every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
BIG_CONNS=${BIG_CONNS:-4}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
MODELS=${MODELS-"iterative fork thread threadpool prefork select poll epoll uring async"}

bench_need bench-http wrk nginx python3

bench_bin

bench_workdir bingfa-bench

ROOT=$WORK/root
mkdir -p "$ROOT"
head -c 1024 /dev/urandom | base64 -w 76 | head -c 1024 >"$ROOT/small.html"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$ROOT/big.bin"
chmod -R a+rX "$ROOT"


# Sum of peak RSS (KiB) of a process and its children.
peak_rss() {
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    local hwm
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${hwm:-0}))
  done
  echo "$total"
}

# run_wrk URL CONNS → "req/s p50 p99 transfer/s errors"
run_wrk() {
  local out
  out=$(wrk -t"$THREADS" -c"$2" -d"${DURATION}s" --latency "$1" 2>&1)
  local rps p50 p99 tps errs
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  tps=$(awk '/^Transfer\/sec/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
  echo "$rps|$p50|$p99|$tps|${errs:-0}"
}

# start_nginx PORT [DIRECTIVES] — DIRECTIVES go in the http block (the compression rows).
start_nginx() {
  local port=$1 extra=${2:-}
  # NGINX_LOG: an access_log line instead of `access_log off` (the access-log row).
  local access_log=${NGINX_LOG:-"access_log off;"}
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  $access_log
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 60;
  types { text/html html; application/javascript js; application/octet-stream bin; }
  $extra
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$port; root $ROOT; }
}
EOF
  nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
  PIDS+=($!)
  wait_port "$port"
}

# start_bingfa MODEL PORT [FLAGS...]
start_bingfa() {
  local model=$1 port=$2
  shift 2
  "$BIN" http serve --bind "127.0.0.1:$port" --root "$ROOT" --model "$model" --workers "$WORKERS" \
    "$@" >"$WORK/bingfa-$model.out" 2>"$WORK/bingfa-$model.err" &
  PIDS+=($!)
  wait_port "$port"
}

stop_last() {
  local pid=${PIDS[-1]}
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'
}

echo "# bench-http: $(date -u +%FT%TZ), $(nproc) CPUs, wrk -t$THREADS -d${DURATION}s, workers=$WORKERS"
echo
echo "| server | small req/s | p50 | p99 | small errors | 64MiB transfer/s (c=$BIG_CONNS) | peak RSS KiB |"
echo "|---|---|---|---|---|---|---|"

bench_one() {
  local name=$1 port=$2 pid=$3
  IFS='|' read -r rps p50 p99 _ errs <<<"$(run_wrk "http://127.0.0.1:$port/small.html" "$CONNS")"
  IFS='|' read -r _ _ _ tps _ <<<"$(run_wrk "http://127.0.0.1:$port/big.bin" "$BIG_CONNS")"
  echo "| $name | $rps | $p50 | $p99 | $errs | $tps | $(peak_rss "$pid") |"
}

if [ -n "$MODELS" ]; then  # MODELS="": no one-round table (the other blocks still run)
  port=$(free_port); start_nginx "$port"
  bench_one "nginx (2 workers)" "$port" "${PIDS[-1]}"
  stop_last
fi

for m in $MODELS; do
  port=$(free_port); start_bingfa "$m" "$port"
  bench_one "bingfa $m" "$port" "${PIDS[-1]}"
  stop_last
done

# ---- nginx against the default model, rounds alternating which goes first (issue 23) ----
# Both servers run side by side for the whole block; each round measures the 1 KiB file
# (c=$CONNS, -t$THREADS) and the 64 MiB file with -t1 and -t2 over $BIG_CONNS connections, nginx
# first in odd rounds and bingfa first in even ones. Figures: the median of each side, the ratio
# of the medians, and the median and range of the per-round ratios.
RATIO_ROUNDS=${RATIO_ROUNDS-0}
RATIO_MODEL=${RATIO_MODEL:-epoll}
if [ "$RATIO_ROUNDS" -gt 0 ]; then
  rmedian() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
  # wrk_rate THREADS CONNS URL → requests/s and bytes/s (wrk's Transfer/sec in bytes)
  wrk_rate() {
    wrk -t"$1" -c"$2" -d"${DURATION}s" "$3" 2>&1 | awk '
      /^Requests\/sec/ {rps = $2}
      /^Transfer\/sec/ {v = $2; m = 1; if (v ~ /GB$/) m = 2^30; else if (v ~ /MB$/) m = 2^20; else if (v ~ /KB$/) m = 2^10
                         sub(/[A-Z]+$/, "", v); tps = v * m}
      /Non-2xx|Socket errors/ {bad = 1}
      END {printf "%.0f %.0f %s\n", rps, tps, (bad ? "errors" : "ok")}'
  }
  nport=$(free_port); start_nginx "$nport"
  bport=$(free_port); start_bingfa "$RATIO_MODEL" "$bport"
  : >"$WORK/ratio.txt"
  for r in $(seq "$RATIO_ROUNDS"); do
    if ((r % 2)); then order="nginx bingfa"; else order="bingfa nginx"; fi
    for who in $order; do
      port=$nport; [ "$who" = bingfa ] && port=$bport
      # wrk's errors (timeouts of a 64 MiB response on a loaded machine) are reported, not
      # dropped: the rates stand, and the log says which rounds had them.
      read -r small _ e0 <<<"$(wrk_rate "$THREADS" "$CONNS" "http://127.0.0.1:$port/small.html")"
      read -r _ big1 e1 <<<"$(wrk_rate 1 "$BIG_CONNS" "http://127.0.0.1:$port/big.bin")"
      read -r _ big2 e2 <<<"$(wrk_rate 2 "$BIG_CONNS" "http://127.0.0.1:$port/big.bin")"
      echo "$r $who $small $big1 $big2" >>"$WORK/ratio.txt"
      [ "$e0 $e1 $e2" = "ok ok ok" ] || echo "round $r $who: wrk errors (small $e0, big -t1 $e1, big -t2 $e2)" >&2
    done
  done
  stop_last
  stop_last
  echo
  echo "| $RATIO_ROUNDS alternating rounds, load $(cut -d' ' -f1-3 /proc/loadavg) at the end | nginx rounds | bingfa $RATIO_MODEL rounds | nginx median | bingfa median | ratio of medians | round ratios: median (range) |"
  echo "|---|---|---|---|---|---|---|"
  for col in 3 4 5; do
    case $col in
      3) what="1 KiB, c=$CONNS -t$THREADS, req/s"; scale=1 ;;
      4) what="64 MiB, c=$BIG_CONNS -t1, MB/s"; scale=1000000 ;;
      5) what="64 MiB, c=$BIG_CONNS -t2, MB/s"; scale=1000000 ;;
    esac
    ng=$(awk -v c=$col -v s=$scale '$2 == "nginx" {printf "%.0f\n", $c / s}' "$WORK/ratio.txt")
    bf=$(awk -v c=$col -v s=$scale '$2 == "bingfa" {printf "%.0f\n", $c / s}' "$WORK/ratio.txt")
    rr=$(awk -v c=$col '{v[$1 " " $2] = $c} END {for (k in v) {split(k, a, " "); if (a[2] == "nginx") printf "%.3f\n", v[a[1] " bingfa"] / v[k]}}' "$WORK/ratio.txt" | sort -g)
    ngm=$(rmedian <<<"$ng"); bfm=$(rmedian <<<"$bf")
    echo "| $what | $(tr '\n' ' ' <<<"$ng") | $(tr '\n' ' ' <<<"$bf") | $ngm | $bfm | $(awk -v a="$bfm" -v b="$ngm" 'BEGIN {printf "%.2f×", a / b}') | $(rmedian <<<"$rr" | xargs printf '%.2f×') ($(head -1 <<<"$rr" | xargs printf '%.2f')–$(tail -1 <<<"$rr" | xargs printf '%.2f')) |"
  done
fi

# ---- the access log on: nginx's combined format, buffered the same way, both servers ----
# The order of the servers rotates from round to round; figures are medians of the rounds.
# nginx writes with `buffer=64k flush=1s`, what bingfa's log does per process (64 KiB wakes
# its flusher, which writes at least every second).
ACCESS_ROUNDS=${ACCESS_ROUNDS-5}
ACCESS_MODEL=${ACCESS_MODEL:-epoll}
if [ -n "$ACCESS_ROUNDS" ] && [ "$ACCESS_ROUNDS" -gt 0 ]; then
  median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  access_nginx() {
    local port; port=$(free_port)
    NGINX_LOG="access_log $WORK/nginx-access.log combined buffer=64k flush=1s;" start_nginx "$port"
    IFS='|' read -r rps _ <<<"$(run_wrk "http://127.0.0.1:$port/small.html" "$CONNS")"
    stop_last
    echo "$rps"
  }
  access_bingfa() {
    local port; port=$(free_port)
    start_bingfa "$ACCESS_MODEL" "$port" "$@"
    IFS='|' read -r rps _ <<<"$(run_wrk "http://127.0.0.1:$port/small.html" "$CONNS")"
    stop_last
    echo "$rps"
  }
  # Three servers per round, the order rotating: nginx, bingfa with the log, bingfa without it
  # (so the log's own cost shows beside the ratio to nginx).
  ng=() bf=() off=()
  for r in $(seq "$ACCESS_ROUNDS"); do
    for step in 0 1 2; do
      case $(((r + step) % 3)) in
        0) ng+=("$(access_nginx)") ;;
        1) bf+=("$(access_bingfa --access-log "$WORK/bingfa-access.log")") ;;
        2) off+=("$(access_bingfa)") ;;
      esac
    done
    rm -f "$WORK/nginx-access.log" "$WORK/bingfa-access.log"
  done
  ngm=$(printf '%s\n' "${ng[@]}" | median)
  bfm=$(printf '%s\n' "${bf[@]}" | median)
  offm=$(printf '%s\n' "${off[@]}" | median)
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a/b}'; }
  echo
  echo "| 1 KiB file, access log on (combined), c=$CONNS, req/s | rounds | median | ratio to nginx |"
  echo "|---|---|---|---|"
  echo "| nginx, \`access_log ... combined buffer=64k flush=1s\` | ${ng[*]} | $ngm | 1.00× |"
  echo "| bingfa $ACCESS_MODEL, \`--access-log\` | ${bf[*]} | $bfm | $(ratio "$bfm" "$ngm") |"
  echo "| bingfa $ACCESS_MODEL, no log (the log's own cost) | ${off[*]} | $offm | $(ratio "$offm" "$ngm") |"
fi

# ---- compression: a precompressed file, and one compressed on the fly (second request) ----
# The same text (16 KiB of docs/ARCHITECTURE.md) as page.html with a page.html.gz sibling and
# as app.js without one; every request says `Accept-Encoding: gzip`. nginx: `gzip_static on`
# (the sibling) and `gzip on` (it compresses every response: it keeps no compressed bodies);
# bingfa: the sibling, and `--compress` (encoded once, then from its cache). gzip level 6 on
# both sides. Medians of COMPRESS_ROUNDS rounds, nginx and bingfa alternating which goes first.
COMPRESS_ROUNDS=${COMPRESS_ROUNDS-5}
COMPRESS_MODEL=${COMPRESS_MODEL:-epoll}
if [ "$COMPRESS_ROUNDS" -gt 0 ]; then
  head -c 16384 docs/ARCHITECTURE.md >"$ROOT/page.html"
  cp "$ROOT/page.html" "$ROOT/app.js"
  gzip -k -6 "$ROOT/page.html"
  chmod -R a+rX "$ROOT"
  nport=$(free_port)
  start_nginx "$nport" "gzip on; gzip_static on; gzip_comp_level 6; gzip_min_length 1024; gzip_vary on; gzip_types application/javascript;"
  bport=$(free_port)
  start_bingfa "$COMPRESS_MODEL" "$bport" --compress
  # wrk_gzip PORT PATH → "req/s p99_ms"
  wrk_gzip() {
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "Accept-Encoding: gzip" \
      "http://127.0.0.1:$1$2" 2>&1 | awk '
        /^Requests\/sec/ {rps = $2}
        $1 == "99%" {v = $2; m = 1; if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /s$/) m = 1000
                     sub(/[a-z]+$/, "", v); p99 = v * m}
        END {print rps, p99}'
  }
  median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
  echo
  echo "| gzip, c=$CONNS, $COMPRESS_ROUNDS alternating rounds (medians) | nginx req/s | bingfa $COMPRESS_MODEL req/s | bingfa/nginx | nginx p99 ms | bingfa p99 ms |"
  echo "|---|---|---|---|---|---|"
  for path in /page.html /app.js; do
    for port in "$nport" "$bport"; do
      enc=$(curl -s -o /dev/null -w '%header{content-encoding}' -H "Accept-Encoding: gzip" "http://127.0.0.1:$port$path")
      [ "$enc" = gzip ] || { echo "bench-http: $path on $port is not gzip ($enc)" >&2; exit 1; }
    done
    : >"$WORK/n.txt"; : >"$WORK/b.txt"
    for r in $(seq "$COMPRESS_ROUNDS"); do
      if ((r % 2)); then order="n b"; else order="b n"; fi
      for who in $order; do
        if [ "$who" = n ]; then wrk_gzip "$nport" "$path" >>"$WORK/n.txt"; else wrk_gzip "$bport" "$path" >>"$WORK/b.txt"; fi
      done
    done
    nr=$(cut -d' ' -f1 "$WORK/n.txt" | median); br=$(cut -d' ' -f1 "$WORK/b.txt" | median)
    np=$(cut -d' ' -f2 "$WORK/n.txt" | median); bp=$(cut -d' ' -f2 "$WORK/b.txt" | median)
    what=$([ "$path" = /page.html ] && echo "precompressed (.gz sibling), 16 KiB" || echo "on the fly (bingfa: cached), 16 KiB")
    echo "| $what | $nr | $br | $(awk -v a="$br" -v b="$nr" 'BEGIN {printf "%.2f×", a / b}') | $np | $bp |"
  done
  stop_last
  stop_last
fi

# ---- idle keep-alive connections held at once (the C10K shape) ----
IDLE=${IDLE:-10000}
IDLE_MODELS=${IDLE_MODELS-"epoll async"}
ulimit -n $((IDLE * 2 + 1024)) 2>/dev/null || true
cat >"$WORK/idle.py" <<'EOF_PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"GET /small.html HTTP/1.1\r\nHost: bench\r\n\r\n")
    socks.append(s)
ok = sum(1 for s in socks if s.recv(65536).startswith(b"HTTP/1.1 200"))
print(ok, flush=True)
sys.stdin.read()  # hold every connection open until told to stop
EOF_PY

echo
echo "| server | idle keep-alive connections answered and held | RSS before KiB | RSS holding them KiB |"
echo "|---|---|---|---|"
for m in $IDLE_MODELS; do
  port=$(free_port); start_bingfa "$m" "$port"
  pid=${PIDS[-1]}
  before=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  mkfifo "$WORK/hold"
  python3 "$WORK/idle.py" "127.0.0.1:$port" "$IDLE" <"$WORK/hold" >"$WORK/idle.out" &
  holder=$!
  exec 9>"$WORK/hold"
  for _ in $(seq 600); do [ -s "$WORK/idle.out" ] && break; sleep 0.1; done
  held=$(cat "$WORK/idle.out")
  during=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  exec 9>&-
  wait "$holder" 2>/dev/null || true
  rm -f "$WORK/hold" "$WORK/idle.out"
  echo "| bingfa $m | ${held:-0} / $IDLE | $before | $during |"
  stop_last
done
