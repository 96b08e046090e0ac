#!/usr/bin/env bash
# Benchmarks FTP over TLS: `bingfa ftp serve` (default model, explicit AUTH TLS + PROT P)
# against vsftpd (ssl_enable, the same certificate) and pyftpdlib's TLS_FTPHandler, in the same
# run, rounds alternating which server goes first. One client for all: curl --ssl-reqd,
# passive, a 256 MiB RETR to /dev/null and a 256 MiB STOR from a file in the page cache,
# each timed from the transfer command to its end. Prints each round and the medians (MB/s,
# 1 MB = 10^6 bytes) with bingfa's ratio to each.
#
#   ROUNDS=5 SIZE_MIB=256 scripts/bench-ftps.sh
#
# Needs: curl, openssl, python3 with pyftpdlib and pyopenssl, /usr/sbin/vsftpd. Binds
# 127.0.0.1 on free ports; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh

ROUNDS=${ROUNDS:-5}
SIZE_MIB=${SIZE_MIB:-256}
bench_need bench-ftps curl openssl python3
[ -x /usr/sbin/vsftpd ] || { echo "bench-ftps: vsftpd is missing (apt-get install vsftpd)" >&2; exit 1; }
python3 -c 'import pyftpdlib, OpenSSL' 2>/dev/null ||
  { echo "bench-ftps: pip install pyftpdlib pyopenssl" >&2; exit 1; }
bench_bin
bench_workdir bingfa-ftpsbench

ROOT=$WORK/root
mkdir -p "$ROOT"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$ROOT/big.bin"
cp "$ROOT/big.bin" "$WORK/up.bin"
chmod -R a+rwX "$ROOT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

declare -A PORT
PORT[bingfa]=$(free_port)
"$BIN" ftp serve --bind "127.0.0.1:${PORT[bingfa]}" --root "$ROOT" --anonymous write \
  --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" >"$WORK/bingfa.out" 2>"$WORK/bingfa.err" &
PIDS+=($!)

PORT[vsftpd]=$(free_port)
cat >"$WORK/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=${PORT[vsftpd]}
background=NO
run_as_launching_user=YES
anonymous_enable=YES
no_anon_password=YES
anon_root=$ROOT
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
vsftpd_log_file=/dev/null
pasv_enable=YES
use_sendfile=YES
ssl_enable=YES
rsa_cert_file=$WORK/cert.pem
rsa_private_key_file=$WORK/key.pem
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
EOF
/usr/sbin/vsftpd "$WORK/vsftpd.conf" &
PIDS+=($!)

PORT[pyftpdlib]=$(free_port)
cat >"$WORK/pyftpd.py" <<EOF
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
import logging
logging.disable(logging.CRITICAL)
a = DummyAuthorizer()
a.add_anonymous("$ROOT", perm="elradfmw")
h = TLS_FTPHandler
h.certfile = "$WORK/cert.pem"
h.keyfile = "$WORK/key.pem"
h.authorizer = a
FTPServer(("127.0.0.1", ${PORT[pyftpdlib]}), h).serve_forever()
EOF
python3 "$WORK/pyftpd.py" &
PIDS+=($!)

for s in bingfa vsftpd pyftpdlib; do wait_port "${PORT[$s]}"; done

# speed SERVER retr|stor → bytes/s of the transfer itself: the size over curl's time from
# `pretransfer` (the data connection set up, the command sent) to the end. The login and
# setup before it are left out on purpose: curl 7.88 sometimes stalls ~200 ms before its data
# connect when the server's EPSV reply arrives quickly (bingfa, vsftpd; see BENCHMARKS.md),
# which would measure curl, not the server.
speed() {
  local url="ftp://anonymous:a@127.0.0.1:${PORT[$1]}" out
  if [ "$2" = retr ]; then
    out=$(curl -sS --ssl-reqd --cacert "$WORK/cert.pem" -o /dev/null \
      -w '%{size_download} %{time_pretransfer} %{time_total}' "$url/big.bin")
  else
    out=$(curl -sS --ssl-reqd --cacert "$WORK/cert.pem" -T "$WORK/up.bin" \
      -w '%{size_upload} %{time_pretransfer} %{time_total}' "$url/up-$1.bin")
  fi
  awk '{printf "%.0f\n", $1 / ($3 - $2)}' <<<"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A R
servers=(bingfa vsftpd pyftpdlib)
for round in $(seq "$ROUNDS"); do
  # Rotate who goes first, so a neighbour's burst hurts each alike.
  k=$(( (round - 1) % 3 ))
  order=("${servers[@]:$k}" "${servers[@]:0:$k}")
  for s in "${order[@]}"; do
    r=$(speed "$s" retr)
    w=$(speed "$s" stor)
    cmp -s "$WORK/up.bin" "$ROOT/up-$s.bin" || { echo "bench-ftps: $s stored other bytes" >&2; exit 1; }
    printf 'round %d %-9s RETR %7.0f MB/s  STOR %7.0f MB/s\n' "$round" "$s" \
      "$(python3 -c "print($r/1e6)")" "$(python3 -c "print($w/1e6)")"
    R[$s.retr]+="$r "; R[$s.stor]+="$w "
  done
done
echo
echo "| ${SIZE_MIB} MiB over TLS | bingfa | vsftpd | pyftpdlib | bingfa/vsftpd | bingfa/pyftpdlib |"
echo "|---|---|---|---|---|---|"
for w in retr stor; do
  b=$(tr ' ' '\n' <<<"${R[bingfa.$w]}" | grep . | median)
  v=$(tr ' ' '\n' <<<"${R[vsftpd.$w]}" | grep . | median)
  p=$(tr ' ' '\n' <<<"${R[pyftpdlib.$w]}" | grep . | median)
  python3 -c "print(f'| ${w^^} | {$b/1e6:.0f} MB/s | {$v/1e6:.0f} MB/s | {$p/1e6:.0f} MB/s | {$b/$v:.2f}x | {$b/$p:.2f}x |')"
done
