#!/usr/bin/env bash
# RFC 6455 conformance: Autobahn|Testsuite's fuzzingclient against the WebSocket echo example
# (crates/chat/examples/ws_echo.rs, the room's own sans-IO core) under several models.
#
#   scripts/autobahn.sh                 # models: epoll thread async prefork
#   scripts/autobahn.sh poll fork       # other models
#   AUTOBAHN_CASES='1.*,2.*' scripts/autobahn.sh epoll   # a subset of cases
#
# Every case must end OK, NON-STRICT or INFORMATIONAL; sections 12 and 13 (permessage-deflate,
# which the room does not offer) are excluded. The summary table is printed; the full HTML
# reports stay in target/autobahn/<model>/. Exit 1 on any other outcome.
#
# Autobahn|Testsuite runs on Python 2.7: the script makes a virtualenv for it under
# target/autobahn/venv from pyenv's 2.7.18 (or $PYTHON2) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

models=("$@")
[ "${#models[@]}" -gt 0 ] || models=(epoll thread async prefork)
cases="${AUTOBAHN_CASES:-*}"
out=target/autobahn
venv="$out/venv"
mkdir -p "$out"

if [ ! -x "$venv/bin/wstest" ]; then
  py2="${PYTHON2:-}"
  for c in "$py2" "${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python" python2.7 python2; do
    if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then py2="$c"; break; fi
  done
  if [ -z "$py2" ] || ! command -v "$py2" >/dev/null 2>&1; then
    echo "autobahn: no Python 2.7 found (set PYTHON2, or install 2.7.18 with pyenv)" >&2
    exit 1
  fi
  echo "autobahn: making $venv with $py2" >&2
  "$py2" -m pip install --quiet --disable-pip-version-check 'virtualenv<20.22' 2>/dev/null
  "$py2" -m virtualenv --quiet "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check autobahntestsuite 2>/dev/null
fi

# The debug build is the one the test suite already made; AUTOBAHN_PROFILE=release for speed.
profile="${AUTOBAHN_PROFILE:-dev}"
cargo build --quiet --profile "$profile" -p bingfa-chat --example ws_echo
bin=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/examples/ws_echo

server=""
stop() { [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }; server=""; }
trap stop EXIT

failed=0
printf '%-10s %6s %6s %11s %14s %7s %s\n' model cases OK NON-STRICT INFORMATIONAL other seconds
for model in "${models[@]}"; do
  dir="$out/$model"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$bin" --model "$model" --workers 2 --bind 127.0.0.1:0 >"$dir/server.out" 2>"$dir/server.err" &
  server=$!
  addr=""
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/^ws listening on //p' "$dir/server.out" | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "autobahn: ws_echo --model $model did not start" >&2
    cat "$dir/server.err" >&2
    exit 1
  fi
  cat >"$dir/spec.json" <<EOF
{
  "outdir": "$PWD/$dir/report",
  "servers": [{"agent": "bingfa-$model", "url": "ws://$addr"}],
  "cases": [$(echo "$cases" | sed 's/[^,][^,]*/"&"/g')],
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
EOF
  start=$(date +%s)
  (cd "$dir" && timeout 600 "$OLDPWD/$venv/bin/wstest" -m fuzzingclient -s spec.json) \
    >"$dir/wstest.log" 2>&1 || { echo "autobahn: wstest failed, see $dir/wstest.log" >&2; exit 1; }
  secs=$(($(date +%s) - start))
  stop
  # index.json: {agent: {case: {"behavior": ..., "behaviorClose": ...}}}
  "$venv/bin/python" - "$dir/report/index.json" "$model" "$secs" <<'EOF' || failed=1
import json, sys
index = json.load(open(sys.argv[1]))
counts = {"OK": 0, "NON-STRICT": 0, "INFORMATIONAL": 0}
bad = []
for agent, cases in index.items():
    for case, r in sorted(cases.items()):
        for b in (r["behavior"], r["behaviorClose"]):
            if b not in counts and b != "UNIMPLEMENTED":
                bad.append("%s %s/%s" % (case, r["behavior"], r["behaviorClose"]))
                break
        if r["behavior"] in counts:
            counts[r["behavior"]] += 1
total = sum(len(c) for c in index.values())
print("%-10s %6d %6d %11d %14d %7d %s" % (sys.argv[2], total, counts["OK"], counts["NON-STRICT"],
      counts["INFORMATIONAL"], len(bad), sys.argv[3]))
for b in bad:
    print("  not conformant: " + b)
sys.exit(1 if bad else 0)
EOF
done
exit "$failed"
