/**
 * Streaming calls over the JSON gateway: watch (one JSON object per message, as etcd's
 * gateway emits them), lease keep-alive and snapshot, compared with etcd 3.4's own
 * gateway on a second etcd with the same history, and held to the same gate as over
 * gRPC (a refused watch create is answered in-band, a keep-alive of another tenant's
 * lease ends the call with the permission error, a snapshot needs its capability).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { curl, curlStream, type CurlStream } from './support/curl.js';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { DEV_POLICY_FILE } from './support/policy-file.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ policy: DEV_POLICY_FILE });
let direct: EtcdCluster;
const streams: CurlStream[] = [];

beforeAll(async () => {
  direct = await startEtcd(stack.pki);
});
afterAll(async () => {
  for (const stream of streams) stream.stop();
  await direct.stop();
});

type Side = 'gateway' | 'etcd';
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const base = (side: Side): string => (side === 'gateway' ? stack.gate.endpoint : (direct.endpoints[0] ?? ''));

function post(side: Side, path: string, body: unknown, client = 'root'): ReturnType<typeof curl> {
  return curl(`${base(side)}${path}`, { ca: stack.pki.ca, client: stack.pki.client(client), body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function open(side: Side, path: string, body: string, client = 'root', http: '1.1' | '2' = '1.1'): CurlStream {
  const stream = curlStream(`${base(side)}${path}`, { ca: stack.pki.ca, client: stack.pki.client(client), body, http });
  streams.push(stream);
  return stream;
}

/**
 * Lines with what two clusters cannot share replaced (see gateway-json-vs-etcd.test.ts);
 * `revisions` too once the two histories have parted (the tenant tests write only through etcdgate).
 */
function normalize(lines: readonly string[], revisions = false): string[] {
  return lines.map((line) => {
    const ids = line.replace(/"(cluster_id|member_id|ID)":"?\d+"?/gu, '"$1":"N"');
    return revisions ? ids.replace(/"revision":"\d+"/gu, '"revision":"N"') : ids;
  });
}

async function lines(stream: CurlStream, count: number): Promise<string[]> {
  await vi.waitFor(() => expect(stream.lines().length).toBeGreaterThanOrEqual(count), { timeout: 15_000, interval: 25 });
  return stream.lines();
}

describe('watch', () => {
  it('events arrive as {"result":...} lines, as etcd writes them (HTTP/1.1 and HTTP/2)', async () => {
    for (const http of ['1.1', '2'] as const) {
      const prefix = `/registry/w${http}/`;
      const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: b64(`${prefix.slice(0, -1)}0`), prev_kv: true } });
      const seen: Record<Side, string[]> = { gateway: [], etcd: [] };
      for (const side of ['etcd', 'gateway'] as const) {
        const watch = open(side, '/v3/watch', body, 'root', http);
        await lines(watch, 1);
        for (const request of [
          ['/v3/kv/put', { key: b64(`${prefix}a`), value: b64('1') }],
          ['/v3/kv/put', { key: b64(`${prefix}a`), value: b64('2') }],
          ['/v3/kv/deleterange', { key: b64(`${prefix}a`) }],
        ] as const) {
          expect((await post(side, request[0], request[1])).status).toBe(200);
        }
        seen[side] = await lines(watch, 4);
        watch.stop();
      }
      expect(normalize(seen.gateway)).toEqual(normalize(seen.etcd));
      expect(JSON.parse(seen.gateway[0] ?? '{}')).toMatchObject({ result: { created: true } });
      expect(JSON.parse(seen.gateway[3] ?? '{}')).toMatchObject({ result: { events: [{ type: 'DELETE' }] } });
    }
  });

  it('a create request and a cancel in the same body; the body\'s end ends the call as on etcd', async () => {
    const body = `${JSON.stringify({ create_request: { key: b64('/registry/c') } })}\n${JSON.stringify({ cancel_request: { watch_id: '0' } })}`;
    const seen: Record<Side, string[]> = { gateway: [], etcd: [] };
    for (const side of ['etcd', 'gateway'] as const) {
      const watch = open(side, '/v3/watch', body);
      seen[side] = await lines(watch, 2);
      watch.stop();
    }
    expect(normalize(seen.gateway)).toEqual(normalize(seen.etcd));
    expect(JSON.parse(seen.gateway[1] ?? '{}')).toMatchObject({ result: { canceled: true } });
  });

  it('a create the caller may not read is refused in-band, its readable one works, both audited as http', async () => {
    const before = (await stack.gate.auditRecords()).length;
    const body = `${JSON.stringify({ create_request: { key: b64('/tenants/tenant-b/') } })}${JSON.stringify({ create_request: { key: b64('/tenants/tenant-a/w') } })}`;
    const watch = open('gateway', '/v3/watch', body, 'tenant-a');
    const [refused, created] = (await lines(watch, 2)).map((line) => JSON.parse(line) as { result: Record<string, unknown> });
    expect(refused?.result).toMatchObject({ watch_id: '-1', created: true, canceled: true, cancel_reason: 'etcdserver: permission denied' });
    expect(created?.result).toMatchObject({ created: true });
    expect(created?.result['canceled']).toBeUndefined();
    expect((await post('gateway', '/v3/kv/put', { key: b64('/tenants/tenant-a/w'), value: b64('v') }, 'tenant-a')).status).toBe(200);
    const event = JSON.parse((await lines(watch, 3))[2] ?? '{}') as { result: { events: { kv: { key: string } }[] } };
    expect(event.result.events[0]?.kv.key).toBe(b64('/tenants/tenant-a/w'));
    watch.stop();
    await vi.waitFor(async () => {
      const creates = (await stack.gate.auditRecords()).slice(before).filter((r) => (r['etcdgate'] as { event_kind?: string }).event_kind === 'watch.create');
      expect(creates).toHaveLength(2);
      for (const record of creates) expect(record).toMatchObject({ network: { protocol: 'http' }, url: { path: '/v3/watch' }, user: { name: 'tenant-a' } });
      expect(creates.map((r) => (r['etcd'] as { decision: { allowed: boolean } }).decision.allowed).sort()).toEqual([false, true]);
    });
  });

  it('a first request that is not valid JSON for WatchRequest is refused with 500, code 2 (UNKNOWN), like etcd', async () => {
    for (const side of ['etcd', 'gateway'] as const) {
      const result = await post(side, '/v3/watch', '{"create_request":{"key":1}}');
      expect(result.status, side).toBe(500);
      expect(result.headers['content-type']).toBe('application/json');
      expect(JSON.parse(result.body)).toMatchObject({ code: 2 });
    }
  });
});

describe('lease keep-alive and snapshot', () => {
  it('keepalive answers one result per request and ends with the body, as etcd', async () => {
    const seen: Record<Side, string[]> = { gateway: [], etcd: [] };
    for (const side of ['etcd', 'gateway'] as const) {
      const grant = await post(side, '/v3/lease/grant', { TTL: 60 });
      const id = (JSON.parse(grant.body) as { ID: string }).ID;
      const keepalive = open(side, '/v3/lease/keepalive', `{"ID":"${id}"}{"ID":${id}}`);
      expect(await keepalive.exited).toBe(0);
      seen[side] = keepalive.lines();
    }
    expect(normalize(seen.gateway, true)).toEqual(normalize(seen.etcd, true));
    expect(seen.gateway).toHaveLength(2);
    expect(JSON.parse(seen.gateway[0] ?? '{}')).toMatchObject({ result: { TTL: '60' } });
  });

  it('keepalive of another tenant\'s lease ends with the permission error; the owner renews it', async () => {
    const grant = await post('gateway', '/v3/lease/grant', { TTL: 60 }, 'tenant-b');
    const id = (JSON.parse(grant.body) as { ID: string }).ID;
    expect((await post('gateway', '/v3/kv/put', `{"key":"${b64('/tenants/tenant-b/k')}","value":"dg==","lease":"${id}"}`, 'tenant-b')).status).toBe(200);
    const denied = await post('gateway', '/v3/lease/keepalive', { ID: id }, 'tenant-a');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toEqual({ error: { grpc_code: 7, http_code: 403, message: 'etcdserver: permission denied', http_status: 'Forbidden' } });
    const renewed = await post('gateway', '/v3/lease/keepalive', { ID: id }, 'tenant-b');
    expect(renewed.status).toBe(200);
    expect(JSON.parse(renewed.body)).toMatchObject({ result: { ID: id, TTL: '60' } });
  });

  it('snapshot streams the database as base64 chunks for a caller with the capability; others get 403', async () => {
    const snapshot = await post('gateway', '/v3/maintenance/snapshot', {});
    expect(snapshot.status).toBe(200);
    const chunks = snapshot.body.trim().split('\n').map((line) => JSON.parse(line) as { result: { blob?: string; remaining_bytes?: string } });
    expect(chunks.length).toBeGreaterThan(0);
    const size = chunks.reduce((sum, chunk) => sum + Buffer.from(chunk.result.blob ?? '', 'base64').length, 0);
    expect(size).toBeGreaterThan(4096);
    expect(chunks.at(-1)?.result.remaining_bytes).toBeUndefined();
    const denied = await post('gateway', '/v3/maintenance/snapshot', {}, 'tenant-a');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ error: { grpc_code: 7, http_status: 'Forbidden' } });
  });
});
