/**
 * The audit policy an operator of a Kubernetes control plane writes (issue 17.14): drop
 * kube-apiserver's lease renewals (node heartbeats on /registry/leases/ and etcd lease
 * keepalives) and its health reads, keep every access to /registry/secrets/ and every
 * denial. Run against a real etcd through etcdgate with the dev policy, each rule is
 * checked with the caller it drops and the ones it must keep: another certificate's
 * health read, a list reaching into Secrets, a denied renewal.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { b, expectDenied } from './support/enforcement.js';
import { encode } from './support/etcd-messages.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const KUBE_CN = 'kube-apiserver-etcd-client';

const RULES = [
  { level: 'metadata', description: 'every access to Secrets, whoever makes it', keys: [{ prefix: '/registry/secrets/' }] },
  { level: 'none', description: "kube-apiserver's etcd health probe", match: { cn: KUBE_CN }, methods: ['Range'], keys: [{ key: '/registry/health' }] },
  { level: 'none', description: 'node heartbeats (Lease objects)', match: { cn: KUBE_CN }, methods: ['Txn', 'Range'], keys: [{ prefix: '/registry/leases/' }], outcomes: ['success'] },
  { level: 'none', description: 'etcd lease renewals', match: { cn: KUBE_CN }, methods: ['LeaseKeepAlive'] },
];

const stack = useGatewayStack({ policy: DEV_POLICY_FILE, overrides: { audit: { rules: RULES } } });
let kube: grpc.Client;
let auditor: grpc.Client;
let tenant: grpc.Client;

beforeAll(() => {
  kube = rawClient(stack.gate.endpoint, stack.pki, 'kube-apiserver');
  auditor = rawClient(stack.gate.endpoint, stack.pki, 'auditor');
  tenant = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
});

afterAll(() => {
  for (const client of [kube, auditor, tenant]) client?.close();
});

type Message = Record<string, unknown>;
const range = (client: grpc.Client, request: Message): Promise<Message> => callEtcd(client, 'KV', 'Range', ['RangeRequest', request], 'RangeResponse');
const txn = (client: grpc.Client, request: Message): Promise<Message> => callEtcd(client, 'KV', 'Txn', ['TxnRequest', request], 'TxnResponse');
const passThrough = (buffer: Buffer): Buffer => buffer;

/** kube-apiserver's create-or-update of `key` (a Txn on mod_revision). */
async function upsert(client: grpc.Client, key: string, mod: string): Promise<Message> {
  return txn(client, {
    compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: mod }],
    success: [{ request_put: { key: b(key), value: b('object bytes') } }],
    failure: [{ request_range: { key: b(key) } }],
  });
}

/** Renews `lease` `times` times on one LeaseKeepAlive stream; resolves with the stream's final status. */
function renew(client: grpc.Client, lease: string, times: number): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    const stream = client.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, new grpc.Metadata());
    let answers = 0;
    stream.on('error', () => undefined);
    stream.on('status', resolve);
    stream.on('data', () => {
      answers += 1;
      if (answers === times) stream.end();
    });
    for (let i = 0; i < times; i += 1) stream.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: lease }));
  });
}

interface AuditRecord {
  event: { action: string; outcome: string; type: string[] };
  user?: { name: string };
  etcd?: { request: Record<string, unknown>; decision: { allowed: boolean } };
  etcdgate: { event_kind: string };
}

/** Every record that names `key` anywhere in its request. */
async function recordsFor(key: string): Promise<AuditRecord[]> {
  const records = (await stack.gate.auditRecords()) as unknown as AuditRecord[];
  return records.filter((r) => JSON.stringify(r.etcd?.request ?? {}).includes(`"${key}"`));
}

async function skipped(): Promise<number> {
  const text = await (await fetch(`${stack.gate.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), 'etcdgate_audit_records_skipped_total');
}

describe("an operator's audit policy for kube-apiserver", () => {
  it("drops kube-apiserver's health reads; another certificate's health read is kept", async () => {
    const before = await skipped();
    for (let i = 0; i < 3; i += 1) await range(kube, { key: b('/registry/health') });
    await range(auditor, { key: b('/registry/health') });
    const records = await recordsFor('/registry/health');
    expect(records.map((r) => r.user?.name)).toEqual(['auditor']);
    expect(await skipped()).toBe(before + 3);
  });

  it('drops node heartbeats under /registry/leases/; a heartbeat Txn that also touches a Secret is kept', async () => {
    const key = '/registry/leases/kube-node-lease/node-1';
    let mod = '0';
    for (let i = 0; i < 3; i += 1) {
      const response = await upsert(kube, key, mod);
      expect(response['succeeded']).toBe(true);
      mod = (response['header'] as { revision: string }).revision;
    }
    await txn(kube, {
      compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: mod }],
      success: [{ request_put: { key: b(key), value: b('x') } }, { request_range: { key: b('/registry/secrets/kube-system/bootstrap') } }],
      failure: [],
    });
    const records = await recordsFor(key);
    expect(records).toHaveLength(1);
    expect(JSON.stringify(records[0]?.etcd?.request)).toContain('/registry/secrets/kube-system/bootstrap');
    // A heartbeat etcd refused (two puts of one key in a Txn) is not a success: kept.
    // (A Txn whose compare does not hold is a success to etcd, and dropped like the others.)
    await upsert(kube, key, '1');
    await expect(txn(kube, { success: [{ request_put: { key: b(key), value: b('1') } }, { request_put: { key: b(key), value: b('2') } }] })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await vi.waitFor(async () => {
      const kept = await recordsFor(key);
      expect(kept).toHaveLength(2);
      expect(kept[1]?.event.outcome).toBe('failure');
    });
  });

  it("drops kube-apiserver's lease keepalive streams but keeps its lease grant and a refused renewal", async () => {
    const granted = await callEtcd(kube, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 60 }], 'LeaseGrantResponse');
    const own = granted['ID'] as string;
    expect((await renew(kube, own, 3)).code).toBe(grpc.status.OK);
    // A lease holding a tenant's key: kube-apiserver may not renew it (write on every key of the lease).
    const foreign = (await callEtcd(tenant, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 60 }], 'LeaseGrantResponse'))['ID'] as string;
    await callEtcd(tenant, 'KV', 'Put', ['PutRequest', { key: b('/tenants/tenant-a/leased'), value: b('v'), lease: foreign }], 'PutResponse');
    expect((await renew(kube, foreign, 1)).code).toBe(grpc.status.PERMISSION_DENIED);

    const records = ((await stack.gate.auditRecords()) as unknown as AuditRecord[]).filter((r) => r.user?.name === KUBE_CN && r.event.action.startsWith('etcd.lease.'));
    const kinds = records.map((r) => r.etcdgate.event_kind);
    expect(kinds).toContain('call'); // the LeaseGrant
    expect(kinds.filter((k) => k === 'keepalive.deny')).toHaveLength(1);
    expect(kinds).not.toContain('keepalive.open');
    expect(kinds).not.toContain('keepalive.close');
  });

  it('keeps every access to /registry/secrets/: a get, a write, a list over /registry/ that reaches into it', async () => {
    const secret = '/registry/secrets/default/token-1';
    await upsert(kube, secret, '0');
    await range(kube, { key: b(secret) });
    await range(kube, { key: b('/registry/'), range_end: b('/registry0'), keys_only: true });
    expect((await recordsFor(secret)).map((r) => r.event.action)).toEqual(['etcd.kv.txn', 'etcd.kv.range']);
    expect((await recordsFor('/registry/')).map((r) => r.etcd?.request['range_end'])).toContain('/registry0');
  });

  it('keeps every denial, including those a none rule would otherwise match', async () => {
    // kube-apiserver outside its grant, and a health read by a tenant that may not read it.
    await expectDenied(range(kube, { key: b('/tenants/tenant-a/leased') }));
    await expectDenied(range(tenant, { key: b('/registry/health') }));
    // The auditor's deny rule on Secrets.
    await expectDenied(range(auditor, { key: b('/registry/secrets/default/token-1') }));
    const denied = ((await stack.gate.auditRecords()) as unknown as AuditRecord[]).filter((r) => r.etcd?.decision.allowed === false);
    const who = denied.map((r) => `${r.user?.name ?? '?'} ${r.event.action}`);
    expect(who).toEqual(expect.arrayContaining([`${KUBE_CN} etcd.kv.range`, 'tenant-a etcd.kv.range', 'auditor etcd.kv.range', `${KUBE_CN} etcd.lease.lease_keep_alive`]));
  });

  it('records what no rule names as audit.level says (metadata): a pod read by kube-apiserver', async () => {
    await range(kube, { key: b('/registry/pods/default/web') });
    expect(await recordsFor('/registry/pods/default/web')).toHaveLength(1);
  });
});
