#!/usr/bin/env bash
# Runs REDbot (HTTP lint, https://redbot.org) against the static server and fails if any note
# is rated BAD. Usage: scripts/redbot.sh [--release]
#
# It installs REDbot with pip if it is missing, builds the `http_serve` example (debug, or
# release with --release), serves a small fixture site on 127.0.0.1:0 (a file, a page with a
# .gz sibling, a script compressed on the fly (`--compress`), a directory listing, an index, a redirect, a 404, a big file), runs REDbot on
# each URL with HAR output and prints every BAD and WARN note. The server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_flags=()
if [[ "${1:-}" == "--release" ]]; then
  profile=release
  cargo_flags=(--release)
fi

if ! command -v redbot >/dev/null 2>&1; then
  echo "redbot is missing; installing it with pip" >&2
  python3 -m pip install --quiet redbot
fi

cargo build --quiet -p bingfa-http --example http_serve "${cargo_flags[@]}"
bin="target/$profile/examples/http_serve"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

site="$work/site"
mkdir -p "$site/dir/nested" "$site/sub"
echo "hello world" >"$site/hello.txt"
for _ in $(seq 200); do echo "<p>compress me, compress me</p>"; done >"$site/page.html"
gzip -k -9 "$site/page.html"
for _ in $(seq 100); do echo "function f() { return 'compress me on the fly'; }"; done >"$site/app.js"
echo "sub index" >"$site/sub/index.html"
echo "a" >"$site/dir/a.txt"
echo "b" >"$site/dir/b <&> c.txt"
echo "secret" >"$site/.env"
head -c 3000000 /dev/urandom >"$site/big.bin"

"$bin" --bind 127.0.0.1:0 --root "$site" --model epoll --workers 2 \
  --cache-control "max-age=60" --compress >"$work/out" 2>"$work/err" &
server_pid=$!
addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/^http listening on //p' "$work/out")
  [[ -n "$addr" ]] && break
  sleep 0.1
done
if [[ -z "$addr" ]]; then
  echo "the server did not start:" >&2
  cat "$work/err" >&2
  exit 1
fi

paths=(/hello.txt /page.html /app.js /dir/ /sub/ /sub /missing /big.bin /.env)
bad=0
for path in "${paths[@]}"; do
  url="http://$addr$path"
  timeout 120 redbot -o har "$url" >"$work/har.json"
  if ! python3 - "$url" "$work/har.json" <<'EOF'; then
import json, sys
url, path = sys.argv[1], sys.argv[2]
har = json.load(open(path))
notes = [m for e in har["log"]["entries"] for m in e.get("_red_messages", [])]
status = har["log"]["entries"][0]["response"]["status"]
bad = [m for m in notes if m["level"] == "BAD"]
print(f"{url}: {status}, {len(notes)} notes, {len(bad)} bad")
for m in notes:
    if m["level"] in ("BAD", "WARN"):
        print(f"  {m['level']:4} {m['note_id']}: {m['summary']}")
sys.exit(1 if bad else 0)
EOF
    bad=$((bad + 1))
  fi
done

if ((bad > 0)); then
  echo "REDbot rated notes BAD on $bad URL(s)" >&2
  exit 1
fi
echo "REDbot: no note rated BAD on ${#paths[@]} URLs"
