#!/usr/bin/env bash
# Check that every crate of the workspace that is meant for crates.io (all but bingfa-testkit,
# `publish = false`) would publish: its manifest has what crates.io asks for (description,
# license, repository, readme, keywords, categories), every path dependency carries a version,
# and its packaged files are complete.
#
#   scripts/publish-check.sh           the full check: `cargo publish --dry-run --workspace`.
#                                      Packs each crate, then builds each packed crate on its
#                                      own against the others as packed (cargo's local
#                                      registry overlay), as crates.io would see them: a file
#                                      left out of a package (an include_str! outside the
#                                      crate) fails here. Builds every crate again: minutes.
#   scripts/publish-check.sh --quick   packs each crate without building it (`cargo package
#                                      --no-verify`): the manifest and the file list, in
#                                      seconds. .ci/run runs this one.
#
# Any warning cargo gives (a missing description, license...) is a failure. Extra arguments
# go to cargo (e.g. --allow-dirty on a tree with uncommitted changes).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
if [ "${1:-}" = --quick ]; then
  mode=quick
  shift
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "$mode" = quick ]; then
  cmd=(cargo package --workspace --exclude bingfa-testkit --locked --no-verify "$@")
else
  cmd=(cargo publish --dry-run --workspace --exclude bingfa-testkit --locked "$@")
fi
echo "publish-check: ${cmd[*]}"
if ! "${cmd[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "publish-check: FAILED" >&2
  exit 1
fi
# (A dry run ends each crate with "warning: aborting upload due to dry run": that one is news.)
if grep '^warning' "$log" | grep -vq 'aborting upload due to dry run'; then
  grep -A3 '^warning' "$log" | grep -v 'aborting upload due to dry run' >&2
  echo "publish-check: FAILED (cargo warned)" >&2
  exit 1
fi
grep -E '^\s+(Packaging|Verifying|Uploading)' "$log" || true
echo "publish-check: every crate packs$([ "$mode" = full ] && echo ' and builds from its package')"
