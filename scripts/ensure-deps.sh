#!/usr/bin/env bash
# Makes sure what etcdgate's demo or tests need is on this machine, installing it when
# it can (root with apt-get, Debian packages; npm packages from package-lock.json) and
# otherwise saying exactly what to install.
#
#   scripts/ensure-deps.sh demo   etcd, etcdctl, openssl, node_modules
#   scripts/ensure-deps.sh test   the same, plus promtool (prometheus), rsyslog, python3-hpack, haproxy (PROXY
#                                 protocol), systemd-analyze (the systemd unit), patroni and postgresql for the tests
#   scripts/ensure-deps.sh test   the same, plus promtool (prometheus) and rsyslog for the tests,
#                                 age for the encrypted-backup tests, and OpenStack Swift (with
#                                 its s3api middleware) and memcached for the S3 backup tests,
#                                 script (a pseudo-terminal for the backup progress test)
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
  wanted[systemd-analyze]=systemd   # verifies deploy/systemd/etcdgate.service
  wanted[age]=age
  wanted[age-keygen]=age
  wanted[swift-proxy-server]=swift-proxy
  wanted[swift-account-server]=swift-account
  wanted[swift-container-server]=swift-container
  wanted[swift-object-server]=swift-object
  wanted[memcached]=memcached
  wanted[script]=bsdutils
fi

missing=()
for cmd in "${!wanted[@]}"; do
  if [ -n "${ETCD_BIN:-}" ] && [ "$cmd" = etcd ]; then continue; fi
  command -v "$cmd" >/dev/null 2>&1 || command -v "/usr/sbin/$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
# The JSON gateway's Patroni test: Debian's patroni, and PostgreSQL for it to run.
if [ "$purpose" = test ]; then
  command -v patroni >/dev/null 2>&1 || missing+=(patroni)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
fi
# rsyslog's TLS input needs its GnuTLS driver, a separate package.
if [ "$purpose" = test ] && ! ls /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1; then
  missing+=(rsyslog-gnutls)
fi

# The HPACK differential tests drive Debian's python3-hpack through /usr/bin/python3.
if [ "$purpose" = test ] && ! /usr/bin/python3 -c 'import hpack' >/dev/null 2>&1; then
  missing+=(python3-hpack)
fi
# Debian's python3-etcd3 (on grpcio) drives etcdgate as an independent etcd client.
if [ "$purpose" = test ] && ! /usr/bin/python3 -c 'import etcd3' >/dev/null 2>&1; then
  missing+=(python3-etcd3)
fi
# The attack tests' hostile HTTP/2 client (test/support/h2-attack.py) writes frames with python3-hyperframe.
if [ "$purpose" = test ] && ! /usr/bin/python3 -c 'import hyperframe' >/dev/null 2>&1; then
  missing+=(python3-hyperframe)
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
