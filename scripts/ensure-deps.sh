#!/usr/bin/env bash
# Makes sure what etcdgate's demo or tests need is on this machine, installing it when
# it can (root with apt-get, Debian packages; npm packages from package-lock.json) and
# otherwise saying exactly what to install.
#
#   scripts/ensure-deps.sh demo   etcd, etcdctl, openssl, node_modules
#   scripts/ensure-deps.sh test   the same, plus promtool (prometheus), rsyslog and haproxy (PROXY protocol) for the tests
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-demo}

# command -> Debian package providing it
declare -A wanted=([etcd]=etcd-server [etcdctl]=etcd-client [openssl]=openssl)
if [ "$purpose" = test ]; then
  wanted[prometheus]=prometheus
  wanted[promtool]=prometheus
  wanted[rsyslogd]=rsyslog
  wanted[haproxy]=haproxy
fi

missing=()
for cmd in "${!wanted[@]}"; do
  if [ -n "${ETCD_BIN:-}" ] && [ "$cmd" = etcd ]; then continue; fi
  command -v "$cmd" >/dev/null 2>&1 || command -v "/usr/sbin/$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
# rsyslog's TLS input needs its GnuTLS driver, a separate package.
if [ "$purpose" = test ] && ! ls /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1; then
  missing+=(rsyslog-gnutls)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "etcdgate needs these Debian packages: ${packages[*]}" >&2
    echo "install them (sudo apt-get install ${packages[*]}) or set ETCD_BIN to an etcd binary" >&2
    exit 1
  fi
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
