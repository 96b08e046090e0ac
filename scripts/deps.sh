#!/usr/bin/env bash
# The outside tools the tests drive, in one list, and how to get them: used by scripts/test.sh
# (the README's test command) and .ci/run, so a missing tool stops the run up front instead of
# a test skipping part of itself.
#
#   scripts/deps.sh check     print what is missing, one per line; exit 1 if anything is
#   scripts/deps.sh install   install what is missing (apt-get, then pip; run it as root)
#   scripts/deps.sh list      print every command and module with its package
set -euo pipefail

# "command-or-path:Debian package", one per tool a test runs.
APT=(
  "curl:curl"                   # HTTP, FTP and TLS tests drive curl
  "openssl:openssl"             # TLS tests: s_client (resumption, OCSP), ocsp, pkey, x509
  "gzip:gzip"                   # the HTTP server's precompressed files
  "python3:python3"             # ftplib, ssl and pyftpdlib scripts
  "chromium:chromium"           # the chat page in a real browser
  "lftp:lftp"                   # FTP and FTPS against a real client
  "redis-server:redis-server"   # the chat backplane and lab chat's anchor
  "/usr/sbin/vsftpd:vsftpd"     # the FTP client against a real server
  "rclone:rclone"               # the FTP server against another real client
  "tnftp:tnftp"                 # the FTP server's wildcards (mget *.txt)
  "ncftpget:ncftp"              # ...and ncftpget '/*.txt'
  "setpriv:util-linux"          # the chat admin socket's credentials, tried as another user
  "timeout:coreutils"
  "mount:mount"                 # a full disk (a small tmpfs) for the FTP server
  "wrk:wrk"                     # scripts/soak.sh: HTTP bursts beside the checked clients
  "git:git"                     # bingfa --version names the revision (build.rs, its test)
  "groff:groff-base"            # the man pages render without a warning
  "zsh:zsh"                     # the zsh completions parse (zsh -n)
  "fish:fish"                   # the fish completions parse (fish --no-execute)
  "systemd-analyze:systemd"     # scripts/deb-check.sh: the unit passes systemd-analyze verify
  "dpkg-shlibdeps:dpkg-dev"     # scripts/deb.sh: cargo-deb computes the package's Depends with it
  "strip:binutils"              # scripts/deb.sh: the release binary, stripped for the package
  "fail2ban-regex:fail2ban"     # the shipped fail2ban filter, run over the FTP server's log
)
# "python module:pip package".
PIP=(
  "pyftpdlib:pyftpdlib"         # the FTP client against a real server
  "OpenSSL:pyopenssl"           # ...and over TLS (pyftpdlib's TLS handler needs it)
  "websockets:websockets"       # the chat page's WebSocket from another implementation
  "prometheus_client:prometheus-client" # scrapes --metrics with a real OpenMetrics parser
)

have_cmd() {
  case "$1" in
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

have_module() {
  command -v python3 >/dev/null 2>&1 && python3 -c "import $1" >/dev/null 2>&1
}

missing_apt() {
  for e in "${APT[@]}"; do
    have_cmd "${e%%:*}" || echo "${e#*:}"
  done
}

missing_pip() {
  for e in "${PIP[@]}"; do
    have_module "${e%%:*}" || echo "${e#*:}"
  done
}

case "${1:-check}" in
  list)
    for e in "${APT[@]}"; do echo "apt ${e#*:} (${e%%:*})"; done
    for e in "${PIP[@]}"; do echo "pip ${e#*:} (python3 -c 'import ${e%%:*}')"; done
    ;;
  check)
    apt=$(missing_apt)
    pip=$(missing_pip)
    [ -n "$apt" ] && echo "$apt" | sed 's/^/apt /'
    [ -n "$pip" ] && echo "$pip" | sed 's/^/pip /'
    [ -z "$apt$pip" ]
    ;;
  install)
    export DEBIAN_FRONTEND=noninteractive
    mapfile -t apt < <(missing_apt)
    if [ "${#apt[@]}" -gt 0 ]; then
      apt-get update -qq
      apt-get install -y -qq "${apt[@]}"
    fi
    mapfile -t pip < <(missing_pip)
    if [ "${#pip[@]}" -gt 0 ]; then
      # Debian's python3 is "externally managed" (PEP 668) and may lack pip altogether.
      if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq python3-pip
      fi
      python3 -m pip install --quiet "${pip[@]}" 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages "${pip[@]}"
    fi
    left=$("$0" check) || { echo "deps.sh: still missing after install:" >&2; echo "$left" >&2; exit 1; }
    ;;
  *)
    echo "usage: $0 check|install|list" >&2
    exit 2
    ;;
esac
