/**
 * A LeaseKeepAlive stream outlives policy reloads: each renewal is decided by the policy
 * in force when it arrives, not the one the stream was opened under. After a reload that
 * takes away write on the lease's key, the next renewal on the same stream ends it with
 * PERMISSION_DENIED (against a real etcd 3.4, which would renew it).
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { decode, encode } from './support/etcd-messages.js';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { b, DENIED_TEXT, PERMISSION_DENIED_CODE } from './support/enforcement.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { makePki, type Pki } from './support/pki.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const passThrough = (buffer: Buffer): Buffer => buffer;

interface PolicyDocument {
  roles: Record<string, unknown>;
  bindings: unknown[];
}

/** The dev policy, with or without write on /shared/ for tenant-a. */
function policy(shared: boolean): string {
  const dev = parse(readFileSync(new URL('../config/policy.dev.yaml', import.meta.url), 'utf8')) as PolicyDocument;
  if (!shared) return stringify(dev);
  return stringify({
    roles: { ...dev.roles, 'shared-writer': { keys: [{ prefix: '/shared/', access: 'write' }] } },
    bindings: [...dev.bindings, { match: { cn: 'tenant-a' }, roles: ['shared-writer'] }],
  });
}

let pki: Pki;
let etcd: EtcdCluster;
let gate: TestGateway;
let policyDir: string;
let policyFile: string;
let tenantA: grpc.Client;
let direct: grpc.Client;

async function writePolicy(text: string): Promise<void> {
  await writeFile(`${policyFile}.next`, text);
  await rename(`${policyFile}.next`, policyFile);
}

beforeAll(async () => {
  pki = await makePki();
  etcd = await startEtcd(pki);
  policyDir = await mkdtemp(path.join(tmpdir(), 'etcdgate-keepalive-policy-'));
  policyFile = path.join(policyDir, 'policy.yaml');
  await writePolicy(policy(true));
  gate = await startTestGateway({ pki, upstream: etcd.endpoints, policy: policyFile });
  tenantA = rawClient(gate.endpoint, pki, 'tenant-a');
  direct = rawClient(etcd.endpoints[0]!, pki, 'root');
});

afterAll(async () => {
  tenantA?.close();
  direct?.close();
  await gate?.stop();
  await etcd?.stop();
  await pki?.remove();
  if (policyDir !== undefined) await rm(policyDir, { recursive: true, force: true });
});

describe('keep-alive across a policy reload', () => {
  it('renews under the old policy, then ends the same stream with PERMISSION_DENIED after the reload', async () => {
    const granted = await callEtcd(tenantA, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 120 }], 'LeaseGrantResponse');
    const id = granted['ID'] as string;
    await callEtcd(tenantA, 'KV', 'Put', ['PutRequest', { key: b('/shared/lock'), value: b('a'), lease: id }], 'PutResponse');

    const stream = tenantA.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, new grpc.Metadata());
    stream.on('error', () => undefined);
    const responses: Record<string, unknown>[] = [];
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    let onResponse = (): void => undefined;
    stream.on('data', (chunk: Buffer) => {
      responses.push(decode('etcdserverpb.LeaseKeepAliveResponse', chunk));
      onResponse();
    });
    const nextResponse = (): Promise<'renewed'> =>
      new Promise((resolve) => {
        onResponse = () => resolve('renewed');
      });
    try {
      const first = nextResponse();
      stream.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id }));
      await first;
      expect(responses[0]).toMatchObject({ ID: id });

      await writePolicy(policy(false));
      expect(gate.gateway.reloadPolicy()).toBe(true);
      const second = nextResponse();
      stream.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id }));
      const status = await Promise.race([ended, second]);
      expect(status, 'the renewal after the reload was forwarded').not.toBe('renewed');
      if (status === 'renewed') return;
      expect({ code: status.code, details: status.details }).toEqual({ code: PERMISSION_DENIED_CODE, details: DENIED_TEXT });
      expect(responses).toHaveLength(1);
    } finally {
      stream.cancel();
    }
    const ttl = await callEtcd(direct, 'Lease', 'LeaseTimeToLive', ['LeaseTimeToLiveRequest', { ID: id }], 'LeaseTimeToLiveResponse');
    expect(Number(ttl['TTL'])).toBeGreaterThan(0);
  });
});
