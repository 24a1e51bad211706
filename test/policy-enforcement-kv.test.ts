/**
 * KV policy enforcement against a real etcd 3.4: for every scenario the allowed caller
 * succeeds and the denied caller gets PERMISSION_DENIED with etcd's exact text, and a
 * refused write is proven absent by reading etcd directly. Covers partly-covered ranges,
 * Txn failure branches and nested Txns, prev_kv needing read, credentials headers that
 * must not change who the caller is, and a caller with no binding at all.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b, expectDenied, valueInEtcd } from './support/enforcement.js';
import { devPolicyWith, type PolicyDocument } from './support/policy-file.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

/** The dev policy, plus a write-only drop box for tenant-a (write without read). */
const policyWithDropBox = (): PolicyDocument => devPolicyWith('dropbox', [{ prefix: '/dropbox/', access: 'write' }], 'tenant-a');

const stack = useGatewayStack({ policy: policyWithDropBox });
let direct: grpc.Client;
let tenantA: grpc.Client;
let nobody: grpc.Client;
/** CN=root through etcdgate: an admin, allowed everything. */
let admin: grpc.Client;

beforeAll(() => {
  direct = rawClient(stack.etcd.endpoints[0]!, stack.pki, 'root');
  tenantA = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
  nobody = rawClient(stack.gate.endpoint, stack.pki, 'nobody');
  admin = rawClient(stack.gate.endpoint, stack.pki, 'root');
});

afterAll(() => {
  for (const client of [direct, tenantA, nobody, admin]) client?.close();
});

type Call = (client: grpc.Client, request: Record<string, unknown>, metadata?: grpc.Metadata) => Promise<Record<string, unknown>>;

const put: Call = (client, request, metadata) => callEtcd(client, 'KV', 'Put', ['PutRequest', request], 'PutResponse', metadata);
const range: Call = (client, request, metadata) => callEtcd(client, 'KV', 'Range', ['RangeRequest', request], 'RangeResponse', metadata);
const del: Call = (client, request, metadata) => callEtcd(client, 'KV', 'DeleteRange', ['DeleteRangeRequest', request], 'DeleteRangeResponse', metadata);
const txn: Call = (client, request, metadata) => callEtcd(client, 'KV', 'Txn', ['TxnRequest', request], 'TxnResponse', metadata);

/** Writes `key` = `value` straight into etcd (test set-up, not through etcdgate). */
async function seed(key: string, value: string): Promise<void> {
  await put(direct, { key: b(key), value: b(value) });
}

function keysOf(response: Record<string, unknown>): string[] {
  return ((response['kvs'] ?? []) as Array<{ key: Buffer }>).map((kv) => kv.key.toString('utf8'));
}

/** A Compare that holds when `key` does not exist (version == 0). */
function absent(key: string): Record<string, unknown> {
  return { key: b(key), target: 'VERSION', result: 'EQUAL', version: 0 };
}

describe('KV enforcement', () => {
  it('lets tenant-a put, get and delete under /tenants/tenant-a/', async () => {
    await put(tenantA, { key: b('/tenants/tenant-a/one'), value: b('1') });
    const got = await range(tenantA, { key: b('/tenants/tenant-a/one') });
    expect(keysOf(got)).toEqual(['/tenants/tenant-a/one']);
    expect(await valueInEtcd(direct, '/tenants/tenant-a/one')).toBe('1');
    const deleted = await del(tenantA, { key: b('/tenants/tenant-a/one') });
    expect(deleted['deleted']).toBe('1');
    expect(await valueInEtcd(direct, '/tenants/tenant-a/one')).toBeUndefined();
  });

  it("refuses tenant-a every operation on tenant-b's keys, and nothing changes", async () => {
    await seed('/tenants/tenant-b/secret', 'b-original');
    await expectDenied(put(tenantA, { key: b('/tenants/tenant-b/secret'), value: b('overwritten') }));
    await expectDenied(put(tenantA, { key: b('/tenants/tenant-b/new'), value: b('x') }));
    await expectDenied(range(tenantA, { key: b('/tenants/tenant-b/secret') }));
    await expectDenied(del(tenantA, { key: b('/tenants/tenant-b/secret') }));
    expect(await valueInEtcd(direct, '/tenants/tenant-b/secret')).toBe('b-original');
    expect(await valueInEtcd(direct, '/tenants/tenant-b/new')).toBeUndefined();
  });

  it('refuses a range only partly inside the grant as a whole, and allows the covered one', async () => {
    await seed('/tenants/tenant-a/r1', 'a');
    await seed('/tenants/tenant-b/r1', 'b');
    const partly = { key: b('/tenants/tenant-a/'), range_end: b('/tenants/tenant-b0') };
    await expectDenied(range(tenantA, partly));
    await expectDenied(range(tenantA, { ...partly, count_only: true }));
    await expectDenied(range(tenantA, { ...partly, keys_only: true }));
    await expectDenied(del(tenantA, partly));
    expect(await valueInEtcd(direct, '/tenants/tenant-a/r1')).toBe('a');
    expect(await valueInEtcd(direct, '/tenants/tenant-b/r1')).toBe('b');

    const own = await range(tenantA, { key: b('/tenants/tenant-a/'), range_end: b('/tenants/tenant-a0') });
    expect(keysOf(own)).toContain('/tenants/tenant-a/r1');
    expect(keysOf(own).every((k) => k.startsWith('/tenants/tenant-a/'))).toBe(true);
  });

  it('refuses a Txn whose failure branch writes outside the grant, even though the success branch would run', async () => {
    const outside = '/tenants/tenant-b/from-failure';
    const mine = '/tenants/tenant-a/from-success';
    const request = {
      compare: [absent(mine)],
      success: [{ request_put: { key: b(mine), value: b('ran') } }],
      failure: [{ request_put: { key: b(outside), value: b('ran') } }],
    };
    await expectDenied(txn(tenantA, request));
    expect(await valueInEtcd(direct, mine)).toBeUndefined();
    expect(await valueInEtcd(direct, outside)).toBeUndefined();

    // The same Txn with the failure branch inside the grant is allowed and runs.
    const allowed = await txn(tenantA, { ...request, failure: [{ request_put: { key: b('/tenants/tenant-a/other'), value: b('x') } }] });
    expect(allowed['succeeded']).toBe(true);
    expect(await valueInEtcd(direct, mine)).toBe('ran');
  });

  it('refuses a Txn whose compare reads outside the grant', async () => {
    await seed('/tenants/tenant-b/probe', 'v');
    const request = {
      compare: [absent('/tenants/tenant-b/probe')],
      success: [{ request_put: { key: b('/tenants/tenant-a/probe-result'), value: b('absent') } }],
    };
    await expectDenied(txn(tenantA, request));
    expect(await valueInEtcd(direct, '/tenants/tenant-a/probe-result')).toBeUndefined();
  });

  it('refuses a nested Txn that writes outside the grant, and allows one that stays inside', async () => {
    const nested = (key: string): Record<string, unknown> => ({
      success: [
        { request_put: { key: b('/tenants/tenant-a/outer'), value: b('outer') } },
        { request_txn: { success: [{ request_txn: { success: [{ request_put: { key: b(key), value: b('inner') } }] } }] } },
      ],
    });
    await expectDenied(txn(tenantA, nested('/tenants/tenant-b/inner')));
    expect(await valueInEtcd(direct, '/tenants/tenant-b/inner')).toBeUndefined();
    expect(await valueInEtcd(direct, '/tenants/tenant-a/outer')).toBeUndefined();

    const allowed = await txn(tenantA, nested('/tenants/tenant-a/inner'));
    expect(allowed['succeeded']).toBe(true);
    expect(await valueInEtcd(direct, '/tenants/tenant-a/inner')).toBe('inner');
  });

  it('refuses prev_kv on a key the caller may write but not read, in a Put and in a Txn', async () => {
    await seed('/dropbox/letter', 'sealed');
    await expectDenied(put(tenantA, { key: b('/dropbox/letter'), value: b('replaced'), prev_kv: true }));
    await expectDenied(txn(tenantA, { success: [{ request_put: { key: b('/dropbox/letter'), value: b('replaced'), prev_kv: true } }] }));
    await expectDenied(range(tenantA, { key: b('/dropbox/letter') }));
    expect(await valueInEtcd(direct, '/dropbox/letter')).toBe('sealed');

    const plain = await txn(tenantA, { success: [{ request_put: { key: b('/dropbox/letter'), value: b('replaced') } }] });
    expect(plain['succeeded']).toBe(true);
    // Nothing of the old value comes back without prev_kv.
    expect(JSON.stringify(plain)).not.toContain(Buffer.from('sealed').toString('base64'));
    expect(await valueInEtcd(direct, '/dropbox/letter')).toBe('replaced');
    await put(tenantA, { key: b('/dropbox/letter'), value: b('again') });
    expect(await valueInEtcd(direct, '/dropbox/letter')).toBe('again');
  });

  it('refuses DeleteRange with prev_kv without read, and allows it without prev_kv', async () => {
    await seed('/dropbox/d1', 'one');
    await seed('/dropbox/d2', 'two');
    await expectDenied(del(tenantA, { key: b('/dropbox/d1'), prev_kv: true }));
    await expectDenied(del(tenantA, { key: b('/dropbox/'), range_end: b('/dropbox0'), prev_kv: true }));
    await expectDenied(txn(tenantA, { success: [{ request_delete_range: { key: b('/dropbox/d1'), prev_kv: true } }] }));
    expect(await valueInEtcd(direct, '/dropbox/d1')).toBe('one');

    const deleted = await del(tenantA, { key: b('/dropbox/d1') });
    expect(deleted['deleted']).toBe('1');
    expect(deleted['prev_kvs']).toBeUndefined();
    expect(await valueInEtcd(direct, '/dropbox/d1')).toBeUndefined();

    // A caller with read and write gets prev_kv on its own keys.
    await seed('/tenants/tenant-a/d', 'mine');
    const withPrev = await del(tenantA, { key: b('/tenants/tenant-a/d'), prev_kv: true });
    expect((withPrev['prev_kvs'] as Array<{ value: Buffer }>)[0]?.value.toString()).toBe('mine');
  });

  it('ignores token and authorization headers: the certificate decides who the caller is', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('token', 'root-token-from-somewhere');
    metadata.set('authorization', 'Bearer root');
    await seed('/tenants/tenant-b/guarded', 'b');
    await expectDenied(put(tenantA, { key: b('/tenants/tenant-b/guarded'), value: b('x') }, metadata));
    await expectDenied(range(tenantA, { key: b('/tenants/tenant-b/guarded') }, metadata));
    expect(await valueInEtcd(direct, '/tenants/tenant-b/guarded')).toBe('b');

    await put(tenantA, { key: b('/tenants/tenant-a/with-token'), value: b('ok') }, metadata);
    expect(await valueInEtcd(direct, '/tenants/tenant-a/with-token')).toBe('ok');
    await expectDenied(range(nobody, { key: b('/tenants/tenant-a/with-token') }, metadata));
  });

  it('refuses a caller with no binding every key access', async () => {
    await seed('/tenants/tenant-a/visible', 'v');
    await expectDenied(range(nobody, { key: b('/tenants/tenant-a/visible') }));
    await expectDenied(range(nobody, { key: b('\0'), range_end: b('\0'), count_only: true }));
    await expectDenied(put(nobody, { key: b('/nobody/k'), value: b('x') }));
    await expectDenied(del(nobody, { key: b('/tenants/tenant-a/visible') }));
    await expectDenied(txn(nobody, { compare: [absent('/nobody/k')], success: [{ request_put: { key: b('/nobody/k'), value: b('x') } }] }));
    expect(await valueInEtcd(direct, '/nobody/k')).toBeUndefined();
    expect(await valueInEtcd(direct, '/tenants/tenant-a/visible')).toBe('v');
  });

  it('answers MemberList to any bound caller, and to nobody without a binding', async () => {
    // MemberList needs no grant, only a binding: the "no binding: every call denied" wins over etcd's "any authenticated caller".
    const members = await callEtcd(tenantA, 'Cluster', 'MemberList', ['MemberListRequest', {}], 'MemberListResponse');
    const list = members['members'] as Array<{ clientURLs?: string[] }>;
    expect(list).toHaveLength(1);
    expect(list[0]?.clientURLs).toEqual(['https://127.0.0.1:32379']);
    await expectDenied(callEtcd(nobody, 'Cluster', 'MemberList', ['MemberListRequest', {}], 'MemberListResponse'));
    await expectDenied(callEtcd(nobody, 'KV', 'Txn', ['TxnRequest', {}], 'TxnResponse'));
  });

  it("records a denied Txn with its first refused operation (branch, index, path, key); the allowed caller's Txn names none", async () => {
    const request = {
      compare: [absent('/tenants/tenant-a/guard')],
      success: [{ request_put: { key: b('/tenants/tenant-a/ok'), value: b('x') } }],
      failure: [
        { request_range: { key: b('/tenants/tenant-a/ok') } },
        { request_txn: { success: [{ request_put: { key: b('/tenants/tenant-b/refused-op'), value: b('x') } }] } },
      ],
    };
    await expectDenied(txn(tenantA, request));
    await txn(admin, request);
    const records = (await stack.gate.auditRecords()).filter((r) => JSON.stringify(r['etcd'] ?? {}).includes('/tenants/tenant-b/refused-op'));
    const denied = records.find((r) => (r['user'] as { name: string }).name === 'tenant-a');
    expect(denied).toMatchObject({ event: { action: 'etcd.kv.txn', outcome: 'failure' } });
    expect((denied?.['etcd'] as { decision: unknown }).decision).toMatchObject({
      allowed: false,
      refused: { access: 'write', op: 'put', branch: 'success', index: 0, path: 'failure[1].success[0]', key: '/tenants/tenant-b/refused-op' },
    });
    const allowed = records.find((r) => (r['user'] as { name: string }).name === 'root');
    expect(allowed).toMatchObject({ event: { outcome: 'success' }, etcd: { decision: { allowed: true } } });
    expect((allowed?.['etcd'] as { decision: Record<string, unknown> }).decision['refused']).toBeUndefined();
  });

  it('records a refusal in the audit trail as denied, with the caller and the key', async () => {
    await expectDenied(put(tenantA, { key: b('/tenants/tenant-b/audited'), value: b('x') }));
    const records = await stack.gate.auditRecords();
    const record = records.find((r) => JSON.stringify(r['etcd'] ?? {}).includes('/tenants/tenant-b/audited'));
    expect(record).toMatchObject({
      event: { action: 'etcd.kv.put', outcome: 'failure' },
      user: { name: 'tenant-a' },
      etcd: { decision: { allowed: false, refused: { access: 'write', key: '/tenants/tenant-b/audited' } }, response: { code: 7, code_name: 'PERMISSION_DENIED' } },
    });
  });
});
