#!/usr/bin/env bash
# The demo: a throwaway PKI, a local etcd behind etcdgate, and a few etcdctl calls
# showing who may do what, with the audit records they left. Ports: etcd 12379/12380,
# etcdgate 2379, admin 9091 (as in config/etcdgate.example.yaml).
#
#   npm run demo        (or: bash scripts/demo.sh)
#
# With a terminal it keeps running until Ctrl-C so you can try your own calls;
# without one (or with DEMO_KEEP_RUNNING=0) it stops after the walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/.tmp/demo
certs=$root/certs-dev/out

bash scripts/ensure-deps.sh demo
etcd_bin=${ETCD_BIN:-etcd}

for port in 2379 9091 12379 12380; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use; the demo needs 2379, 9091, 12379 and 12380 free" >&2
    exit 1
  fi
done

echo "== building etcdgate"
npm run --silent build
echo "== generating a throwaway PKI in certs-dev/out"
bash certs-dev/generate.sh "$certs"

rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting etcd on https://127.0.0.1:12379 (log: .tmp/demo/etcd.log)"
"$etcd_bin" --name demo --data-dir "$work/etcd-data" \
  --listen-client-urls https://127.0.0.1:12379 --advertise-client-urls https://127.0.0.1:12379 \
  --listen-peer-urls https://127.0.0.1:12380 --initial-advertise-peer-urls https://127.0.0.1:12380 \
  --initial-cluster demo=https://127.0.0.1:12380 \
  --client-cert-auth --trusted-ca-file "$certs/ca.crt" --cert-file "$certs/etcd-server.crt" --key-file "$certs/etcd-server.key" \
  --peer-client-cert-auth --peer-trusted-ca-file "$certs/ca.crt" --peer-cert-file "$certs/etcd-server.crt" --peer-key-file "$certs/etcd-server.key" \
  >"$work/etcd.log" 2>&1 &
pids+=($!)

echo "== starting etcdgate on https://127.0.0.1:2379 (audit: .tmp/demo/audit.jsonl, log: .tmp/demo/etcdgate.log)"
node dist/src/main.js --config config/etcdgate.example.yaml >"$work/audit.jsonl" 2>"$work/etcdgate.log" &
pids+=($!)

for _ in $(seq 1 100); do
  if node -e 'fetch("http://127.0.0.1:9091/readyz").then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))'; then break; fi
  sleep 0.2
done
node -e 'fetch("http://127.0.0.1:9091/readyz").then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' || {
  echo "etcdgate did not become ready; see .tmp/demo/etcdgate.log and .tmp/demo/etcd.log" >&2
  exit 1
}

as() {
  local who=$1; shift
  ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert="$certs/ca.crt" \
    --cert="$certs/client-$who.crt" --key="$certs/client-$who.key" "$@"
}
show() {
  local who=$1; shift
  printf '\n$ etcdctl --cert certs-dev/out/client-%s.crt ... %s\n' "$who" "$*"
  as "$who" "$@" 2>&1 || true
}

echo
echo "== etcdctl through etcdgate (policy: config/policy.dev.yaml)"
show kube-apiserver put /registry/configmaps/default/demo '{"data":{"hello":"world"}}'
show kube-apiserver get --prefix --keys-only /registry/
show tenant-a put /tenants/tenant-a/app/config 'replicas=3'
show tenant-a get --prefix /tenants/tenant-a/
show backup endpoint status -w table
show auditor get --prefix --keys-only /registry/configmaps/
show tenant-a member list -w table
echo
echo "-- and one that is denied: tenant-a reading tenant-b's keys"
show tenant-a get --prefix /tenants/tenant-b/

echo
echo "== the audit trail (.tmp/demo/audit.jsonl), one line per call:"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  for (const line of lines) {
    const r = JSON.parse(line);
    const key = r.etcd?.request?.key ?? r.etcd?.request?.key_base64 ?? "";
    console.log([r.event?.action, r.user?.name, key, r.event?.outcome, r.etcd?.decision?.reason].join("  "));
  }' "$work/audit.jsonl"

echo
echo "Metrics: curl http://127.0.0.1:9091/metrics    Readiness: curl http://127.0.0.1:9091/readyz"
if [ -t 0 ] && [ "${DEMO_KEEP_RUNNING:-1}" != 0 ]; then
  echo "etcdgate is running on https://127.0.0.1:2379. Try, for example:"
  echo "  ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=certs-dev/out/ca.crt \\"
  echo "    --cert=certs-dev/out/client-tenant-b.crt --key=certs-dev/out/client-tenant-b.key put /tenants/tenant-b/x 1"
  echo "Press Ctrl-C to stop."
  wait
fi
