/**
 * No 4 MiB ceiling on streams: a snapshot of a database over 100 MiB streams through
 * etcdgate, and `etcdctl snapshot status` accepts the file.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl } from './support/etcdctl.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack();

it('streams a snapshot of a database over 100 MiB', async () => {
  // Written straight to etcd: this test is about the snapshot stream, not 100 puts.
  const direct = etcd3Client(stack.etcd.endpoints[0]!, stack.pki, 'root');
  try {
    const value = Buffer.alloc(1024 * 1024, 's');
    for (let i = 0; i < 105; i += 1) await direct.put(`/bulk/${i}`).value(value);
  } finally {
    direct.close();
  }
  const file = path.join(stack.pki.dir, 'big.db');
  const root = { endpoint: stack.gate.endpoint, cacert: stack.pki.ca, ...stack.pki.client('root'), timeoutMs: 120_000 };
  const saved = await etcdctl(['snapshot', 'save', file], root);
  expect(saved.code, saved.stderr).toBe(0);
  expect(statSync(file).size).toBeGreaterThan(100 * 1024 * 1024);
  const status = await etcdctl(['snapshot', 'status', file, '-w', 'json'], root);
  expect(status.code, status.stderr).toBe(0);
  expect(JSON.parse(status.stdout).totalKey).toBeGreaterThanOrEqual(105);
}, 180_000);
