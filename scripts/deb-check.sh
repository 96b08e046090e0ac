#!/usr/bin/env bash
# Check the Debian package as an operator gets it: its contents and conffiles, then install it
# on this machine (as root), run the binary from /usr/bin, verify the installed systemd unit
# with systemd-analyze (systemd need not be running: CI's PID 1 is not systemd), start
# `bingfa serve` from it on port 0 until every ready line, fetch the landing page, stop it with
# SIGTERM (exit 0), and purge the package again. .ci/run calls it after scripts/deb.sh.
#
#   scripts/deb-check.sh [PATH.deb]     (default: the newest target/debian/bingfa_*.deb)
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:-$(ls -t target/debian/bingfa_*.deb 2>/dev/null | head -n 1)}
[ -n "$deb" ] && [ -f "$deb" ] || { echo "deb-check.sh: no .deb (run scripts/deb.sh)" >&2; exit 1; }
deb=$(realpath "$deb")
[ "$(id -u)" = 0 ] || { echo "deb-check.sh: installs a package: run it as root" >&2; exit 1; }
fail() { echo "deb-check.sh: $*" >&2; exit 1; }
# Running, not a zombie waiting to be reaped (kill -0 succeeds on those).
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }

# What is in it. Man pages are gzipped by cargo-deb; one per command.
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#')
for f in /usr/bin/bingfa \
  /usr/share/man/man1/bingfa.1.gz /usr/share/man/man1/bingfa-serve.1.gz \
  /usr/share/man/man1/bingfa-http-serve.1.gz /usr/share/man/man1/bingfa-ftp-serve.1.gz \
  /usr/share/man/man1/bingfa-chat-serve.1.gz \
  /usr/share/bash-completion/completions/bingfa /usr/share/zsh/vendor-completions/_bingfa \
  /usr/share/fish/vendor_completions.d/bingfa.fish \
  /etc/bingfa/bingfa.toml /etc/logrotate.d/bingfa \
  /etc/fail2ban/filter.d/bingfa-ftp.conf /etc/fail2ban/jail.d/bingfa-ftp.conf \
  /usr/share/doc/bingfa/examples/low-ports.conf /usr/share/doc/bingfa/copyright; do
  grep -qx "$f" <<<"$contents" || fail "$f is not in $deb"
done
unit=$(grep -E '^/(usr/)?lib/systemd/system/bingfa\.service$' <<<"$contents") ||
  fail "no bingfa.service in $deb"
# Everything under /etc is a conffile: an upgrade keeps the operator's edits.
conffiles=$(dpkg-deb -I "$deb" conffiles)
for f in /etc/bingfa/bingfa.toml /etc/logrotate.d/bingfa \
  /etc/fail2ban/filter.d/bingfa-ftp.conf /etc/fail2ban/jail.d/bingfa-ftp.conf; do
  grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile"
done
echo "deb-check: contents and conffiles of $(basename "$deb") ok"

# Install it (apt-get resolves its Depends), and purge it whatever happens next.
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "$deb" >/dev/null
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  apt-get purge -y -qq bingfa >/dev/null || true
  rm -rf "$tmp"
}
tmp=$(mktemp -d)
trap cleanup EXIT
[ "$(dpkg-query -W -f='${Status}' bingfa)" = "install ok installed" ] || fail "bingfa is not installed"

# The binary from the package: its version, with the revision it was built from.
version=$(/usr/bin/bingfa --version)
want="bingfa $(dpkg-query -W -f='${Version}' bingfa | sed 's/-[^-]*$//') ("
[[ "$version" == "$want"* ]] || fail "/usr/bin/bingfa --version says '$version', expected '$want...'"
if head=$(git rev-parse HEAD 2>/dev/null); then
  rev=${version#"$want"}
  rev=${rev%)}
  rev=${rev%-dirty}
  [[ ${#rev} -ge 7 && "$head" == "$rev"* ]] || fail "'$version' does not name HEAD ($head)"
fi
echo "deb-check: $version"

# The installed unit. Its Documentation= names man pages, which systemd-analyze looks up with
# man(1): checked when this system installs man pages (some container images drop them).
man=no
man -w bingfa-serve >/dev/null 2>&1 && man=yes
systemd-analyze verify --man="$man" "$unit" || fail "systemd-analyze verify $unit"
echo "deb-check: systemd-analyze verify $unit ok (man pages checked: $man)"

# bingfa serve from /usr/bin, every listener on port 0 (with the shipped configuration when the
# binary takes one: the flags override its addresses).
args=(serve --http-bind 127.0.0.1:0 --chat-bind 127.0.0.1:0 --web-bind 127.0.0.1:0
  --ftp-bind 127.0.0.1:0)
if /usr/bin/bingfa serve --help | grep -q -- '--config'; then
  args+=(--config /etc/bingfa/bingfa.toml)
fi
/usr/bin/bingfa "${args[@]}" </dev/null >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 300); do
  [ "$(grep -cE '^(http|chat|web|ftp) listening on 127\.0\.0\.1:[0-9]+$' "$tmp/out")" -ge 4 ] && break
  alive "$pid" || { cat "$tmp/err" >&2; fail "bingfa serve exited before it was ready"; }
  sleep 0.1
done
[ "$(grep -cE '^(http|chat|web|ftp) listening on' "$tmp/out")" -ge 4 ] ||
  { cat "$tmp/out" "$tmp/err" >&2; fail "no four ready lines in 30 s"; }
http=$(sed -n 's/^http listening on //p' "$tmp/out")
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$http/")
[ "$code" = 200 ] || fail "GET http://$http/ answered $code"
kill -TERM "$pid"
# serve gives its services 15 s to stop, then kills them; past 40 s it is stuck.
for _ in $(seq 400); do alive "$pid" || break; sleep 0.1; done
alive "$pid" && fail "bingfa serve still running 40 s after SIGTERM"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || { cat "$tmp/err" >&2; fail "bingfa serve exited $status after SIGTERM"; }
echo "deb-check: /usr/bin/bingfa serve: ready, GET / 200, SIGTERM -> exit 0"

trap - EXIT
cleanup
[ ! -e /usr/bin/bingfa ] && [ ! -e /etc/bingfa/bingfa.toml ] || fail "purge left files behind"
echo "deb-check: purged"
