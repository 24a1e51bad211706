#!/usr/bin/env bash
# Generates a throwaway development PKI for etcdgate and its tests into OUTDIR.
#
#   certs-dev/generate.sh OUTDIR
#
# Every run regenerates every file (EC P-256 keys, PEM). Nothing is shared between runs:
# temporary files live in a private folder inside OUTDIR, so concurrent runs for
# different OUTDIRs never collide. See certs-dev/README.md for what each file is for.
# These keys are for local development and tests only; never deploy them.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

out="$1"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "$out/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# OpenSSL reads no system config here, so nothing on the host changes the result.
export OPENSSL_CONF=/dev/null

readonly CA_DAYS=365
readonly LEAF_DAYS=30

# new_key NAME: writes NAME.key (EC P-256, PKCS#8), readable by the owner only.
new_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/$1.key" 2>/dev/null)
  chmod 600 "$out/$1.key"
}

# random_serial: a positive 128-bit serial, so no serial file is needed.
random_serial() {
  printf '0x%s' "$(openssl rand -hex 16 | sed 's/^./1/')"
}

# new_ca NAME SUBJECT: self-signed CA certificate NAME.crt with key NAME.key.
new_ca() {
  local name="$1" subject="$2"
  new_key "$name"
  cat >"$work/$name.ext" <<EOF
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -new -key "$out/$name.key" -subj "$subject" -out "$work/$name.csr" 2>/dev/null
  openssl x509 -req -in "$work/$name.csr" -signkey "$out/$name.key" -days "$CA_DAYS" \
    -set_serial "$(random_serial)" -extfile "$work/$name.ext" -out "$out/$name.crt" 2>/dev/null
}

# new_leaf NAME ISSUER SUBJECT EKU [SAN]: leaf NAME.crt/.key signed by ISSUER.crt/.key.
# SUBJECT may lack a CN (e.g. "/O=x"): the upstream client certificate relies on that.
new_leaf() {
  local name="$1" issuer="$2" subject="$3" eku="$4" san="${5:-}"
  new_key "$name"
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    if [[ -n "$san" ]]; then echo "subjectAltName = $san"; fi
  } >"$work/$name.ext"
  openssl req -new -key "$out/$name.key" -subj "$subject" -out "$work/$name.csr" 2>/dev/null
  openssl x509 -req -in "$work/$name.csr" -CA "$out/$issuer.crt" -CAkey "$out/$issuer.key" \
    -days "$LEAF_DAYS" -set_serial "$(random_serial)" -extfile "$work/$name.ext" \
    -out "$out/$name.crt" 2>/dev/null
}

loopback_san="DNS:localhost, IP:127.0.0.1"

new_ca ca "/CN=etcdgate dev CA"
new_ca other-ca "/CN=unrelated dev CA"

# Servers: the test etcd (also used for its peer links, hence clientAuth) and etcdgate.
new_leaf etcd-server ca "/CN=etcd-server" "serverAuth, clientAuth" "$loopback_san"
new_leaf etcdgate-server ca "/CN=etcdgate-server" "serverAuth" "$loopback_san"

# etcdgate's own identity towards etcd: no CN, so etcd's CN-based auth cannot map it to a user.
new_leaf upstream-client ca "/O=etcdgate-upstream" "clientAuth"

# Callers of etcdgate.
new_leaf client-kube-apiserver ca "/CN=kube-apiserver-etcd-client" "clientAuth"
new_leaf client-tenant-a ca "/CN=tenant-a" "clientAuth" "URI:spiffe://example.org/tenant/a"
new_leaf client-tenant-b ca "/CN=tenant-b" "clientAuth" "URI:spiffe://example.org/tenant/b"
new_leaf client-backup ca "/O=backup-operators/CN=backup-agent" "clientAuth"
new_leaf client-auditor ca "/OU=security/CN=auditor" "clientAuth"
new_leaf client-admin ca "/O=platform-admins/CN=etcdgate-admin" "clientAuth"
new_leaf client-nobody ca "/CN=nobody" "clientAuth"
new_leaf client-root ca "/CN=root" "clientAuth"
# Same name as tenant-a, wrong issuer: must be refused by anything trusting only ca.crt.
new_leaf client-rogue other-ca "/CN=tenant-a" "clientAuth" "URI:spiffe://example.org/tenant/a"

echo "etcdgate dev PKI written to $out (2 CAs, 3 servers/upstream, 9 clients)"
