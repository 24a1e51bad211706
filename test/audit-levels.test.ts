/**
 * `audit.level` is honoured end to end: with reads at `none` and everything else at
 * `metadata`, a Range through etcdgate leaves no record while a Put, a lease grant and a
 * snapshot (admin, however much it reads) each leave one.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const stack = useGatewayStack({
  overrides: { audit: { level: { read: 'none', write: 'metadata', admin: 'metadata', auth: 'metadata' } } },
});
let root: grpc.Client;

beforeAll(() => {
  root = rawClient(stack.gate.endpoint, stack.pki, 'root');
});

afterAll(() => {
  root?.close();
});

interface AuditRecord {
  event: { action: string };
  etcd?: { request?: { key?: string } };
}

it('read: none drops Range records; write and admin records are kept', async () => {
  const key = Buffer.from('/levels/one');
  await callEtcd(root, 'KV', 'Put', ['PutRequest', { key, value: Buffer.from('v') }], 'PutResponse');
  const got = await callEtcd(root, 'KV', 'Range', ['RangeRequest', { key }], 'RangeResponse');
  expect(got['count']).toBe('1');
  await callEtcd(root, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 30 }], 'LeaseGrantResponse');
  const snapshot = await new Promise<grpc.StatusObject>((resolve) => {
    const stream = root.makeServerStreamRequest('/etcdserverpb.Maintenance/Snapshot', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0));
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('status', resolve);
  });
  expect(snapshot.code).toBe(grpc.status.OK);

  const records = (await stack.gate.auditRecords()) as unknown as AuditRecord[];
  const actions = records.map((r) => r.event.action);
  expect(actions).not.toContain('etcd.kv.range');
  expect(records.filter((r) => r.event.action === 'etcd.kv.put').map((r) => r.etcd?.request?.key)).toEqual(['/levels/one']);
  expect(actions).toContain('etcd.lease.lease_grant');
  expect(actions.filter((a) => a === 'etcd.maintenance.snapshot')).toHaveLength(2);
});
