/**
 * src/etcd knows etcd's v3 API: for every RPC, how it streams, what it is called in the
 * audit trail, and what a request message touches. The proxy registers one handler per
 * entry of METHODS, decodes each request message with the entry's decoder, authorizes
 * the resulting accesses and forwards the original bytes; a path absent from METHODS is
 * answered UNIMPLEMENTED (fail closed for RPCs this table does not know).
 *
 * One file per service holds the decoders (kv.ts, watch.ts, lease.ts, cluster.ts,
 * maintenance.ts, auth.ts, lock.ts, election.ts); this file wires them together.
 */
import * as auth from './auth.js';
import * as cluster from './cluster.js';
import * as election from './election.js';
import * as kv from './kv.js';
import * as lease from './lease.js';
import * as lock from './lock.js';
import * as maintenance from './maintenance.js';
import type { CallShape, MethodSpec, RequestDecoder, ValueCarrier } from './types.js';
import * as watch from './watch.js';

type EventType = MethodSpec['eventType'];

/** One row of the table before the derived fields (path, action, category) are filled in. */
interface Row {
  readonly method: string;
  readonly shape: CallShape;
  readonly eventType: EventType;
  readonly decode: RequestDecoder;
  readonly values: ValueCarrier;
}

function row(method: string, eventType: EventType, decode: RequestDecoder, shape: CallShape = 'unary', values: ValueCarrier = 'none'): Row {
  return { method, shape, eventType, decode, values };
}

/** Services by full name, with the short name used in audit actions. */
const SERVICES: ReadonlyArray<{ readonly service: string; readonly short: string; readonly rows: readonly Row[] }> = [
  {
    service: 'etcdserverpb.KV',
    short: 'kv',
    rows: [
      row('Range', 'access', kv.decodeRangeRequest, 'unary', 'range'),
      row('Put', 'change', kv.decodePutRequest, 'unary', 'put'),
      row('DeleteRange', 'change', kv.decodeDeleteRangeRequest, 'unary', 'delete-range'),
      row('Txn', 'change', kv.decodeTxnRequest, 'unary', 'txn'),
      row('Compact', 'admin', kv.decodeCompactionRequest),
    ],
  },
  {
    service: 'etcdserverpb.Watch',
    short: 'watch',
    rows: [row('Watch', 'access', watch.decodeWatchRequest, 'bidi', 'watch')],
  },
  {
    service: 'etcdserverpb.Lease',
    short: 'lease',
    rows: [
      row('LeaseGrant', 'change', lease.decodeLeaseGrantRequest),
      row('LeaseRevoke', 'change', lease.decodeLeaseRevokeRequest),
      row('LeaseKeepAlive', 'change', lease.decodeLeaseKeepAliveRequest, 'bidi'),
      row('LeaseTimeToLive', 'access', lease.decodeLeaseTimeToLiveRequest),
      row('LeaseLeases', 'access', lease.decodeLeaseLeasesRequest),
    ],
  },
  {
    service: 'etcdserverpb.Cluster',
    short: 'cluster',
    rows: [
      row('MemberAdd', 'admin', cluster.decodeMemberAddRequest),
      row('MemberRemove', 'admin', cluster.decodeMemberRemoveRequest),
      row('MemberUpdate', 'admin', cluster.decodeMemberUpdateRequest),
      row('MemberList', 'info', cluster.decodeMemberListRequest),
      row('MemberPromote', 'admin', cluster.decodeMemberPromoteRequest),
    ],
  },
  {
    service: 'etcdserverpb.Maintenance',
    short: 'maintenance',
    rows: [
      // Alarm both reads (GET) and changes alarms: recorded as admin either way.
      row('Alarm', 'admin', maintenance.decodeAlarmRequest),
      row('Status', 'info', maintenance.decodeStatusRequest),
      row('Defragment', 'admin', maintenance.decodeDefragmentRequest),
      row('Hash', 'info', maintenance.decodeHashRequest),
      row('HashKV', 'info', maintenance.decodeHashKVRequest),
      // A snapshot reads every key and value, yet it is an admin operation (capability
      // snapshot): recorded as admin so that `audit.level.read: none` never hides one.
      row('Snapshot', 'admin', maintenance.decodeSnapshotRequest, 'serverStream'),
      row('MoveLeader', 'admin', maintenance.decodeMoveLeaderRequest),
      row('Downgrade', 'admin', maintenance.decodeDowngradeRequest),
    ],
  },
  {
    service: 'etcdserverpb.Auth',
    short: 'auth',
    rows: [
      row('AuthEnable', 'admin', auth.decodeAuthEnableRequest),
      row('AuthDisable', 'admin', auth.decodeAuthDisableRequest),
      // etcd 3.5+; kept so newer etcdctl works when the etcd behind the proxy has it.
      row('AuthStatus', 'info', auth.decodeAuthStatusRequest),
      row('Authenticate', 'access', auth.decodeAuthenticateRequest),
      row('UserAdd', 'change', auth.decodeUserAddRequest),
      row('UserGet', 'access', auth.decodeUserGetRequest),
      row('UserList', 'access', auth.decodeUserListRequest),
      row('UserDelete', 'change', auth.decodeUserDeleteRequest),
      row('UserChangePassword', 'change', auth.decodeUserChangePasswordRequest),
      row('UserGrantRole', 'change', auth.decodeUserGrantRoleRequest),
      row('UserRevokeRole', 'change', auth.decodeUserRevokeRoleRequest),
      row('RoleAdd', 'change', auth.decodeRoleAddRequest),
      row('RoleGet', 'access', auth.decodeRoleGetRequest),
      row('RoleList', 'access', auth.decodeRoleListRequest),
      row('RoleDelete', 'change', auth.decodeRoleDeleteRequest),
      row('RoleGrantPermission', 'change', auth.decodeRoleGrantPermissionRequest),
      row('RoleRevokePermission', 'change', auth.decodeRoleRevokePermissionRequest),
    ],
  },
  {
    service: 'v3lockpb.Lock',
    short: 'lock',
    rows: [
      row('Lock', 'change', lock.decodeLockRequest),
      row('Unlock', 'change', lock.decodeUnlockRequest),
    ],
  },
  {
    service: 'v3electionpb.Election',
    short: 'election',
    rows: [
      // Election values live under name + "/": refused there when that is encrypted.
      row('Campaign', 'change', election.decodeCampaignRequest, 'unary', 'election'),
      row('Proclaim', 'change', election.decodeProclaimRequest, 'unary', 'election'),
      row('Leader', 'access', election.decodeLeaderRequest, 'unary', 'election'),
      row('Observe', 'access', election.decodeObserveRequest, 'serverStream', 'election'),
      row('Resign', 'change', election.decodeResignRequest),
    ],
  },
];

/** "DeleteRange" -> "delete_range", "HashKV" -> "hash_kv", "LeaseTimeToLive" -> "lease_time_to_live". */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

function buildTable(): ReadonlyMap<string, MethodSpec> {
  const table = new Map<string, MethodSpec>();
  for (const { service, short, rows } of SERVICES) {
    for (const r of rows) {
      const path = `/${service}/${r.method}`;
      const spec: MethodSpec = Object.freeze({
        path,
        service,
        method: r.method,
        shape: r.shape,
        action: `etcd.${short}.${snakeCase(r.method)}`,
        category: service === 'etcdserverpb.Auth' ? 'iam' : 'database',
        eventType: r.eventType,
        decode: r.decode,
        values: r.values,
      });
      table.set(path, spec);
    }
  }
  return table;
}

/**
 * Every etcd v3 RPC etcdgate serves, keyed by full gRPC path ("/etcdserverpb.KV/Range").
 * Built once at import from constants (no I/O, no globals registered).
 */
export const METHODS: ReadonlyMap<string, MethodSpec> = buildTable();
