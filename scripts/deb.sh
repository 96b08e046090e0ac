#!/usr/bin/env bash
# Build the Debian package: target/debian/bingfa_VERSION-1_ARCH.deb (its path is the last line
# printed). The binary is built with the `dist` profile (release code, stripped); its man pages
# and shell completions are written by that binary into target/dist/assets/, where the asset
# list in crates/cli/Cargo.toml ([package.metadata.deb]) takes them. Needs cargo-deb
# (`cargo install cargo-deb --locked`); scripts/deb-check.sh installs and checks the result.
#
#   scripts/deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "deb.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 1
fi

# The `dist` profile is release without debug info or symbols: the same code. Rather than a
# second optimised build of every crate (minutes on a 2-core runner, and CI has just made the
# release build for the soak), take the release binary and strip it into target/dist/, where
# `cargo deb --profile dist` looks for it. BINGFA_DEB_FRESH=1 builds the dist profile instead.
bin=target/dist/bingfa
if [[ "${BINGFA_DEB_FRESH:-0}" == 1 ]]; then
  cargo build --locked --profile dist -p bingfa
else
  cargo build --locked --release -p bingfa
  mkdir -p target/dist
  strip --strip-all -o "$bin" target/release/bingfa
fi
assets=target/dist/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --out "$assets/man" >/dev/null
# Debian policy: man pages gzipped (cargo-deb only compresses files that are not build output);
# -n leaves out the name and time, so the same pages give the same bytes.
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/bingfa.bash"
"$bin" completions zsh >"$assets/completions/_bingfa"
"$bin" completions fish >"$assets/completions/bingfa.fish"

# --no-build: package exactly the binary the pages were made from.
cargo deb --locked --no-build --profile dist -p bingfa --output target/debian/ | tail -n 1
