/**
 * Proves that every etcd request decoder turns real wire bytes (encoded by protobufjs
 * from protos/) into the accesses docs/authorization.md requires, with exact int64 lease
 * ids, etcd's empty-key rule for watches, binary keys kept intact, and no value or
 * password ever in an audit summary.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KeySummary } from '../src/audit/types.js';
import type { Access, AccessOrigin } from '../src/policy/types.js';
import { METHODS } from '../src/etcd/methods.js';
import { prefixEnd } from '../src/etcd/keys.js';
import { DecodeError } from '../src/etcd/types.js';
import type { DecodedRequest } from '../src/etcd/types.js';
import { watchRequestKind } from '../src/etcd/watch.js';
import { encode } from './support/etcd-messages.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A length-delimited field (`field`, wire type 2) holding `body`; bodies here stay far below 2^28 bytes. */
function lenField(field: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), body]);
}

function decode(path: string, message: Buffer): DecodedRequest {
  const spec = METHODS.get(path);
  if (spec === undefined) throw new Error(`no method ${path}`);
  return spec.decode(message);
}

/** Accesses as comparable strings: "read [a,b)" / "capability:x" / "authenticated". */
function show(accesses: readonly Access[]): string[] {
  return accesses.map((a) => {
    switch (a.kind) {
      case 'capability': return `capability:${a.capability}`;
      case 'authenticated': return 'authenticated';
      default: return `${a.kind} ${a.key.toString('latin1')}|${a.rangeEnd.toString('latin1')}`;
    }
  });
}

/** Everything a summary holds (keys as latin1, details, nested ops), as text, for "never contains" assertions. */
function summaryText(s: KeySummary): string {
  const parts: string[] = [s.op];
  if (s.key !== undefined) parts.push(s.key.toString('latin1'));
  if (s.rangeEnd !== undefined) parts.push(s.rangeEnd.toString('latin1'));
  if (s.details !== undefined) parts.push(JSON.stringify(s.details));
  for (const nested of [...(s.compare ?? []), ...(s.success ?? []), ...(s.failure ?? [])]) parts.push(summaryText(nested));
  return parts.join(' ');
}

describe('default (empty) messages', () => {
  // What each method needs when every field has its default value.
  const expected: Record<string, string[]> = {
    '/etcdserverpb.KV/Range': ['read |'],
    '/etcdserverpb.KV/Put': ['write |'],
    '/etcdserverpb.KV/DeleteRange': ['write |'],
    '/etcdserverpb.KV/Txn': [],
    '/etcdserverpb.KV/Compact': ['capability:compact'],
    '/etcdserverpb.Watch/Watch': [],
    '/etcdserverpb.Lease/LeaseGrant': ['capability:lease'],
    '/etcdserverpb.Lease/LeaseRevoke': [],
    '/etcdserverpb.Lease/LeaseKeepAlive': [],
    '/etcdserverpb.Lease/LeaseTimeToLive': ['capability:lease'],
    '/etcdserverpb.Lease/LeaseLeases': ['capability:admin'],
    '/etcdserverpb.Cluster/MemberAdd': ['capability:members'],
    '/etcdserverpb.Cluster/MemberRemove': ['capability:members'],
    '/etcdserverpb.Cluster/MemberUpdate': ['capability:members'],
    '/etcdserverpb.Cluster/MemberList': ['authenticated'],
    '/etcdserverpb.Cluster/MemberPromote': ['capability:members'],
    '/etcdserverpb.Maintenance/Alarm': ['capability:status'],
    '/etcdserverpb.Maintenance/Status': ['capability:status'],
    '/etcdserverpb.Maintenance/Defragment': ['capability:defragment'],
    '/etcdserverpb.Maintenance/Hash': ['capability:hash'],
    '/etcdserverpb.Maintenance/HashKV': ['capability:hash'],
    '/etcdserverpb.Maintenance/Snapshot': ['capability:snapshot'],
    '/etcdserverpb.Maintenance/MoveLeader': ['capability:move-leader'],
    '/etcdserverpb.Maintenance/Downgrade': ['capability:downgrade'],
    '/v3lockpb.Lock/Lock': ['read /|0', 'write /|0'],
    '/v3lockpb.Lock/Unlock': ['write |'],
    '/v3electionpb.Election/Campaign': ['read /|0', 'write /|0'],
    '/v3electionpb.Election/Proclaim': ['read |', 'write |'],
    '/v3electionpb.Election/Leader': ['read /|0'],
    '/v3electionpb.Election/Observe': ['read /|0'],
    '/v3electionpb.Election/Resign': ['read |', 'write |'],
  };
  for (const spec of METHODS.values()) {
    if (spec.service === 'etcdserverpb.Auth') expected[spec.path] = ['capability:auth'];
  }

  it('lists an expectation for every method in the table', () => {
    expect(Object.keys(expected).sort()).toEqual([...METHODS.keys()].sort());
  });

  for (const [path, accesses] of Object.entries(expected)) {
    it(`${path} decodes an empty message into ${accesses.join(', ') || 'no accesses'}`, () => {
      const d = decode(path, Buffer.alloc(0));
      expect(show(d.accesses)).toEqual(accesses);
      expect(typeof d.summary.op).toBe('string');
    });
  }

  it('only LeaseRevoke and LeaseKeepAlive need a lease check for an empty message', () => {
    const withChecks = [...METHODS.values()]
      .filter((s) => s.decode(Buffer.alloc(0)).leaseChecks.length > 0)
      .map((s) => s.path)
      .sort();
    expect(withChecks).toEqual(['/etcdserverpb.Lease/LeaseKeepAlive', '/etcdserverpb.Lease/LeaseRevoke']);
  });
});

describe('KV', () => {
  it('Range reads its range and records the paging details', () => {
    const msg = encode('etcdserverpb.RangeRequest', {
      key: b('/registry/pods/'),
      range_end: b('/registry/pods0'),
      limit: 500,
      revision: '123456789012',
      serializable: true,
      keys_only: true,
      count_only: true,
      sort_order: 'DESCEND',
      sort_target: 'MOD',
    });
    const d = decode('/etcdserverpb.KV/Range', msg);
    expect(show(d.accesses)).toEqual(['read /registry/pods/|/registry/pods0']);
    expect(d.leaseChecks).toEqual([]);
    expect(d.summary.op).toBe('range');
    expect(d.summary.details).toEqual({
      limit: '500',
      revision: '123456789012',
      serializable: true,
      keys_only: true,
      count_only: true,
      sort_order: 'DESCEND',
      sort_target: 'MOD',
    });
  });

  it('Range keeps binary keys byte for byte', () => {
    const key = Buffer.from([0x00, 0xff, 0x80, 0xc3, 0x28]);
    const end = Buffer.from([0x00, 0xff, 0x81]);
    const d = decode('/etcdserverpb.KV/Range', encode('etcdserverpb.RangeRequest', { key, range_end: end }));
    const a = d.accesses[0];
    expect(a?.kind).toBe('read');
    if (a?.kind !== 'read') return;
    expect(a.key.equals(key)).toBe(true);
    expect(a.rangeEnd.equals(end)).toBe(true);
    expect(d.summary.key?.equals(key)).toBe(true);
  });

  it('Put needs write, read with prev_kv, and a write check on its lease (int64 above 2^53 exact)', () => {
    const lease = '9007199254740993'; // 2^53 + 1: not representable as a JS number
    const value = b('s3cr3t-value-bytes');
    const msg = encode('etcdserverpb.PutRequest', { key: b('/a'), value, lease, prev_kv: true, ignore_value: true });
    const d = decode('/etcdserverpb.KV/Put', msg);
    expect(show(d.accesses)).toEqual(['write /a|', 'read /a|']);
    expect(d.leaseChecks).toEqual([{ leaseId: lease, kind: 'write' }]);
    // In hex as etcdctl prints lease IDs (%016x), and in decimal as the API carries them.
    expect(d.summary.details).toEqual({ lease: '0020000000000001', lease_decimal: lease, prev_kv: true, ignore_value: true });
    expect(summaryText(d.summary)).not.toContain('s3cr3t-value-bytes');
  });

  it('Put without prev_kv or lease needs write only', () => {
    const d = decode('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: b('/a'), value: b('v') }));
    expect(show(d.accesses)).toEqual(['write /a|']);
    expect(d.leaseChecks).toEqual([]);
  });

  it('Put reports a negative int64 lease exactly', () => {
    const lease = '-9223372036854775808';
    const d = decode('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: b('/a'), lease }));
    expect(d.leaseChecks).toEqual([{ leaseId: lease, kind: 'write' }]);
    // Go's %016x of a negative int64: the sign, then the magnitude's digits.
    expect(d.summary.details).toMatchObject({ lease: '-8000000000000000', lease_decimal: lease });
    const small = decode('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: b('/a'), lease: '-5' }));
    expect(small.summary.details).toMatchObject({ lease: '-000000000000005', lease_decimal: '-5' });
  });

  it('DeleteRange needs write on the range, and read too with prev_kv', () => {
    const plain = decode('/etcdserverpb.KV/DeleteRange', encode('etcdserverpb.DeleteRangeRequest', { key: b('/x/'), range_end: b('/x0') }));
    expect(show(plain.accesses)).toEqual(['write /x/|/x0']);
    const prev = decode(
      '/etcdserverpb.KV/DeleteRange',
      encode('etcdserverpb.DeleteRangeRequest', { key: b('/x/'), range_end: b('/x0'), prev_kv: true }),
    );
    expect(show(prev.accesses)).toEqual(['write /x/|/x0', 'read /x/|/x0']);
    expect(prev.summary).toMatchObject({ op: 'delete_range', details: { prev_kv: true } });
  });

  it('Txn checks every compare and both branches, recursing into nested txns', () => {
    const nestedInSuccess = {
      compare: [{ key: b('/n1/cmp'), target: 'VALUE', value: b('compared-value'), result: 'NOT_EQUAL' }],
      success: [{ request_put: { key: b('/n1/put'), value: b('nested-put-value'), lease: '42' } }],
      failure: [{ request_range: { key: b('/n1/get') } }],
    };
    const nestedInFailure = {
      success: [{ request_delete_range: { key: b('/n2/'), range_end: b('/n20'), prev_kv: true } }],
      failure: [{ request_txn: { failure: [{ request_put: { key: b('/deep'), prev_kv: true } }] } }],
    };
    const msg = encode('etcdserverpb.TxnRequest', {
      compare: [
        { key: b('compact_rev_key'), target: 'VERSION', result: 'EQUAL', version: '3' },
        { key: b('/r/'), range_end: b('/r0'), target: 'MOD', result: 'LESS', mod_revision: '77' },
      ],
      success: [
        { request_put: { key: b('/s/put'), value: b('top-put-value'), lease: '42' } },
        { request_txn: nestedInSuccess },
      ],
      failure: [
        { request_range: { key: b('/f/get'), range_end: b('\x00') } },
        { request_txn: nestedInFailure },
      ],
    });
    const d = decode('/etcdserverpb.KV/Txn', msg);
    expect(show(d.accesses).sort()).toEqual(
      [
        'read compact_rev_key|',
        'read /r/|/r0',
        'write /s/put|',
        'read /n1/cmp|',
        'write /n1/put|',
        'read /n1/get|',
        'read /f/get|\x00',
        'write /n2/|/n20',
        'read /n2/|/n20',
        'write /deep|',
        'read /deep|',
      ].sort(),
    );
    // The same lease in two puts is checked once.
    expect(d.leaseChecks).toEqual([{ leaseId: '42', kind: 'write' }]);

    const s = d.summary;
    expect(s.op).toBe('txn');
    expect(s.compare?.map((c) => c.details)).toEqual([
      { target: 'VERSION', result: 'EQUAL', version: '3' },
      { target: 'MOD', result: 'LESS', mod_revision: '77' },
    ]);
    expect(s.success?.map((o) => o.op)).toEqual(['put', 'txn']);
    expect(s.failure?.map((o) => o.op)).toEqual(['range', 'txn']);
    expect(s.success?.[1]?.failure?.[0]?.op).toBe('range');
    expect(s.failure?.[1]?.failure?.[0]?.failure?.[0]).toMatchObject({ op: 'put', details: { prev_kv: true } });
    const text = summaryText(s);
    for (const v of ['compared-value', 'nested-put-value', 'top-put-value']) expect(text).not.toContain(v);

    // Every access names its operation's place in the Txn, nested ones through their parent.
    const where = (origin: AccessOrigin | undefined): string => {
      if (origin === undefined) return '-';
      const step = `${origin.branch}[${String(origin.index)}]:${origin.op}`;
      return origin.parent === undefined ? step : `${where(origin.parent)}/${step}`;
    };
    const positions = d.accesses.map((a) => (a.kind === 'read' || a.kind === 'write' ? `${a.kind} ${a.key.toString('latin1')} @ ${where(a.origin)}` : a.kind));
    expect(positions).toEqual([
      'read compact_rev_key @ compare[0]:compare',
      'read /r/ @ compare[1]:compare',
      'write /s/put @ success[0]:put',
      'read /n1/cmp @ success[1]:txn/compare[0]:compare',
      'write /n1/put @ success[1]:txn/success[0]:put',
      'read /n1/get @ success[1]:txn/failure[0]:range',
      'read /f/get @ failure[0]:range',
      'write /n2/ @ failure[1]:txn/success[0]:delete_range',
      'read /n2/ @ failure[1]:txn/success[0]:delete_range',
      'write /deep @ failure[1]:txn/failure[0]:txn/failure[0]:put',
      'read /deep @ failure[1]:txn/failure[0]:txn/failure[0]:put',
    ]);
  });

  it('a Put, Range or DeleteRange outside a Txn names no position', () => {
    const put = decode('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: b('/a'), prev_kv: true }));
    expect(put.accesses.every((a) => !('origin' in a))).toBe(true);
  });

  it('Txn refuses a request op with no operation and nesting deeper than 64', () => {
    expect(() => decode('/etcdserverpb.KV/Txn', encode('etcdserverpb.TxnRequest', { success: [{}] }))).toThrow(DecodeError);
    // Built by hand: protobufjs itself refuses to encode this deep.
    const nest = (inner: Buffer, levels: number): Buffer => {
      let txn = inner;
      for (let i = 0; i < levels; i++) txn = lenField(3, lenField(4, txn)); // failure: [{ request_txn: txn }]
      return txn;
    };
    const leaf = encode('etcdserverpb.TxnRequest', { success: [{ request_range: { key: b('/k') } }] });
    expect(show(decode('/etcdserverpb.KV/Txn', nest(leaf, 64)).accesses)).toEqual(['read /k|']);
    expect(() => decode('/etcdserverpb.KV/Txn', nest(leaf, 65))).toThrow(DecodeError);
  });

  it('Compact needs the compact capability and records revision and physical', () => {
    const d = decode('/etcdserverpb.KV/Compact', encode('etcdserverpb.CompactionRequest', { revision: '99', physical: true }));
    expect(show(d.accesses)).toEqual(['capability:compact']);
    expect(d.summary).toEqual({ op: 'compact', details: { revision: '99', physical: true } });
  });
});

describe('Watch', () => {
  it('create reads its range and records the watch options', () => {
    const msg = encode('etcdserverpb.WatchRequest', {
      create_request: {
        key: b('/registry/'),
        range_end: b('/registry0'),
        start_revision: '1000',
        progress_notify: true,
        prev_kv: true,
        fragment: true,
        watch_id: '5',
        filters: ['NODELETE', 'NOPUT'],
      },
    });
    expect(watchRequestKind(msg)).toBe('create');
    const d = decode('/etcdserverpb.Watch/Watch', msg);
    expect(show(d.accesses)).toEqual(['read /registry/|/registry0']);
    expect(d.summary).toMatchObject({
      op: 'watch',
      details: {
        start_revision: '1000',
        progress_notify: true,
        prev_kv: true,
        fragment: true,
        watch_id: '5',
        filters: 'NODELETE,NOPUT',
      },
    });
  });

  it('create with an empty key watches from "\\x00", as etcd does', () => {
    const d = decode('/etcdserverpb.Watch/Watch', encode('etcdserverpb.WatchRequest', { create_request: { range_end: b('\x00') } }));
    expect(show(d.accesses)).toEqual(['read \x00|\x00']);
  });

  it('cancel and progress requests need nothing', () => {
    const cancel = encode('etcdserverpb.WatchRequest', { cancel_request: { watch_id: '0' } });
    expect(watchRequestKind(cancel)).toBe('cancel');
    const c = decode('/etcdserverpb.Watch/Watch', cancel);
    expect(c.accesses).toEqual([]);
    expect(c.summary).toEqual({ op: 'watch_cancel', details: { watch_id: '0' } });

    const progress = encode('etcdserverpb.WatchRequest', { progress_request: {} });
    expect(watchRequestKind(progress)).toBe('progress');
    const p = decode('/etcdserverpb.Watch/Watch', progress);
    expect(p.accesses).toEqual([]);
    expect(p.summary.op).toBe('watch_progress');
  });

  it('refuses a non-empty request of no known kind, and two kinds in one request', () => {
    const unknownKind = Buffer.from([0x22, 0x00]); // field 4, empty: not a kind etcd 3.4 knows
    expect(watchRequestKind(unknownKind)).toBe('unknown');
    expect(() => decode('/etcdserverpb.Watch/Watch', unknownKind)).toThrow(DecodeError);
    const two = Buffer.concat([
      encode('etcdserverpb.WatchRequest', { progress_request: {} }),
      encode('etcdserverpb.WatchRequest', { create_request: { key: b('/secret') } }),
    ]);
    expect(() => decode('/etcdserverpb.Watch/Watch', two)).toThrow(DecodeError);
    expect(watchRequestKind(two)).toBe('unknown');
  });
});

describe('Lease', () => {
  const big = '18014398509481985'; // 2^54 + 1

  it('LeaseGrant needs the lease capability', () => {
    const d = decode('/etcdserverpb.Lease/LeaseGrant', encode('etcdserverpb.LeaseGrantRequest', { TTL: '60', ID: big }));
    expect(show(d.accesses)).toEqual(['capability:lease']);
    expect(d.summary).toEqual({ op: 'lease_grant', details: { ttl: '60', id: '0040000000000001', id_decimal: big } });
  });

  it('LeaseRevoke and LeaseKeepAlive check write on the lease keys', () => {
    const revoke = decode('/etcdserverpb.Lease/LeaseRevoke', encode('etcdserverpb.LeaseRevokeRequest', { ID: big }));
    expect(revoke.leaseChecks).toEqual([{ leaseId: big, kind: 'write' }]);
    expect(revoke.summary.details).toEqual({ id: '0040000000000001', id_decimal: big });
    const keepAlive = decode('/etcdserverpb.Lease/LeaseKeepAlive', encode('etcdserverpb.LeaseKeepAliveRequest', { ID: big }));
    expect(keepAlive.leaseChecks).toEqual([{ leaseId: big, kind: 'write' }]);
    expect(keepAlive.summary.details).toEqual({ id: '0040000000000001', id_decimal: big });
    expect(keepAlive.accesses).toEqual([]);
  });

  it('LeaseTimeToLive checks read on the lease keys only with keys=true', () => {
    const withKeys = decode('/etcdserverpb.Lease/LeaseTimeToLive', encode('etcdserverpb.LeaseTimeToLiveRequest', { ID: big, keys: true }));
    expect(show(withKeys.accesses)).toEqual(['capability:lease']);
    expect(withKeys.leaseChecks).toEqual([{ leaseId: big, kind: 'read' }]);
    const without = decode('/etcdserverpb.Lease/LeaseTimeToLive', encode('etcdserverpb.LeaseTimeToLiveRequest', { ID: big }));
    expect(without.leaseChecks).toEqual([]);
  });
});

describe('Maintenance and Cluster', () => {
  it('Alarm GET needs status; ACTIVATE, DEACTIVATE and unknown actions need alarm', () => {
    const get = decode('/etcdserverpb.Maintenance/Alarm', encode('etcdserverpb.AlarmRequest', { action: 'GET' }));
    expect(show(get.accesses)).toEqual(['capability:status']);
    for (const action of ['ACTIVATE', 'DEACTIVATE']) {
      const d = decode('/etcdserverpb.Maintenance/Alarm', encode('etcdserverpb.AlarmRequest', { action, alarm: 'NOSPACE' }));
      expect(show(d.accesses)).toEqual(['capability:alarm']);
      expect(d.summary.details).toMatchObject({ action, alarm: 'NOSPACE' });
    }
    const unknown = decode('/etcdserverpb.Maintenance/Alarm', Buffer.from([0x08, 0x07]));
    expect(show(unknown.accesses)).toEqual(['capability:alarm']);
  });

  it('MemberRemove records the uint64 member ID exactly', () => {
    const id = '18446744073709551615';
    const d = decode('/etcdserverpb.Cluster/MemberRemove', encode('etcdserverpb.MemberRemoveRequest', { ID: id }));
    expect(d.summary.details).toEqual({ ID: id });
  });
});

describe('Auth', () => {
  const password = 'hunter2-Pa55w0rd!';

  it('UserAdd, UserChangePassword and Authenticate never put the password in the summary', () => {
    const cases: Array<[string, Buffer]> = [
      ['/etcdserverpb.Auth/UserAdd', encode('etcdserverpb.AuthUserAddRequest', { name: 'alice', password, options: { no_password: false } })],
      ['/etcdserverpb.Auth/UserChangePassword', encode('etcdserverpb.AuthUserChangePasswordRequest', { name: 'alice', password })],
      ['/etcdserverpb.Auth/Authenticate', encode('etcdserverpb.AuthenticateRequest', { name: 'alice', password })],
    ];
    for (const [path, msg] of cases) {
      expect(msg.includes(Buffer.from(password))).toBe(true); // the bytes are really there
      const d = decode(path, msg);
      expect(show(d.accesses)).toEqual(['capability:auth']);
      expect(d.summary.details).toMatchObject({ user: 'alice' });
      expect(summaryText(d.summary)).not.toContain(password);
    }
  });

  it('RoleGrantPermission records role, permission type and key range', () => {
    const msg = encode('etcdserverpb.AuthRoleGrantPermissionRequest', {
      name: 'reader',
      perm: { permType: 'READWRITE', key: b('/app/'), range_end: b('/app0') },
    });
    const d = decode('/etcdserverpb.Auth/RoleGrantPermission', msg);
    expect(d.summary.op).toBe('role_grant_permission');
    expect(d.summary.key?.toString()).toBe('/app/');
    expect(d.summary.rangeEnd?.toString()).toBe('/app0');
    expect(d.summary.details).toEqual({ role: 'reader', perm_type: 'READWRITE' });
  });
});

describe('lock and election', () => {
  const lease = '7587869999999999999';

  it('Lock reads and writes the prefix name/ and checks its lease', () => {
    const d = decode('/v3lockpb.Lock/Lock', encode('v3lockpb.LockRequest', { name: b('jobs'), lease }));
    expect(show(d.accesses)).toEqual(['read jobs/|jobs0', 'write jobs/|jobs0']);
    expect(d.leaseChecks).toEqual([{ leaseId: lease, kind: 'write' }]);
  });

  it('Unlock writes the key it names', () => {
    const d = decode('/v3lockpb.Lock/Unlock', encode('v3lockpb.UnlockRequest', { key: b('jobs/694d7a3b') }));
    expect(show(d.accesses)).toEqual(['write jobs/694d7a3b|']);
  });

  it('Campaign reads and writes name/ and never records the value', () => {
    const d = decode('/v3electionpb.Election/Campaign', encode('v3electionpb.CampaignRequest', { name: b('leader'), lease, value: b('candidate-value') }));
    expect(show(d.accesses)).toEqual(['read leader/|leader0', 'write leader/|leader0']);
    expect(d.leaseChecks).toEqual([{ leaseId: lease, kind: 'write' }]);
    expect(summaryText(d.summary)).not.toContain('candidate-value');
  });

  it('Proclaim and Resign act on the leader key; Leader and Observe read name/', () => {
    const leader = { name: b('leader'), key: b('leader/abc'), rev: '12', lease };
    const p = decode('/v3electionpb.Election/Proclaim', encode('v3electionpb.ProclaimRequest', { leader, value: b('proclaimed-value') }));
    expect(show(p.accesses)).toEqual(['read leader/abc|', 'write leader/abc|']);
    expect(p.leaseChecks).toEqual([{ leaseId: lease, kind: 'write' }]);
    expect(summaryText(p.summary)).not.toContain('proclaimed-value');
    const r = decode('/v3electionpb.Election/Resign', encode('v3electionpb.ResignRequest', { leader }));
    expect(show(r.accesses)).toEqual(['read leader/abc|', 'write leader/abc|']);
    // etcd opens a session on the lease a Resign names: its keys are checked like Proclaim's.
    expect(r.leaseChecks).toEqual([{ leaseId: lease, kind: 'write' }]);
    for (const path of ['/v3electionpb.Election/Leader', '/v3electionpb.Election/Observe']) {
      const d = decode(path, encode('v3electionpb.LeaderRequest', { name: b('leader') }));
      expect(show(d.accesses)).toEqual(['read leader/|leader0']);
    }
  });

  it('a LeaderKey sent twice merges field by field, as protobuf requires', () => {
    const first = encode('v3electionpb.ResignRequest', { leader: { key: b('leader/one'), rev: '3' } });
    const second = encode('v3electionpb.ResignRequest', { leader: { name: b('leader') } });
    const d = decode('/v3electionpb.Election/Resign', Buffer.concat([first, second]));
    expect(show(d.accesses)).toEqual(['read leader/one|', 'write leader/one|']);
    expect(d.summary.details).toEqual({ name: 'leader', rev: '3' });
  });
});

describe('prefixEnd', () => {
  it('increments the last byte below 0xff, dropping trailing 0xff bytes', () => {
    expect(prefixEnd(b('abc'))).toEqual(b('abd'));
    expect(prefixEnd(Buffer.from([0x61, 0xff, 0xff]))).toEqual(b('b'));
    expect(prefixEnd(Buffer.from([0x00]))).toEqual(Buffer.from([0x01]));
  });

  it('is "\\x00" when no byte can be incremented', () => {
    expect(prefixEnd(Buffer.from([0xff, 0xff]))).toEqual(Buffer.from([0]));
    expect(prefixEnd(Buffer.alloc(0))).toEqual(Buffer.from([0]));
  });

  it('returns a fresh buffer, leaving the prefix untouched', () => {
    const p = b('/k');
    const end = prefixEnd(p);
    end[0] = 0x41;
    expect(p.toString()).toBe('/k');
  });
});

describe('agreement with protobufjs on random messages', () => {
  const bytes = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a));
  const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

  it('Range: same key, range end, limit and revision', () => {
    fc.assert(
      fc.property(bytes, bytes, int64, int64, (key, rangeEnd, limit, revision) => {
        const msg = encode('etcdserverpb.RangeRequest', { key, range_end: rangeEnd, limit: limit.toString(), revision: revision.toString() });
        const d = decode('/etcdserverpb.KV/Range', msg);
        const a = d.accesses[0];
        expect(a?.kind).toBe('read');
        if (a?.kind !== 'read') return;
        expect(a.key.equals(key)).toBe(true);
        expect(a.rangeEnd.equals(rangeEnd)).toBe(true);
        expect(d.summary.details?.['limit'] ?? '0').toBe(limit.toString());
        expect(d.summary.details?.['revision'] ?? '0').toBe(revision.toString());
      }),
      { numRuns: 500 },
    );
  });

  it('Put: lease checks carry the exact int64 lease id', () => {
    fc.assert(
      fc.property(bytes, int64, (key, lease) => {
        const d = decode('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key, lease: lease.toString() }));
        expect(d.leaseChecks).toEqual(lease === 0n ? [] : [{ leaseId: lease.toString(), kind: 'write' }]);
      }),
      { numRuns: 500 },
    );
  });
});
