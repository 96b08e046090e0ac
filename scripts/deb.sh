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

cargo build --locked --profile dist -p bingfa
bin=target/dist/bingfa
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
