#!/usr/bin/env bash
# Soak: `bingfa serve` (HTTP, the chat room's line and web faces, FTP, all over TLS where they
# offer it) under one model, driven at once by real clients for DURATION, with bounded load,
# hostile clients and SIGHUP certificate reloads; every process sampled; fails on growth
# beyond the bounds, any lost/duplicated/corrupted message or file, any error a well-behaved
# client sees, or a non-zero exit of serve at SIGTERM. BENCHMARKS.md, "Soak", has the bounds
# and the results.
#
#   scripts/soak.sh DURATION [--model M] [--debug] [--out DIR] [driver options...]
#
# DURATION: seconds, or 90s / 20m / 1h. The binary is the release build (`cargo build -p
# bingfa --release`; --debug: the debug build; BINGFA_SOAK_BIN=PATH: that binary). Results
# (soak.log, samples.csv, soak.svg, summary.json, serve.stderr) go to --out (default
# target/soak/MODEL). Other options go to scripts/soak/main.py (`--help` there: members,
# message rate, HTTP rate, FTP workers...). Needs python3 with websockets, openssl, and wrk
# for the wrk bursts (scripts/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
duration=$1
shift
model=epoll
profile=release
out=
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --model=*) model=${1#--model=}; shift ;;
    --debug) profile=debug; shift ;;
    --out) out=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
out=${out:-target/soak/$model}

if [ -n "${BINGFA_SOAK_BIN:-}" ]; then
  bin=$BINGFA_SOAK_BIN
else
  if [ "$profile" = release ]; then
    cargo build -p bingfa --release --quiet
  else
    cargo build -p bingfa --quiet
  fi
  bin=target/$profile/bingfa
fi
# Relative to the repository when inside it, so the logs name no machine's paths.
bin=$(realpath --relative-to=. "$bin")
case "$bin" in */*) ;; *) bin=./$bin ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/bingfa-soak.XXXXXX")
driver=
# Whatever way this script ends, nothing it started is left: the driver (which stops serve
# itself), then serve's whole process group (the driver starts it as a group leader), then
# the scratch directory. serve's output is kept with the results.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$driver" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$driver" 2>/dev/null || true
  fi
  if [ -s "$work/serve.pgid" ]; then
    kill -KILL -- "-$(cat "$work/serve.pgid")" 2>/dev/null || true
  fi
  mkdir -p "$out"
  cp "$work"/serve.std* "$out"/ 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

mkdir -p "$out"
# A thousand members and their connections from one process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nice -n 5 python3 scripts/soak/main.py "$duration" --bin "$bin" --model "$model" \
  --out "$out" --work "$work" ${args[@]+"${args[@]}"} &
driver=$!
wait "$driver"
