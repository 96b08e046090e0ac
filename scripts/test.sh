#!/usr/bin/env bash
# The project's one test command: every crate's tests (one process per test, so fork-based
# tests never share a multi-threaded harness), then the doc tests.
#
# First it checks every outside tool the tests drive (scripts/deps.sh has the list): as root
# (or with password-less sudo) it installs what is missing, as .ci/run does; otherwise it stops
# with the list. The tests then run with BINGFA_REQUIRE_TOOLS=1, so a test that finds a tool
# missing fails instead of skipping part of itself. BINGFA_NO_INSTALL=1 never installs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! missing=$(scripts/deps.sh check); then
  if [ -z "${BINGFA_NO_INSTALL:-}" ] && command -v apt-get >/dev/null 2>&1 &&
    { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    echo "test.sh: installing what the tests need:" $missing >&2
    if [ "$(id -u)" = 0 ]; then scripts/deps.sh install; else sudo -n scripts/deps.sh install; fi
  else
    echo "test.sh: the tests need these, and they are missing:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    echo "install them with \`sudo scripts/deps.sh install\` (apt-get and pip), then run again" >&2
    exit 1
  fi
fi
export BINGFA_REQUIRE_TOOLS=1 BINGFA_REQUIRE_FTP_SERVERS=1
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is missing; installing it" >&2
  cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc --quiet
