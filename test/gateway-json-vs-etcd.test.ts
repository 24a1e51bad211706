/**
 * etcdgate's JSON gateway answers as etcd 3.4's own gateway does. Two fresh etcds run
 * the same sequence of requests: one behind etcdgate (through its gateway), one asked
 * directly on its client port. Revisions line up because both histories are the same;
 * what differs by nature (cluster, member and lease IDs, member URLs, database sizes)
 * is normalized, everything else must be equal: HTTP status, content type and body.
 * For bodies etcd's Go JSON decoder rejects, the status and gRPC code must match (the
 * message text is Go's own; etcdgate words it itself).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { curl, type CurlResult } from './support/curl.js';
import { etcdctl } from './support/etcdctl.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack();
let direct: EtcdCluster;

beforeAll(async () => {
  direct = await startEtcd(stack.pki);
});
afterAll(async () => {
  await direct.stop();
});

type Side = 'gateway' | 'etcd';

async function call(side: Side, path: string, body?: string, method?: string, client = 'root'): Promise<CurlResult> {
  const base = side === 'gateway' ? stack.gate.endpoint : direct.endpoints[0];
  return curl(`${base}${path}`, {
    ca: stack.pki.ca,
    client: stack.pki.client(client),
    ...(body === undefined ? {} : { body }),
    ...(method === undefined ? {} : { method }),
  });
}

/**
 * The body text with what two clusters cannot share (IDs, sizes, hashes, member names
 * and URLs) replaced by placeholders; everything else stays as written, so field
 * order, number forms and escapes are compared too.
 */
function normalize(body: string): string {
  return body
    .replace(/"(cluster_id|member_id|leader|ID|dbSize|dbSizeInUse|hash|raftIndex|raftAppliedIndex)":"?\d+"?/gu, '"$1":"N"')
    .replace(/"(peerURLs|clientURLs)":\[[^\]]*\]/gu, '"$1":["URL"]')
    .replace(/"name":"etcd-\d+"/gu, '"name":"MEMBER"');
}

/** Sends the same request to both and expects the same answer. */
async function same(path: string, body?: string, method?: string): Promise<CurlResult> {
  const viaEtcd = await call('etcd', path, body, method);
  const viaGateway = await call('gateway', path, body, method);
  expect({ status: viaGateway.status, type: viaGateway.headers['content-type'], body: normalize(viaGateway.body) }, `${method ?? 'POST'} ${path} ${body ?? ''}`).toEqual({
    status: viaEtcd.status,
    type: viaEtcd.headers['content-type'],
    body: normalize(viaEtcd.body),
  });
  return viaGateway;
}

/** Same status and gRPC code; the message is Go's JSON decoder's wording on etcd's side. */
async function sameError(path: string, body: string): Promise<void> {
  const viaEtcd = await call('etcd', path, body);
  const viaGateway = await call('gateway', path, body);
  const code = (result: CurlResult): unknown => (JSON.parse(result.body) as { code?: unknown }).code;
  expect({ status: viaGateway.status, code: code(viaGateway), type: viaGateway.headers['content-type'] }, body).toEqual({ status: viaEtcd.status, code: code(viaEtcd), type: viaEtcd.headers['content-type'] });
  expect(viaGateway.status).toBe(400);
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('KV through the gateway answers as etcd', () => {
  it('put, range (every option), deleterange', async () => {
    await same('/v3/kv/put', JSON.stringify({ key: b64('/a/1'), value: b64('one') }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('/a/2'), value: b64('two'), prev_kv: true }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('/a/2'), value: b64('2'), prevKv: true }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('/a/1') }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('/a/'), range_end: b64('/a0'), sort_order: 'DESCEND', sort_target: 'MOD' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('/a/'), rangeEnd: b64('/a0'), limit: 1 }));
    await same('/v3/kv/range', '{"key":"L2Ev","range_end":"L2Ew","limit":"1","keys_only":true}');
    await same('/v3/kv/range', '{"key":"L2Ev","range_end":"L2Ew","count_only":true,"serializable":true}');
    await same('/v3/kv/range', '{"key":"L2Ev","range_end":"L2Ew","sort_order":2,"keys_only":true,"keysOnly":false}');
    await same('/v3/kv/range', '{"key":"L2Ev","unknown_field":[1,{"x":2}]}');
    await same('/v3/kv/range', '{"key":"L2EvMQ=="} trailing text is not read');
    await same('/v3/kv/range', '{"key":"L2Ev\\nMQ==","limit":" 3 "}');
    await same('/v3/kv/range', '{"key":null,"limit":null}');
    await same('/v3/kv/range', '');
    await same('/v3/kv/range', 'null');
    await same('/v3/kv/range', JSON.stringify({ key: b64('/a/1'), revision: '1' }));
    await same('/v3/kv/deleterange', JSON.stringify({ key: b64('/a/'), range_end: b64('/a0'), prev_kv: true }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('/a/'), range_end: b64('/a0') }));
  });

  it('txn: compares, both branches, nested txn, every op', async () => {
    const txn = {
      compare: [
        { key: b64('/t/x'), target: 'VERSION', result: 'EQUAL', version: '0' },
        { key: b64('/t/y'), target: 'CREATE', result: 'LESS', create_revision: 100 },
      ],
      success: [
        { request_put: { key: b64('/t/x'), value: b64('x') } },
        { request_range: { key: b64('/t/'), range_end: b64('/t0') } },
        { requestTxn: { success: [{ request_delete_range: { key: b64('/t/none') } }] } },
      ],
      failure: [{ request_range: { key: b64('/t/x') } }],
    };
    await same('/v3/kv/txn', JSON.stringify(txn));
    await same('/v3/kv/txn', JSON.stringify(txn));
    await same('/v3/kv/txn', JSON.stringify({ compare: [{ key: b64('/t/x'), target: 'VALUE', result: 'NOT_EQUAL', value: b64('y') }], success: [{ request_put: { key: b64('/t/z'), value: b64('z'), prev_kv: true } }] }));
  });

  it('compaction and its errors', async () => {
    await same('/v3/kv/compaction', JSON.stringify({ revision: '2' }));
    await same('/v3/kv/compaction', JSON.stringify({ revision: '2' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('/a/1'), revision: '1' }));
    await same('/v3/kv/compaction', JSON.stringify({ revision: '100000' }));
  });

  it('errors from etcd keep their code, status and text', async () => {
    await same('/v3/kv/put', JSON.stringify({ value: b64('no key') }));
    await same('/v3/lease/revoke', JSON.stringify({ ID: '12345' }));
    await same('/v3/lease/timetolive', JSON.stringify({ ID: 99 }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('k'), value: b64('v'), lease: '777' }));
  });

  it('request bodies etcd refuses are refused the same way (400, code 3)', async () => {
    for (const body of [
      '{"key":"Zm9"}', // base64 without padding
      '{"key":"Zm9v-_"}', // URL-safe base64
      '{"key":1}',
      '{"key":"Zm9v","limit":1.5}',
      '{"key":"Zm9v","limit":"1e2"}',
      '{"key":"Zm9v","limit":"0x1"}',
      '{"key":"Zm9v","limit":"9223372036854775808"}',
      '{"key":"Zm9v","serializable":"true"}',
      '{"key":"Zm9v","serializable":1}',
      '{"key":"Zm9v","sort_order":"BOGUS"}',
      '[]',
      '"text"',
      '{"key":"Zm9v"',
      '{"key":["Zm9v"]}',
    ]) {
      await sameError('/v3/kv/range', body);
    }
    await sameError('/v3/lease/revoke', '{"ID":12345678901234567891}');
  });
});

describe('lease, cluster, maintenance and auth through the gateway answer as etcd', () => {
  it('lease grant, timetolive with keys, leases, revoke (int64 IDs as JSON numbers kept exact)', async () => {
    for (const side of ['gateway', 'etcd'] as const) {
      const grant = await call(side, '/v3/lease/grant', '{"TTL":60}');
      expect(grant.status).toBe(200);
      const id = (JSON.parse(grant.body) as { ID: string }).ID;
      expect(id).toMatch(/^\d{16,19}$/u);
      // The ID as a bare JSON number, beyond 2^53: must reach etcd unchanged.
      const put = await call(side, '/v3/kv/put', `{"key":"${b64('/l/1')}","value":"dg==","lease":${id}}`);
      expect(put.status).toBe(200);
      const ttl = await call(side, '/v3/lease/timetolive', `{"ID":${id},"keys":true}`);
      expect(ttl.status).toBe(200);
      expect(JSON.parse(ttl.body)).toMatchObject({ ID: id, grantedTTL: '60', keys: [b64('/l/1')] });
      for (const path of ['/v3/lease/leases', '/v3/kv/lease/leases']) {
        const leases = await call(side, path, '{}');
        expect(JSON.parse(leases.body)).toMatchObject({ leases: [{ ID: id }] });
      }
      const alias = await call(side, '/v3/kv/lease/timetolive', `{"ID":"${id}"}`);
      expect(JSON.parse(alias.body)).toMatchObject({ ID: id, grantedTTL: '60' });
      const revoke = await call(side, '/v3/kv/lease/revoke', `{"ID":"${id}"}`);
      expect(revoke.status).toBe(200);
      expect(Object.keys(JSON.parse(revoke.body) as object)).toEqual(['header']);
    }
  });

  it('member list answers with etcdgate advertised URLs', async () => {
    const viaGateway = await same('/v3/cluster/member/list', '{}');
    const members = (JSON.parse(viaGateway.body) as { members: { clientURLs: string[] }[] }).members;
    expect(members.map((m) => m.clientURLs)).toEqual([[...stack.gate.config.server.advertiseClientUrls]]);
  });

  it('maintenance status, alarm, hash, defragment', async () => {
    await same('/v3/maintenance/status', '{}');
    await same('/v3/maintenance/alarm', '{}');
    await same('/v3/maintenance/alarm', '{"action":"GET"}');
    // Hash wins over HashKV on this path in etcd 3.4 (both are registered at it).
    await same('/v3/maintenance/hash', '{"revision":"3"}');
    await same('/v3/maintenance/defragment', '{}');
  });

  it('auth: users and roles, strings escaped as Go escapes them', async () => {
    await same('/v3/auth/user/add', JSON.stringify({ name: 'a<b>&c\u2028', password: 'pw' }));
    await same('/v3/auth/user/list', '{}');
    await same('/v3/auth/role/add', '{"name":"reader"}');
    await same('/v3/auth/role/grant', JSON.stringify({ name: 'reader', perm: { permType: 'READ', key: b64('/r/'), range_end: b64('/r0') } }));
    await same('/v3/auth/role/get', '{"role":"reader"}');
    await same('/v3/auth/user/grant', JSON.stringify({ user: 'a<b>&c\u2028', role: 'reader' }));
    await same('/v3/auth/user/get', JSON.stringify({ name: 'a<b>&c\u2028' }));
    await same('/v3/auth/user/get', '{"name":"nobody-here"}');
  });
});

describe('paths and methods outside the RPCs answer as etcd', () => {
  it('aliases, unknown paths, wrong methods, redirects, OPTIONS', async () => {
    await same('/v3beta/kv/range', JSON.stringify({ key: b64('/a/1') }));
    await same('/v3/kv/range', undefined, 'GET');
    await same('/v3/kv/range', '{}', 'PUT');
    await same('/v3/kv/nothing', '{}');
    await same('/v3/', '{}');
    await same('/v3/kv/range/', '{}');
    await same('/v3/kv/range:verb', '{}');
    await same('/v3/kv/RANGE', '{}');
    await same('/nothing', undefined, 'GET');
    await same('/', undefined, 'GET');
    await same('/v3', undefined, 'GET');
    await same('/v3//kv/range', undefined, 'GET');
    await same('/v3/kv/../kv/range', '{}');
    await same('/v3/kv/range', undefined, 'OPTIONS');
    await same('/v2/keys', undefined, 'GET');
  });

  it('/version and /health', async () => {
    await same('/version', undefined, 'GET');
    await same('/version', '{}', 'POST');
    await same('/health', undefined, 'GET');
    await same('/health?exclude=NOSPACE', undefined, 'GET');
    await same('/health', '{}', 'POST');
  });

  it('differs on purpose: /v3alpha is an alias too (etcd 3.4 answers 404)', async () => {
    const viaEtcd = await call('etcd', '/v3alpha/kv/range', JSON.stringify({ key: b64('/a/1') }));
    expect(viaEtcd.status).toBe(404);
    const viaGateway = await call('gateway', '/v3alpha/kv/range', JSON.stringify({ key: b64('/a/1') }));
    const viaV3 = await call('gateway', '/v3/kv/range', JSON.stringify({ key: b64('/a/1') }));
    expect(viaGateway.status).toBe(200);
    expect(viaGateway.body).toBe(viaV3.body);
  });
});

describe('a permission denial looks like etcd gateway\'s (auth enabled on the direct etcd)', () => {
  it('403 with error, message and code 7', async () => {
    const admin = { endpoint: direct.endpoints[0] ?? '', cacert: stack.pki.ca, ...stack.pki.client('root') };
    for (const args of [['user', 'add', 'root:rootpw'], ['user', 'grant-role', 'root', 'root'], ['user', 'add', 'weak:weakpw'], ['auth', 'enable']]) {
      const result = await etcdctl(args, admin);
      expect(result.code, result.stderr).toBe(0);
    }
    // etcd's gateway takes the identity from a token and refuses a certificate with a CN:
    // its caller here presents etcdgate's upstream certificate, which has none.
    const upstream = stack.pki.upstreamClient;
    const login = await curl(`${direct.endpoints[0]}/v3/auth/authenticate`, { ca: stack.pki.ca, client: upstream, body: '{"name":"weak","password":"weakpw"}' });
    const token = (JSON.parse(login.body) as { token: string }).token;
    const viaEtcd = await curl(`${direct.endpoints[0]}/v3/kv/put`, { ca: stack.pki.ca, client: upstream, body: '{"key":"eA==","value":"eQ=="}', headers: [`Authorization: ${token}`] });
    const viaGateway = await call('gateway', '/v3/kv/put', '{"key":"eA==","value":"eQ=="}', undefined, 'nobody');
    expect(viaEtcd.status).toBe(403);
    expect({ status: viaGateway.status, type: viaGateway.headers['content-type'], body: viaGateway.body }).toEqual({ status: viaEtcd.status, type: viaEtcd.headers['content-type'], body: viaEtcd.body });
    expect(JSON.parse(viaGateway.body)).toEqual({ error: 'etcdserver: permission denied', message: 'etcdserver: permission denied', code: 7 });
  });
});
