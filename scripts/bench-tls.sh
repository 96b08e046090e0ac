#!/usr/bin/env bash
# Benchmarks `bingfa http serve --tls-*` (default model) against nginx with
# `ssl_protocols TLSv1.3` and the same certificate, in the same run, rounds alternating:
# small-file requests/s on keep-alive connections, handshakes/s (new connection per request,
# `Connection: close`) and 64 MiB transfer/s. Prints each round and the medians.
#
#   ROUNDS=3 DURATION=10 scripts/bench-tls.sh
#
# Needs: wrk, nginx, openssl, python3. Binds 127.0.0.1 on free ports; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-2}
bench_need bench-tls wrk nginx openssl python3
bench_bin

bench_workdir bingfa-tlsbench

ROOT=$WORK/root
mkdir -p "$ROOT"
head -c 1024 /dev/urandom | base64 -w 76 | head -c 1024 >"$ROOT/small.html"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$ROOT/big.bin"
chmod -R a+rX "$ROOT"
# One ECDSA P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod a+r "$WORK"/*.pem

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 10000000;
  keepalive_timeout 60;
  types { text/html html; application/octet-stream bin; }
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.3;
    root $ROOT;
  }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
PIDS+=($!)
wait_port "$NGINX_PORT"

BINGFA_PORT=$(free_port)
"$BIN" http serve --bind "127.0.0.1:$BINGFA_PORT" --root "$ROOT" --workers "$WORKERS" \
  --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" >"$WORK/bingfa.out" 2>"$WORK/bingfa.err" &
PIDS+=($!)
wait_port "$BINGFA_PORT"

# wrk_metric PORT PATH CONNS FIELD [extra wrk args] → requests/s or transfer/s (bytes)
wrk_metric() {
  local port=$1 path=$2 conns=$3 field=$4; shift 4
  local out
  out=$(wrk -t2 -c"$conns" -d"${DURATION}s" "$@" "https://127.0.0.1:$port$path" 2>&1)
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "bench-tls: errors on $port$path: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2
  fi
  if [ "$field" = rps ]; then
    awk '/^Requests\/sec/ {print $2}' <<<"$out"
  else
    awk '/^Transfer\/sec/ {v=$2; u=substr(v,length(v)-1); n=substr(v,1,length(v)-2);
      m=(u=="GB"?1e9:(u=="MB"?1e6:(u=="KB"?1e3:1))); printf "%.0f\n", n*m}' <<<"$out"
  fi
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A R
for round in $(seq "$ROUNDS"); do
  # Alternate which server goes first, so a neighbour's burst hurts both alike.
  order="nginx bingfa"; [ $((round % 2)) -eq 0 ] && order="bingfa nginx"
  for server in $order; do
    port=$NGINX_PORT; [ "$server" = bingfa ] && port=$BINGFA_PORT
    small=$(wrk_metric "$port" /small.html 50 rps)
    hs=$(wrk_metric "$port" /small.html 50 rps -H 'Connection: close')
    big=$(wrk_metric "$port" /big.bin 4 bytes)
    echo "round $round $server: small ${small} req/s, handshakes ${hs}/s, 64MiB ${big} B/s"
    R[$server.small]+="$small "; R[$server.hs]+="$hs "; R[$server.big]+="$big "
  done
done
echo
echo "| workload | nginx (median) | bingfa (median) | ratio |"
echo "|---|---|---|---|"
for w in small hs big; do
  n=$(tr ' ' '\n' <<<"${R[nginx.$w]}" | grep . | median)
  b=$(tr ' ' '\n' <<<"${R[bingfa.$w]}" | grep . | median)
  echo "| $w | $n | $b | $(python3 -c "print(f'{$b/$n:.2f}x')") |"
done
