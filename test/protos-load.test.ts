/**
 * Proves that etcdgate's own .proto files under protos/ load with the options the
 * gateway uses, expose every etcd service with the right method names and streaming
 * shapes, and encode/decode a message without losing bytes.
 */
import { loadSync } from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const protoRoot = fileURLToPath(new URL('../protos/', import.meta.url));
const files = [
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
];

type Shape = 'unary' | 'serverStream' | 'bidi';

/** Expected method names per service; unlisted shapes are unary. */
const expected: Record<string, { methods: string[]; streaming?: Record<string, Shape> }> = {
  'etcdserverpb.KV': { methods: ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'] },
  'etcdserverpb.Watch': { methods: ['Watch'], streaming: { Watch: 'bidi' } },
  'etcdserverpb.Lease': {
    methods: ['LeaseGrant', 'LeaseRevoke', 'LeaseKeepAlive', 'LeaseTimeToLive', 'LeaseLeases'],
    streaming: { LeaseKeepAlive: 'bidi' },
  },
  'etcdserverpb.Cluster': {
    methods: ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberList', 'MemberPromote'],
  },
  'etcdserverpb.Maintenance': {
    methods: ['Alarm', 'Status', 'Defragment', 'Hash', 'HashKV', 'Snapshot', 'MoveLeader', 'Downgrade'],
    streaming: { Snapshot: 'serverStream' },
  },
  'etcdserverpb.Auth': {
    methods: [
      'AuthEnable', 'AuthDisable', 'AuthStatus', 'Authenticate',
      'UserAdd', 'UserGet', 'UserList', 'UserDelete', 'UserChangePassword', 'UserGrantRole', 'UserRevokeRole',
      'RoleAdd', 'RoleGet', 'RoleList', 'RoleDelete', 'RoleGrantPermission', 'RoleRevokePermission',
    ],
  },
  'v3lockpb.Lock': { methods: ['Lock', 'Unlock'] },
  'v3electionpb.Election': {
    methods: ['Campaign', 'Proclaim', 'Leader', 'Observe', 'Resign'],
    streaming: { Observe: 'serverStream' },
  },
};

function shapeOf(def: MethodDefinition<object, object>): string {
  if (def.requestStream && def.responseStream) return 'bidi';
  if (def.responseStream) return 'serverStream';
  if (def.requestStream) return 'clientStream';
  return 'unary';
}

describe('protos/', () => {
  const pkg = loadSync(files, {
    includeDirs: [protoRoot],
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  });

  for (const [service, spec] of Object.entries(expected)) {
    it(`defines ${service} with the expected methods and streaming shapes`, () => {
      const svc = pkg[service] as Record<string, MethodDefinition<object, object>> | undefined;
      expect(svc, `service ${service}`).toBeDefined();
      if (svc === undefined) return;
      expect(Object.keys(svc).sort()).toEqual([...spec.methods].sort());
      for (const method of spec.methods) {
        const def = svc[method];
        expect(def?.path).toBe(`/${service}/${method}`);
        if (def === undefined) continue;
        expect(shapeOf(def), `${service}.${method}`).toBe(spec.streaming?.[method] ?? 'unary');
      }
    });
  }

  it('round-trips a PutRequest through protobufjs keeping key and value bytes', () => {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(protoRoot, target);
    root.loadSync('etcdserverpb/rpc.proto', { keepCase: true });
    const PutRequest = root.lookupType('etcdserverpb.PutRequest');

    // Non-UTF-8 bytes on purpose: keys and values are opaque byte strings in etcd.
    const key = Buffer.from([0x2f, 0x74, 0x00, 0xff, 0x80]);
    const value = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
    const wire = PutRequest.encode(PutRequest.fromObject({ key, value, lease: '7', prev_kv: true })).finish();
    const back = PutRequest.toObject(PutRequest.decode(wire), { longs: String, bytes: Buffer });

    expect(Buffer.compare(back['key'] as Buffer, key)).toBe(0);
    expect(Buffer.compare(back['value'] as Buffer, value)).toBe(0);
    expect(back['lease']).toBe('7');
    expect(back['prev_kv']).toBe(true);
    // Field 1 (key, length-delimited) is the first thing on the wire: tag 0x0a.
    expect(wire[0]).toBe(0x0a);
  });
});
