# Shared by the benchmark scripts (source it after `cd` to the repo root): tools check, the
# release binary, a private work directory whose processes are stopped on exit, a free port.

# bench_need NAME TOOL... — exit with a clear message if a tool is missing.
bench_need() {
  local name=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: $tool is missing (apt-get install $tool)" >&2; exit 1; }
  done
}

# Sets BIN: $BIN if given (another build), else the release build, built now.
bench_bin() {
  if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p bingfa
    BIN=$PWD/target/release/bingfa
  fi
}

# bench_workdir PREFIX — sets WORK (readable by nginx's workers) and PIDS; on exit every pid in
# PIDS is stopped and WORK removed.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$WORK"
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT — wait (10 s at most) until something listens on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$(basename "$0" .sh): nothing listening on $1" >&2; return 1
}
