/**
 * A JSON call through the gateway passes the same gate as the gRPC call it stands for:
 * identity from the certificate (an `Authorization` or `token` header changes nothing),
 * the same policy decision (Txn branches, lease lookups), the same rate limit, one
 * audit record per call with the protocol added, and the request metric labelled
 * protocol="http", and the features of the gRPC path (encryption at rest). Driven with
 * curl over HTTP/1.1 and HTTP/2; each case checks the
 * allowed caller and the denied one, and what etcd itself holds afterwards.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, type CurlResult } from './support/curl.js';
import { b, valueInEtcd } from './support/enforcement.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { useGatewayStack } from './support/stack.js';
import { makeKeyDir } from './support/encryption-keys.js';

const stack = useGatewayStack({ policy: DEV_POLICY_FILE, overrides: { limits: { requestsPerSecond: 1000, burst: 1000 } } });
let direct: grpc.Client;

beforeAll(() => {
  direct = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
});
afterAll(() => direct.close());

const DENIED = { error: 'etcdserver: permission denied', message: 'etcdserver: permission denied', code: 7 };
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function post(client: string, path: string, body: unknown, options: { http?: '1.1' | '2'; headers?: string[] } = {}): Promise<CurlResult> {
  return curl(`${stack.gate.endpoint}${path}`, {
    ca: stack.pki.ca,
    client: stack.pki.client(client),
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(options.http === undefined ? {} : { http: options.http }),
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  });
}

function expectDenied(result: CurlResult): void {
  expect(result.status, result.body).toBe(403);
  expect(result.headers['content-type']).toBe('application/json');
  expect(JSON.parse(result.body)).toEqual(DENIED);
}

async function records(): Promise<Record<string, unknown>[]> {
  return stack.gate.auditRecords();
}

describe.each(['1.1', '2'] as const)('over HTTP/%s', (http) => {
  it('the certificate is the identity: own prefix allowed, another tenant and an unbound caller denied', async () => {
    const key = `/tenants/tenant-a/h${http}`;
    const allowed = await post('tenant-a', '/v3/kv/put', { key: b64(key), value: b64('a') }, { http });
    expect(allowed.status, allowed.body).toBe(200);
    expect(allowed.httpVersion).toBe(http);
    expect(await valueInEtcd(direct, key)).toBe('a');

    const other = `/tenants/tenant-b/h${http}`;
    expectDenied(await post('tenant-a', '/v3/kv/put', { key: b64(other), value: b64('a') }, { http }));
    expectDenied(await post('nobody', '/v3/kv/range', { key: b64(key) }, { http }));
    expect(await valueInEtcd(direct, other)).toBeUndefined();
  });

  it('Authorization and token headers do not change who the caller is', async () => {
    // Whatever the headers claim, the policy decides on the certificate, and none of them reaches etcd.
    const other = `/tenants/tenant-b/tok${http}`;
    const headers = ['Authorization: root-token', 'token: root-token', 'Grpc-Metadata-Authorization: root-token'];
    expectDenied(await post('tenant-a', '/v3/kv/put', { key: b64(other), value: b64('x') }, { http, headers }));
    expect(await valueInEtcd(direct, other)).toBeUndefined();
    const own = await post('tenant-b', '/v3/kv/put', { key: b64(other), value: b64('b') }, { http, headers });
    expect(own.status, own.body).toBe(200);
    expect(await valueInEtcd(direct, other)).toBe('b');
  });
});

describe('the policy decides as for gRPC', () => {
  it('Txn: both branches are checked whatever the compare picks', async () => {
    const mine = b64('/tenants/tenant-a/txn');
    const theirs = b64('/tenants/tenant-b/txn');
    // The compare is true, so only `success` would run; `failure` writes another tenant's key.
    const sneaky = { compare: [{ key: mine, target: 'VERSION', result: 'EQUAL', version: '0' }], success: [{ request_put: { key: mine, value: b64('1') } }], failure: [{ request_put: { key: theirs, value: b64('1') } }] };
    expectDenied(await post('tenant-a', '/v3/kv/txn', sneaky));
    expect(await valueInEtcd(direct, '/tenants/tenant-a/txn')).toBeUndefined();
    const honest = { ...sneaky, failure: [{ request_range: { key: mine } }] };
    const allowed = await post('tenant-a', '/v3/kv/txn', honest);
    expect(allowed.status, allowed.body).toBe(200);
    expect(JSON.parse(allowed.body)).toMatchObject({ succeeded: true });
  });

  it('lease revoke: needs write on every key attached (etcdgate looks them up)', async () => {
    const grant = await post('tenant-b', '/v3/lease/grant', { TTL: 120 });
    expect(grant.status, grant.body).toBe(200);
    const id = (JSON.parse(grant.body) as { ID: string }).ID;
    const put = await post('tenant-b', '/v3/kv/put', `{"key":"${b64('/tenants/tenant-b/leased')}","value":"${b64('v')}","lease":${id}}`);
    expect(put.status, put.body).toBe(200);
    expectDenied(await post('tenant-a', '/v3/lease/revoke', `{"ID":${id}}`));
    expectDenied(await post('tenant-a', '/v3/kv/lease/revoke', { ID: id }));
    expect(await valueInEtcd(direct, '/tenants/tenant-b/leased')).toBe('v');
    const revoked = await post('tenant-b', '/v3/lease/revoke', { ID: id });
    expect(revoked.status, revoked.body).toBe(200);
    expect(await valueInEtcd(direct, '/tenants/tenant-b/leased')).toBeUndefined();
  });

  it('admin calls need the capability', async () => {
    expectDenied(await post('tenant-a', '/v3/maintenance/defragment', {}));
    expectDenied(await post('tenant-a', '/v3/auth/user/add', { name: 'x', password: 'y' }));
    const status = await post('root', '/v3/maintenance/status', {});
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body)).toMatchObject({ version: expect.stringMatching(/^3\.4\./u) as unknown });
    const users = await callEtcd(direct, 'Auth', 'UserList', ['AuthUserListRequest', {}], 'AuthUserListResponse');
    expect(users['users'] ?? []).not.toContain('x');
  });
});

describe('audit and metrics', () => {
  it('one record per call, with the same fields as gRPC plus network.protocol, http.version and url.path', async () => {
    const before = (await records()).length;
    const key = '/tenants/tenant-a/audited';
    expect((await post('tenant-a', '/v3beta/kv/put', { key: b64(key), value: b64('secret-value') })).status).toBe(200);
    expectDenied(await post('tenant-a', '/v3/kv/range', { key: b64('/tenants/tenant-b/x') }, { http: '2' }));
    expect((await post('tenant-a', '/v3/kv/range', '{"key":"not base64!"}')).status).toBe(400);
    // Call records only: each curl also leaves connection records (opened, closed).
    const added = (await records()).slice(before).filter((record) => record['etcd'] !== undefined);
    expect(added).toHaveLength(3);
    const [put, denied, malformed] = added as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    expect(put).toMatchObject({
      event: { action: 'etcd.kv.put', outcome: 'success' },
      user: { name: 'tenant-a', roles: ['tenant'] },
      etcd: { request: { key }, decision: { allowed: true }, response: { code: 0 } },
      network: { protocol: 'http' },
      http: { version: '1.1' },
      url: { path: '/v3beta/kv/put' },
    });
    expect(denied).toMatchObject({
      event: { action: 'etcd.kv.range', outcome: 'failure' },
      etcd: { decision: { allowed: false }, response: { code: 7, message: 'etcdserver: permission denied' } },
      network: { protocol: 'http' },
      http: { version: '2' },
    });
    expect(malformed).toMatchObject({ etcd: { response: { code: 3 } }, network: { protocol: 'http' }, url: { path: '/v3/kv/range' } });
    // Never a value: not in the record, however it was sent.
    expect(JSON.stringify(added)).not.toContain(b64('secret-value'));
    expect(JSON.stringify(added)).not.toContain('secret-value');
  });

  it('the request metric carries protocol="http" for gateway calls and "grpc" for gRPC ones', async () => {
    await callEtcd(rawClient(stack.gate.endpoint, stack.pki, 'tenant-a'), 'KV', 'Range', ['RangeRequest', { key: b('/tenants/tenant-a/m') }], 'RangeResponse');
    const metrics = parseExposition(await (await fetch(`${stack.gate.adminUrl}/metrics`)).text());
    const count = (labels: Record<string, string>): number => findSamples(metrics, 'etcdgate_requests_total', labels).reduce((sum, s) => sum + s.value, 0);
    expect(count({ method: 'Put', decision: 'allow', protocol: 'http' })).toBeGreaterThan(0);
    expect(count({ method: 'Range', decision: 'deny', code: 'PERMISSION_DENIED', protocol: 'http' })).toBeGreaterThan(0);
    expect(count({ method: 'Range', decision: 'allow', protocol: 'grpc' })).toBeGreaterThan(0);
  });
});

describe('limits shared with gRPC', () => {
  it('the per-certificate rate limit refuses with 429 and code 8, and the other identities are served', async () => {
    const limited = await stack.startGateway({ policy: DEV_POLICY_FILE, overrides: { limits: { requestsPerSecond: 1, burst: 2 } } });
    try {
      const send = (client: string): Promise<CurlResult> =>
        curl(`${limited.endpoint}/v3/kv/range`, { ca: stack.pki.ca, client: stack.pki.client(client), body: JSON.stringify({ key: b64(`/tenants/${client}/r`) }) });
      const results = [await send('tenant-a'), await send('tenant-a'), await send('tenant-a'), await send('tenant-a')];
      const refused = results.filter((r) => r.status === 429);
      expect(refused.length).toBeGreaterThan(0);
      expect(JSON.parse(refused[0]?.body ?? '{}')).toEqual({ error: 'etcdgate: rate limit exceeded', message: 'etcdgate: rate limit exceeded', code: 8 });
      expect((await send('tenant-b')).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });

  it('gateway.enabled: false serves no HTTP/1.1 and answers non-gRPC HTTP/2 as before (415)', async () => {
    const off = await stack.startGateway({ policy: DEV_POLICY_FILE, overrides: { gateway: { enabled: false } } });
    try {
      const h1 = await curl(`${off.endpoint}/v3/kv/range`, { ca: stack.pki.ca, client: stack.pki.client('root'), body: '{}' });
      expect(h1.status).not.toBe(200);
      const h2 = await curl(`${off.endpoint}/v3/kv/range`, { ca: stack.pki.ca, client: stack.pki.client('root'), body: '{}', http: '2' });
      expect(h2.status).toBe(415);
    } finally {
      await off.stop();
    }
  });
});

describe('features of the gRPC path cover the gateway too', () => {
  it('encryption at rest: a value written as JSON is ciphertext in etcd and plaintext when read back as JSON', async () => {
    const keys = await makeKeyDir();
    const encrypted = await stack.startGateway({
      policy: DEV_POLICY_FILE,
      overrides: { encryption: { resources: [{ name: 'gw', prefixes: ['/tenants/tenant-a/enc/'], providers: [{ aesgcm: { keys: [{ name: 'k1', file: keys.key('k1') }] } }] }] } },
    });
    try {
      const send = (path: string, body: unknown): Promise<CurlResult> =>
        curl(`${encrypted.endpoint}${path}`, { ca: stack.pki.ca, client: stack.pki.client('tenant-a'), body: JSON.stringify(body) });
      const key = '/tenants/tenant-a/enc/1';
      expect((await send('/v3/kv/put', { key: b64(key), value: b64('json-plaintext') })).status).toBe(200);
      const stored = await valueInEtcd(direct, key);
      expect(stored).toBeDefined();
      expect(stored).not.toContain('json-plaintext');
      const read = await send('/v3/kv/range', { key: b64(key) });
      expect(JSON.parse(read.body)).toMatchObject({ kvs: [{ key: b64(key), value: b64('json-plaintext') }] });
    } finally {
      await encrypted.stop();
      await keys.remove();
    }
  });
});
