/**
 * Lease policy enforcement against a real etcd 3.4 (which allows all of these itself):
 * attaching a key to a lease that already holds another tenant's key, revoking or
 * keeping alive another tenant's lease, and listing its keys are refused by etcdgate,
 * while the same calls on the caller's own leases work.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import { b, DENIED_TEXT, expectDenied, expectNotDenied, PERMISSION_DENIED_CODE, valueInEtcd } from './support/enforcement.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient, rawUnary } from './support/raw-client.js';

const passThrough = (buffer: Buffer): Buffer => buffer;

const stack = useGatewayStack({ policy: DEV_POLICY_FILE });
let direct: grpc.Client;
let tenantA: grpc.Client;
let tenantB: grpc.Client;
let nobody: grpc.Client;

beforeAll(() => {
  direct = rawClient(stack.etcd.endpoints[0]!, stack.pki, 'root');
  tenantA = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
  tenantB = rawClient(stack.gate.endpoint, stack.pki, 'tenant-b');
  nobody = rawClient(stack.gate.endpoint, stack.pki, 'nobody');
});

afterAll(() => {
  for (const client of [direct, tenantA, tenantB, nobody]) client?.close();
});

async function grant(client: grpc.Client): Promise<string> {
  const response = await callEtcd(client, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 120 }], 'LeaseGrantResponse');
  const id = response['ID'];
  expect(typeof id).toBe('string');
  return id as string;
}

function timeToLive(client: grpc.Client, id: string, keys: boolean): Promise<Record<string, unknown>> {
  return callEtcd(client, 'Lease', 'LeaseTimeToLive', ['LeaseTimeToLiveRequest', { ID: id, keys }], 'LeaseTimeToLiveResponse');
}

/** Whether etcd itself still has the lease (etcd 3.4 answers TTL -1 for an unknown one). */
async function leaseExists(id: string): Promise<boolean> {
  const response = await timeToLive(direct, id, false);
  return Number(response['TTL'] ?? 0) > 0;
}

/** A tenant-b lease holding tenant-b's key, the shape every scenario here starts from. */
async function tenantBLease(name: string): Promise<string> {
  const id = await grant(tenantB);
  await callEtcd(tenantB, 'KV', 'Put', ['PutRequest', { key: b(`/tenants/tenant-b/${name}`), value: b('b'), lease: id }], 'PutResponse');
  return id;
}

interface KeepAliveOutcome {
  readonly responses: Array<Record<string, unknown>>;
  readonly status: grpc.StatusObject;
}

/** Opens LeaseKeepAlive, sends one renewal for `id`, and waits for a response (then cancels) or the stream's end. */
function keepAliveOnce(client: grpc.Client, id: string): Promise<KeepAliveOutcome> {
  const stream = client.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, new grpc.Metadata());
  const responses: Array<Record<string, unknown>> = [];
  return new Promise((resolve) => {
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => {
      responses.push(decode('etcdserverpb.LeaseKeepAliveResponse', chunk));
      stream.cancel();
    });
    stream.on('status', (status: grpc.StatusObject) => resolve({ responses, status }));
    stream.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id }));
  });
}

describe('lease enforcement', () => {
  it("refuses a Put attaching tenant-a's key to a lease that holds tenant-b's key, and allows its own lease", async () => {
    const foreign = await tenantBLease('attached');
    await expectDenied(callEtcd(tenantA, 'KV', 'Put', ['PutRequest', { key: b('/tenants/tenant-a/hijack'), value: b('a'), lease: foreign }], 'PutResponse'));
    await expectDenied(
      callEtcd(tenantA, 'KV', 'Txn', ['TxnRequest', { success: [{ request_put: { key: b('/tenants/tenant-a/hijack'), value: b('a'), lease: foreign } }] }], 'TxnResponse'),
    );
    expect(await valueInEtcd(direct, '/tenants/tenant-a/hijack')).toBeUndefined();
    const attached = await timeToLive(direct, foreign, true);
    expect((attached['keys'] as Buffer[]).map((k) => k.toString())).toEqual(['/tenants/tenant-b/attached']);

    const own = await grant(tenantA);
    await callEtcd(tenantA, 'KV', 'Put', ['PutRequest', { key: b('/tenants/tenant-a/leased'), value: b('a'), lease: own }], 'PutResponse');
    const mine = await timeToLive(direct, own, true);
    expect((mine['keys'] as Buffer[]).map((k) => k.toString())).toEqual(['/tenants/tenant-a/leased']);
  });

  it("refuses tenant-a revoking tenant-b's lease; the lease and its key survive", async () => {
    const foreign = await tenantBLease('revoke-target');
    await expectDenied(callEtcd(tenantA, 'Lease', 'LeaseRevoke', ['LeaseRevokeRequest', { ID: foreign }], 'LeaseRevokeResponse'));
    expect(await leaseExists(foreign)).toBe(true);
    expect(await valueInEtcd(direct, '/tenants/tenant-b/revoke-target')).toBe('b');

    await callEtcd(tenantB, 'Lease', 'LeaseRevoke', ['LeaseRevokeRequest', { ID: foreign }], 'LeaseRevokeResponse');
    expect(await leaseExists(foreign)).toBe(false);
    expect(await valueInEtcd(direct, '/tenants/tenant-b/revoke-target')).toBeUndefined();
  });

  it("refuses an Election.Resign by tenant-a naming tenant-b's lease (etcd opens a session on it), and allows tenant-a's own", async () => {
    const foreign = await tenantBLease('resign-target');
    const resign = (lease: string): Promise<Buffer> =>
      rawUnary(tenantA, '/v3electionpb.Election/Resign', encode('v3electionpb.ResignRequest', { leader: { name: b('/tenants/tenant-a/election'), key: b('/tenants/tenant-a/election/x'), rev: '1', lease } }));
    await expectDenied(resign(foreign));
    expect(await leaseExists(foreign)).toBe(true);
    const own = await grant(tenantA);
    await callEtcd(tenantA, 'KV', 'Put', ['PutRequest', { key: b('/tenants/tenant-a/resign-own'), value: b('a'), lease: own }], 'PutResponse');
    await expectNotDenied(resign(own));
  });

  it("ends tenant-a's keep-alive of tenant-b's lease with PERMISSION_DENIED, and renews tenant-b's own", async () => {
    const foreign = await tenantBLease('keepalive-target');
    const refused = await keepAliveOnce(tenantA, foreign);
    expect(refused.responses).toEqual([]);
    expect({ code: refused.status.code, details: refused.status.details }).toEqual({ code: PERMISSION_DENIED_CODE, details: DENIED_TEXT });
    expect(await leaseExists(foreign)).toBe(true);

    const renewed = await keepAliveOnce(tenantB, foreign);
    expect(renewed.responses).toHaveLength(1);
    expect(renewed.responses[0]).toMatchObject({ ID: foreign });
    expect(Number(renewed.responses[0]?.['TTL'])).toBeGreaterThan(0);
  });

  it("refuses LeaseTimeToLive with keys=true on tenant-b's lease, and allows keys=false", async () => {
    const foreign = await tenantBLease('ttl-target');
    await expectDenied(timeToLive(tenantA, foreign, true));
    const withoutKeys = await timeToLive(tenantA, foreign, false);
    expect(withoutKeys).toMatchObject({ ID: foreign });
    expect(withoutKeys['keys']).toBeUndefined();
    expect(Number(withoutKeys['TTL'])).toBeGreaterThan(0);

    const own = await timeToLive(tenantB, foreign, true);
    expect((own['keys'] as Buffer[]).map((k) => k.toString())).toEqual(['/tenants/tenant-b/ttl-target']);
  });

  it('refuses every lease call to a caller without the lease capability', async () => {
    const foreign = await tenantBLease('nobody-target');
    await expectDenied(callEtcd(nobody, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 60 }], 'LeaseGrantResponse'));
    await expectDenied(timeToLive(nobody, foreign, false));
    await expectDenied(callEtcd(nobody, 'Lease', 'LeaseRevoke', ['LeaseRevokeRequest', { ID: foreign }], 'LeaseRevokeResponse'));
    await expectDenied(callEtcd(tenantA, 'Lease', 'LeaseLeases', ['LeaseLeasesRequest', {}], 'LeaseLeasesResponse'));
    expect(await leaseExists(foreign)).toBe(true);
  });
});
