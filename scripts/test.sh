#!/usr/bin/env bash
# The project's one test command: every crate's tests (one process per test, so fork-based
# tests never share a multi-threaded harness), then the doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is missing; installing it" >&2
  cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc --quiet
