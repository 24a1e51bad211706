/**
 * Administrative RPCs against a real etcd 3.4 (no etcd auth: etcd would run every one of
 * them): each needs its capability, and etcdgate refuses it with PERMISSION_DENIED to a
 * caller without it, while the roles of the dev policy that hold it get through
 * (backup: Snapshot and Status; kube-apiserver: Compact and Status; admin: the rest).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import { b, DENIED_TEXT, expectDenied, expectNotDenied, PERMISSION_DENIED_CODE } from './support/enforcement.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { useGatewayStack } from './support/stack.js';
import { freePort } from './support/ports.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const passThrough = (buffer: Buffer): Buffer => buffer;

const stack = useGatewayStack({ policy: DEV_POLICY_FILE });
let direct: grpc.Client;
const clients = new Map<string, grpc.Client>();

/** The client presenting client-NAME's certificate to etcdgate. */
function as(name: string): grpc.Client {
  const client = clients.get(name);
  if (client === undefined) throw new Error(`no client ${name}`);
  return client;
}

beforeAll(() => {
  direct = rawClient(stack.etcd.endpoints[0]!, stack.pki, 'root');
  for (const name of ['tenant-a', 'backup', 'kube-apiserver', 'auditor', 'admin', 'root', 'nobody']) {
    clients.set(name, rawClient(stack.gate.endpoint, stack.pki, name));
  }
});

afterAll(() => {
  direct?.close();
  for (const client of clients.values()) client.close();
});

const status = (client: grpc.Client): Promise<Record<string, unknown>> => callEtcd(client, 'Maintenance', 'Status', ['StatusRequest', {}], 'StatusResponse');

/** The member ID of the single etcd member (read straight from etcd). */
async function memberId(): Promise<string> {
  const response = await status(direct);
  return (response['header'] as { member_id: string }).member_id;
}

/** The current revision, after a fresh write straight to etcd. */
async function freshRevision(): Promise<string> {
  const put = await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/registry/admin-test'), value: b('x') }], 'PutResponse');
  return (put['header'] as { revision: string }).revision;
}

interface SnapshotOutcome {
  readonly chunks: number;
  readonly bytes: number;
  readonly status: grpc.StatusObject;
}

/** Streams a whole Maintenance.Snapshot and reports what arrived and how it ended. */
function snapshot(client: grpc.Client): Promise<SnapshotOutcome> {
  const stream = client.makeServerStreamRequest('/etcdserverpb.Maintenance/Snapshot', passThrough, passThrough, encode('etcdserverpb.SnapshotRequest', {}), new grpc.Metadata());
  let chunks = 0;
  let bytes = 0;
  return new Promise((resolve) => {
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => {
      chunks += 1;
      const blob = decode('etcdserverpb.SnapshotResponse', chunk)['blob'];
      bytes += Buffer.isBuffer(blob) ? blob.length : 0;
    });
    stream.on('status', (s: grpc.StatusObject) => resolve({ chunks, bytes, status: s }));
  });
}

describe('admin capabilities', () => {
  it('Status: refused without `status`, answered for backup, kube-apiserver and auditor', async () => {
    await expectDenied(status(as('tenant-a')));
    await expectDenied(status(as('nobody')));
    for (const name of ['backup', 'kube-apiserver', 'auditor', 'admin']) {
      const response = await status(as(name));
      expect(response['version'], name).toMatch(/^3\.4\./u);
    }
  });

  it('Compact: refused without `compact` (tenant, backup), done for kube-apiserver', async () => {
    const revision = await freshRevision();
    for (const name of ['tenant-a', 'backup', 'auditor']) {
      await expectDenied(callEtcd(as(name), 'KV', 'Compact', ['CompactionRequest', { revision }], 'CompactionResponse'));
    }
    // Nothing was compacted: an old revision is still readable straight from etcd.
    const old = await callEtcd(direct, 'KV', 'Range', ['RangeRequest', { key: b('/registry/admin-test'), revision }], 'RangeResponse');
    expect(old['count']).toBe('1');

    await callEtcd(as('kube-apiserver'), 'KV', 'Compact', ['CompactionRequest', { revision, physical: true }], 'CompactionResponse');
    const before = callEtcd(direct, 'KV', 'Range', ['RangeRequest', { key: b('/registry/admin-test'), revision: String(Number(revision) - 1) }], 'RangeResponse');
    await expect(before).rejects.toMatchObject({ details: expect.stringMatching(/compacted/u) });
  });

  it('Snapshot: refused without `snapshot`, streamed whole for backup', async () => {
    for (const name of ['tenant-a', 'kube-apiserver', 'auditor']) {
      const refused = await snapshot(as(name));
      expect(refused.chunks, name).toBe(0);
      expect({ code: refused.status.code, details: refused.status.details }, name).toEqual({ code: PERMISSION_DENIED_CODE, details: DENIED_TEXT });
    }
    const saved = await snapshot(as('backup'));
    expect(saved.status.code).toBe(grpc.status.OK);
    expect(saved.chunks).toBeGreaterThan(0);
    expect(saved.bytes).toBeGreaterThan(4096);
  });

  it('Defragment, Hash and HashKV: refused without the capability, run for admin', async () => {
    for (const name of ['tenant-a', 'backup', 'kube-apiserver']) {
      await expectDenied(callEtcd(as(name), 'Maintenance', 'Defragment', ['DefragmentRequest', {}], 'DefragmentResponse'));
      await expectDenied(callEtcd(as(name), 'Maintenance', 'Hash', ['HashRequest', {}], 'HashResponse'));
      await expectDenied(callEtcd(as(name), 'Maintenance', 'HashKV', ['HashKVRequest', {}], 'HashKVResponse'));
    }
    await callEtcd(as('admin'), 'Maintenance', 'Defragment', ['DefragmentRequest', {}], 'DefragmentResponse');
    const hash = await callEtcd(as('root'), 'Maintenance', 'HashKV', ['HashKVRequest', {}], 'HashKVResponse');
    expect(hash['hash']).toBeDefined();
  });

  it('Alarm: GET needs `status`; ACTIVATE needs `alarm` (admin)', async () => {
    const member = await memberId();
    const activate = { action: 'ACTIVATE', memberID: member, alarm: 'NONE' };
    for (const name of ['tenant-a', 'backup', 'kube-apiserver', 'auditor']) {
      await expectDenied(callEtcd(as(name), 'Maintenance', 'Alarm', ['AlarmRequest', activate], 'AlarmResponse'));
    }
    await expectDenied(callEtcd(as('tenant-a'), 'Maintenance', 'Alarm', ['AlarmRequest', { action: 'GET' }], 'AlarmResponse'));
    const listed = await callEtcd(as('backup'), 'Maintenance', 'Alarm', ['AlarmRequest', { action: 'GET' }], 'AlarmResponse');
    expect(listed['alarms']).toBeUndefined();

    // An alarm of type NONE changes nothing in etcd's behaviour; it is cleared right after.
    await callEtcd(as('admin'), 'Maintenance', 'Alarm', ['AlarmRequest', activate], 'AlarmResponse');
    await callEtcd(as('admin'), 'Maintenance', 'Alarm', ['AlarmRequest', { ...activate, action: 'DEACTIVATE' }], 'AlarmResponse');
  });

  it('MoveLeader: refused without `move-leader`, not refused by etcdgate for admin', async () => {
    const target = await memberId();
    for (const name of ['tenant-a', 'backup', 'kube-apiserver']) {
      await expectDenied(callEtcd(as(name), 'Maintenance', 'MoveLeader', ['MoveLeaderRequest', { targetID: target }], 'MoveLeaderResponse'));
    }
    // A one-member cluster may refuse to move its leader to itself; that is etcd's answer, not etcdgate's.
    await expectNotDenied(callEtcd(as('admin'), 'Maintenance', 'MoveLeader', ['MoveLeaderRequest', { targetID: target }], 'MoveLeaderResponse'));
  });

  it('MemberAdd/MemberRemove: refused without `members`; admin adds a learner and removes it', async () => {
    const peer = `https://127.0.0.1:${await freePort()}`;
    for (const name of ['tenant-a', 'backup', 'kube-apiserver']) {
      await expectDenied(callEtcd(as(name), 'Cluster', 'MemberAdd', ['MemberAddRequest', { peerURLs: [peer], isLearner: true }], 'MemberAddResponse'));
    }
    const before = await callEtcd(direct, 'Cluster', 'MemberList', ['MemberListRequest', {}], 'MemberListResponse');
    expect(before['members']).toHaveLength(1);

    const added = await callEtcd(as('admin'), 'Cluster', 'MemberAdd', ['MemberAddRequest', { peerURLs: [peer], isLearner: true }], 'MemberAddResponse');
    const learner = (added['member'] as { ID: string }).ID;
    await expectDenied(callEtcd(as('tenant-a'), 'Cluster', 'MemberRemove', ['MemberRemoveRequest', { ID: learner }], 'MemberRemoveResponse'));
    const during = await callEtcd(direct, 'Cluster', 'MemberList', ['MemberListRequest', {}], 'MemberListResponse');
    expect(during['members']).toHaveLength(2);
    await callEtcd(as('admin'), 'Cluster', 'MemberRemove', ['MemberRemoveRequest', { ID: learner }], 'MemberRemoveResponse');
    const after = await callEtcd(direct, 'Cluster', 'MemberList', ['MemberListRequest', {}], 'MemberListResponse');
    expect(after['members']).toHaveLength(1);
  });

  it('Auth: refused without `auth`; admin lists roles and adds and deletes a user', async () => {
    for (const name of ['tenant-a', 'backup', 'kube-apiserver', 'auditor']) {
      await expectDenied(callEtcd(as(name), 'Auth', 'RoleList', ['AuthRoleListRequest', {}], 'AuthRoleListResponse'));
      await expectDenied(callEtcd(as(name), 'Auth', 'UserAdd', ['AuthUserAddRequest', { name: 'intruder', password: 'pw' }], 'AuthUserAddResponse'));
      await expectDenied(callEtcd(as(name), 'Auth', 'AuthEnable', ['AuthEnableRequest', {}], 'AuthEnableResponse'));
    }
    const users = await callEtcd(direct, 'Auth', 'UserList', ['AuthUserListRequest', {}], 'AuthUserListResponse');
    expect(users['users']).toBeUndefined();

    await callEtcd(as('admin'), 'Auth', 'RoleList', ['AuthRoleListRequest', {}], 'AuthRoleListResponse');
    await callEtcd(as('admin'), 'Auth', 'UserAdd', ['AuthUserAddRequest', { name: 'operator', options: { no_password: true } }], 'AuthUserAddResponse');
    const listed = await callEtcd(direct, 'Auth', 'UserList', ['AuthUserListRequest', {}], 'AuthUserListResponse');
    expect(listed['users']).toEqual(['operator']);
    await callEtcd(as('admin'), 'Auth', 'UserDelete', ['AuthUserDeleteRequest', { name: 'operator' }], 'AuthUserDeleteResponse');
    // AuthStatus exists from etcd 3.5 on: 3.4 answers UNIMPLEMENTED, which is etcd's answer, not a refusal.
    await expectNotDenied(callEtcd(as('admin'), 'Auth', 'AuthStatus', ['AuthStatusRequest', {}], 'AuthStatusResponse'));
    await expectDenied(callEtcd(as('tenant-a'), 'Auth', 'AuthStatus', ['AuthStatusRequest', {}], 'AuthStatusResponse'));
  });
});
