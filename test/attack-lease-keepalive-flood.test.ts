/**
 * Issue 13 item 7, performed: a bound tenant floods LeaseKeepAlive with renewals of its
 * own lease (before the fix, 762,000 in 8 s queued one lease lookup each), and sends 200
 * Puts attached to one lease at once. What etcd itself was asked is read from etcd's own
 * metrics (grpc_server_handled_total of LeaseTimeToLive, etcdgate's lookup):
 * - renewals count against the caller's rate limit: past the burst the stream ends with
 *   RESOURCE_EXHAUSTED, and etcd saw no more lookups than renewals were let through;
 * - lookups are shared per lease ID while one is in flight: the 200 Puts cost etcd far
 *   fewer than 200 lookups. Another tenant keeps being served meanwhile.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from './support/curl.js';
import { decode, encode } from './support/etcd-messages.js';
import { b, valueInEtcd } from './support/enforcement.js';
import type { TestGateway } from './support/gateway.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const BURST = 40;
const passThrough = (buffer: Buffer): Buffer => buffer;

const stack = useGatewayStack({ gateway: false });
let limited: TestGateway;
let open: TestGateway;
let direct: grpc.Client;

beforeAll(async () => {
  limited = await stack.startGateway({ policy: DEV_POLICY_FILE, overrides: { limits: { requestsPerSecond: 10, burst: BURST } } });
  open = await stack.startGateway({ policy: DEV_POLICY_FILE });
  direct = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
});

afterAll(async () => {
  direct?.close();
  await limited?.stop();
  await open?.stop();
});

/** LeaseTimeToLive calls etcd has answered so far, from etcd's own /metrics. */
async function etcdLookups(): Promise<number> {
  const result = await curl(`${stack.etcd.endpoints[0] ?? ''}/metrics`, { ca: stack.pki.ca, client: stack.pki.client('root') });
  expect(result.status).toBe(200);
  // Absent until etcd has answered the first one.
  return findSamples(parseExposition(result.body), 'grpc_server_handled_total', { grpc_method: 'LeaseTimeToLive', grpc_code: 'OK' }).reduce((sum, sample) => sum + sample.value, 0);
}

async function leaseWithKey(client: grpc.Client, key: string): Promise<string> {
  const granted = await callEtcd(client, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 300 }], 'LeaseGrantResponse');
  const id = granted['ID'] as string;
  await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: b(key), value: b('v'), lease: id }], 'PutResponse');
  return id;
}

describe('LeaseKeepAlive flood', () => {
  it('renewals past the burst end the stream with RESOURCE_EXHAUSTED; etcd sees no lookup for a refused one', async () => {
    const tenant = rawClient(limited.endpoint, stack.pki, 'tenant-a');
    const other = rawClient(limited.endpoint, stack.pki, 'tenant-b');
    try {
      const id = await leaseWithKey(tenant, '/tenants/tenant-a/flood');
      const before = await etcdLookups();
      const stream = tenant.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, new grpc.Metadata());
      let answered = 0;
      stream.on('data', (chunk: Buffer) => {
        expect(decode('etcdserverpb.LeaseKeepAliveResponse', chunk)['ID']).toBe(id);
        answered += 1;
      });
      stream.on('error', () => undefined);
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      const renewal = encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id });
      for (let i = 0; i < 20_000; i++) stream.write(renewal);
      const ended = await status;
      expect(ended.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      // The burst, plus what the 10/s rate refilled while the flood was read.
      expect(answered).toBeGreaterThan(0);
      expect(answered).toBeLessThan(BURST + 30);
      const lookups = (await etcdLookups()) - before;
      // One lookup per renewal let through (the last may be answered by etcd after the
      // stream was ended), none for the thousands refused.
      expect(lookups).toBeLessThanOrEqual(answered + 2);
      // Another identity has its own bucket and is served.
      await callEtcd(other, 'KV', 'Put', ['PutRequest', { key: b('/tenants/tenant-b/meanwhile'), value: b('b') }], 'PutResponse');
      expect(await valueInEtcd(direct, '/tenants/tenant-b/meanwhile')).toBe('b');
    } finally {
      tenant.close();
      other.close();
    }
  });
});

describe('lease lookups', () => {
  it('200 concurrent Puts attached to one lease share lookups: etcd answers far fewer than 200', async () => {
    const tenant = rawClient(open.endpoint, stack.pki, 'tenant-a');
    try {
      const id = await leaseWithKey(tenant, '/tenants/tenant-a/shared/0');
      const before = await etcdLookups();
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          callEtcd(tenant, 'KV', 'Put', ['PutRequest', { key: b(`/tenants/tenant-a/shared/${i + 1}`), value: b('v'), lease: id }], 'PutResponse'),
        ),
      );
      const lookups = (await etcdLookups()) - before;
      expect(lookups).toBeGreaterThan(0);
      expect(lookups).toBeLessThan(100);
      expect(await valueInEtcd(direct, '/tenants/tenant-a/shared/200')).toBe('v');
    } finally {
      tenant.close();
    }
  });
});
