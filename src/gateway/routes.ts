/**
 * Which HTTP requests the JSON gateway serves, and what every other request gets, as
 * etcd 3.4 answers them on its client port (compared in test/gateway-json-vs-etcd.test.ts):
 *
 * - `POST /v3/<service>/<call>`: one etcd RPC each (the table below, from etcd 3.4's
 *   generated gateway). `/v3beta/...` is rewritten to `/v3/...` as etcd does;
 *   etcdgate also takes `/v3alpha/...` (etcd 3.2's prefix, which Patroni and older
 *   clients pick for old clusters), which etcd 3.4 answers 404.
 * - `GET /version`, `GET /health`: answered from etcd's state (src/gateway/probes.ts).
 * - A path Go's ServeMux would clean (`//`, `/./`, `/../`) and `/v3` get its 301.
 * - Any other method on a route: 405 `Method Not Allowed`; an unknown path under
 *   `/v3/`: 404 `Not Found` (grpc-gateway's text); anything else: 404 `404 page not
 *   found` (Go's ServeMux). `OPTIONS` is answered 200 and empty, as etcd does (etcd
 *   adds CORS headers; etcdgate does not: a browser gets no client certificate anyway).
 *
 * Routes map to the gRPC method paths of src/etcd/methods.ts, so a JSON call is the
 * same call, with the same method-table row, as over gRPC.
 */
import { METHODS } from '../etcd/methods.js';
import type { MethodSpec } from '../etcd/types.js';

/** How etcd 3.4's gateway names each RPC under /v3/. Hash and HashKV share a path there; Hash, registered first, wins. */
const GATEWAY_PATHS: ReadonlyArray<readonly [string, string]> = [
  ['kv/range', '/etcdserverpb.KV/Range'],
  ['kv/put', '/etcdserverpb.KV/Put'],
  ['kv/deleterange', '/etcdserverpb.KV/DeleteRange'],
  ['kv/txn', '/etcdserverpb.KV/Txn'],
  ['kv/compaction', '/etcdserverpb.KV/Compact'],
  ['watch', '/etcdserverpb.Watch/Watch'],
  ['lease/grant', '/etcdserverpb.Lease/LeaseGrant'],
  ['lease/revoke', '/etcdserverpb.Lease/LeaseRevoke'],
  ['kv/lease/revoke', '/etcdserverpb.Lease/LeaseRevoke'],
  ['lease/keepalive', '/etcdserverpb.Lease/LeaseKeepAlive'],
  ['lease/timetolive', '/etcdserverpb.Lease/LeaseTimeToLive'],
  ['kv/lease/timetolive', '/etcdserverpb.Lease/LeaseTimeToLive'],
  ['lease/leases', '/etcdserverpb.Lease/LeaseLeases'],
  ['kv/lease/leases', '/etcdserverpb.Lease/LeaseLeases'],
  ['cluster/member/add', '/etcdserverpb.Cluster/MemberAdd'],
  ['cluster/member/remove', '/etcdserverpb.Cluster/MemberRemove'],
  ['cluster/member/update', '/etcdserverpb.Cluster/MemberUpdate'],
  ['cluster/member/list', '/etcdserverpb.Cluster/MemberList'],
  ['cluster/member/promote', '/etcdserverpb.Cluster/MemberPromote'],
  ['maintenance/alarm', '/etcdserverpb.Maintenance/Alarm'],
  ['maintenance/status', '/etcdserverpb.Maintenance/Status'],
  ['maintenance/defragment', '/etcdserverpb.Maintenance/Defragment'],
  ['maintenance/hash', '/etcdserverpb.Maintenance/Hash'],
  ['maintenance/snapshot', '/etcdserverpb.Maintenance/Snapshot'],
  ['maintenance/transfer-leadership', '/etcdserverpb.Maintenance/MoveLeader'],
  ['auth/enable', '/etcdserverpb.Auth/AuthEnable'],
  ['auth/disable', '/etcdserverpb.Auth/AuthDisable'],
  ['auth/authenticate', '/etcdserverpb.Auth/Authenticate'],
  ['auth/user/add', '/etcdserverpb.Auth/UserAdd'],
  ['auth/user/get', '/etcdserverpb.Auth/UserGet'],
  ['auth/user/list', '/etcdserverpb.Auth/UserList'],
  ['auth/user/delete', '/etcdserverpb.Auth/UserDelete'],
  ['auth/user/changepw', '/etcdserverpb.Auth/UserChangePassword'],
  ['auth/user/grant', '/etcdserverpb.Auth/UserGrantRole'],
  ['auth/user/revoke', '/etcdserverpb.Auth/UserRevokeRole'],
  ['auth/role/add', '/etcdserverpb.Auth/RoleAdd'],
  ['auth/role/get', '/etcdserverpb.Auth/RoleGet'],
  ['auth/role/list', '/etcdserverpb.Auth/RoleList'],
  ['auth/role/delete', '/etcdserverpb.Auth/RoleDelete'],
  ['auth/role/grant', '/etcdserverpb.Auth/RoleGrantPermission'],
  ['auth/role/revoke', '/etcdserverpb.Auth/RoleRevokePermission'],
  ['lock/lock', '/v3lockpb.Lock/Lock'],
  ['lock/unlock', '/v3lockpb.Lock/Unlock'],
  ['election/campaign', '/v3electionpb.Election/Campaign'],
  ['election/proclaim', '/v3electionpb.Election/Proclaim'],
  ['election/leader', '/v3electionpb.Election/Leader'],
  ['election/observe', '/v3electionpb.Election/Observe'],
  ['election/resign', '/v3electionpb.Election/Resign'],
];

/** What a request resolves to; every answer that is not an RPC is a value here, sent by the caller. */
export type Route =
  | { readonly kind: 'rpc'; readonly spec: MethodSpec; readonly path: string }
  | { readonly kind: 'version' }
  | { readonly kind: 'health'; readonly query: URLSearchParams }
  | { readonly kind: 'options' }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'text'; readonly status: number; readonly body: string; readonly allow?: string };

/** grpc-gateway's answers (http.Error: the text and a newline). */
const GATEWAY_NOT_FOUND: Route = { kind: 'text', status: 404, body: 'Not Found\n' };
const GATEWAY_NOT_ALLOWED: Route = { kind: 'text', status: 405, body: 'Method Not Allowed\n' };
/** Go's ServeMux for a path nothing is registered at. */
const MUX_NOT_FOUND: Route = { kind: 'text', status: 404, body: '404 page not found\n' };
/** etcd's /version and /health handlers for a method other than GET. */
const GET_ONLY: Route = { kind: 'text', status: 405, body: 'Method Not Allowed\n', allow: 'GET' };
const BAD_REQUEST: Route = { kind: 'text', status: 400, body: 'Bad Request\n' };

/** Gateway path under /v3/ -> method-table row, built once at import from constants. */
const RPC_ROUTES: ReadonlyMap<string, MethodSpec> = new Map(
  GATEWAY_PATHS.map(([path, grpcPath]) => {
    const spec = METHODS.get(grpcPath);
    if (spec === undefined) throw new Error(`gateway route ${path}: ${grpcPath} is not in the method table`);
    return [path, spec] as const;
  }),
);

/** Every gateway path under /v3/ and its gRPC method path (for tests and docs). */
export const GATEWAY_ROUTES: ReadonlyArray<readonly [string, string]> = GATEWAY_PATHS;

/**
 * Go's path.Clean for a URL path, as net/http's ServeMux applies it (keeping a
 * trailing slash): collapses `//`, resolves `.` and `..`.
 */
function cleanPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  let cleaned = `/${parts.join('/')}`;
  if (path.endsWith('/') && cleaned !== '/') cleaned += '/';
  return cleaned;
}

/** Resolves a request (its method and raw request target) to what answers it. */
export function resolveRoute(method: string, target: string): Route {
  const question = target.indexOf('?');
  const rawPath = question < 0 ? target : target.slice(0, question);
  const query = question < 0 ? '' : target.slice(question + 1);
  if (!rawPath.startsWith('/')) return BAD_REQUEST;
  let path: string;
  try {
    // Go routes on the decoded path (URL.Path).
    path = decodeURIComponent(rawPath);
  } catch {
    return BAD_REQUEST;
  }
  // etcd rewrites /v3beta/ before routing; etcdgate does the same for /v3alpha/.
  if (path.startsWith('/v3beta/')) path = `/v3/${path.slice('/v3beta/'.length)}`;
  else if (path.startsWith('/v3alpha/')) path = `/v3/${path.slice('/v3alpha/'.length)}`;

  if (method === 'OPTIONS') return { kind: 'options' };
  const cleaned = cleanPath(path);
  if (cleaned !== path) return { kind: 'redirect', location: query === '' ? cleaned : `${cleaned}?${query}` };
  if (path === '/v3') return { kind: 'redirect', location: query === '' ? '/v3/' : `/v3/?${query}` };

  if (path.startsWith('/v3/')) {
    const spec = RPC_ROUTES.get(path.slice('/v3/'.length));
    if (spec === undefined) return GATEWAY_NOT_FOUND;
    if (method !== 'POST') return GATEWAY_NOT_ALLOWED;
    return { kind: 'rpc', spec, path: rawPath };
  }
  if (path === '/version') return method === 'GET' ? { kind: 'version' } : GET_ONLY;
  if (path === '/health') return method === 'GET' ? { kind: 'health', query: new URLSearchParams(query) } : GET_ONLY;
  return MUX_NOT_FOUND;
}
