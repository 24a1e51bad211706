/**
 * Debian's python3-etcd3 (grpcio underneath: another gRPC and HTTP/2 implementation than
 * ours, grpc-js or Go's) through etcdgate with a tenant's certificate: put, get, a Txn,
 * a lease with a key and a renewal, a prefix watch, a range and a delete on its own
 * prefix all work and land in etcd; a read of another tenant's key is refused.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { valueInEtcd } from './support/enforcement.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const SCRIPT = fileURLToPath(new URL('./support/python-etcd3-client.py', import.meta.url));
const stack = useGatewayStack({ policy: DEV_POLICY_FILE });
let direct: grpc.Client;

beforeAll(() => {
  direct = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
});
afterAll(() => direct?.close());

function runPython(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    // Debian's interpreter: python3-etcd3 is installed for it, not for any other python3 on PATH.
    execFile('/usr/bin/python3', [SCRIPT, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

describe('python3-etcd3 through etcdgate', () => {
  it('works on its own prefix, and is refused another tenant\'s key', async () => {
    const port = new URL(stack.gate.endpoint).port;
    const cert = stack.pki.client('tenant-a');
    const prefix = '/tenants/tenant-a/py/';
    const out = await runPython(['127.0.0.1', port, stack.pki.ca, cert.cert, cert.key, prefix, '/tenants/tenant-b/secret']);
    expect(out).toMatchObject({
      get: 'value-a',
      txn: true,
      txn_value: 'from-txn',
      lease_keys: [`${prefix}leased`],
      watched: [`${prefix}w/1`],
      range: [`${prefix}a`, `${prefix}b`, `${prefix}leased`, `${prefix}w/1`],
      deleted: true,
    });
    expect(out['lease_ttl']).toBeGreaterThan(0);
    expect(String(out['foreign'])).toMatch(/permission denied/iu);
    expect(await valueInEtcd(direct, `${prefix}b`)).toBe('from-txn');
    expect(await valueInEtcd(direct, `${prefix}a`)).toBeUndefined();
  }, 90_000);
});
