/**
 * No 4 MiB ceiling on streams: a snapshot of a database over 100 MiB streams through
 * etcdgate, and `etcdctl snapshot status` accepts the file.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl } from './support/etcdctl.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { makePki, type Pki } from './support/pki.js';

let pki: Pki;
let etcd: EtcdCluster;
let gate: TestGateway;

beforeAll(async () => {
  pki = await makePki();
  etcd = await startEtcd(pki);
  gate = await startTestGateway({ pki, upstream: etcd.endpoints });
});

afterAll(async () => {
  await gate?.stop();
  await etcd?.stop();
  await pki?.remove();
});

it('streams a snapshot of a database over 100 MiB', async () => {
  // Written straight to etcd: this test is about the snapshot stream, not 100 puts.
  const direct = etcd3Client(etcd.endpoints[0]!, pki, 'root');
  try {
    const value = Buffer.alloc(1024 * 1024, 's');
    for (let i = 0; i < 105; i += 1) await direct.put(`/bulk/${i}`).value(value);
  } finally {
    direct.close();
  }
  const file = path.join(pki.dir, 'big.db');
  const root = { endpoint: gate.endpoint, cacert: pki.ca, ...pki.client('root'), timeoutMs: 120_000 };
  const saved = await etcdctl(['snapshot', 'save', file], root);
  expect(saved.code, saved.stderr).toBe(0);
  expect(statSync(file).size).toBeGreaterThan(100 * 1024 * 1024);
  const status = await etcdctl(['snapshot', 'status', file, '-w', 'json'], root);
  expect(status.code, status.stderr).toBe(0);
  expect(JSON.parse(status.stdout).totalKey).toBeGreaterThanOrEqual(105);
}, 180_000);
