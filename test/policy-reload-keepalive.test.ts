/**
 * A LeaseKeepAlive stream outlives policy reloads: each renewal is decided by the policy
 * in force when it arrives, not the one the stream was opened under. After a reload that
 * takes away write on the lease's key, the next renewal on the same stream ends it with
 * PERMISSION_DENIED (against a real etcd 3.4, which would renew it).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { decode, encode } from './support/etcd-messages.js';
import { b, DENIED_TEXT, PERMISSION_DENIED_CODE } from './support/enforcement.js';
import { devPolicy, devPolicyWith, usePolicyFile } from './support/policy-file.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const passThrough = (buffer: Buffer): Buffer => buffer;

/** The dev policy, with or without write on /shared/ for tenant-a. */
function policy(shared: boolean): string {
  return stringify(shared ? devPolicyWith('shared-writer', [{ prefix: '/shared/', access: 'write' }], 'tenant-a') : devPolicy());
}

const policyFile = usePolicyFile('etcdgate-keepalive-policy-', () => policy(true));
const stack = useGatewayStack({ policy: () => policyFile.path });
let tenantA: grpc.Client;
let direct: grpc.Client;

beforeAll(() => {
  tenantA = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
  direct = rawClient(stack.etcd.endpoints[0]!, stack.pki, 'root');
});

afterAll(() => {
  tenantA?.close();
  direct?.close();
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

      await policyFile.write(policy(false));
      expect(stack.gate.gateway.reloadPolicy()).toBe(true);
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
