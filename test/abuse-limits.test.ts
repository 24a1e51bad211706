/**
 * Abuse limits, each with a small configured value:
 *  - requests per second per identity (token bucket): past the burst a call gets
 *    RESOURCE_EXHAUSTED "etcdgate: rate limit exceeded" with an audit record, another
 *    identity is unaffected, and the caller recovers once tokens refill;
 *  - watchers per identity: the create past the limit is refused in-band, like etcd's
 *    own refusals (created + canceled, watch_id -1, cancel_reason "etcdgate: too many
 *    watchers"), the stream stays usable, and a slot freed by a cancel can be reused;
 *  - a client that connects and never starts TLS is closed after handshakeTimeoutMs,
 *    audited and counted (reason timeout);
 *  - connections beyond maxConnections are dropped unserved and counted;
 *  - maxStreamsPerConnection is what HTTP/2 SETTINGS announce to clients;
 *  - a watch stream whose client stops reading is ended with RESOURCE_EXHAUSTED
 *    "etcdgate: watcher too slow" once its unread data passes maxWatcherBufferBytes,
 *    its watchers audited as ended for that reason, and etcdgate's memory stays far
 *    below what etcd kept sending.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { encode } from './support/etcd-messages.js';
import type { TestGateway } from './support/gateway.js';
import { useGatewayStack } from './support/stack.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { callEtcd, collectWatch, rawClient, rawUnary, rawWatch } from './support/raw-client.js';
import { probeTls } from './support/tls-probe.js';

/** root and tenant-b may do anything: two identities for per-identity limits. */
const POLICY = {
  roles: { all: { keys: [{ all: true, access: 'readwrite' }] } },
  bindings: [
    { match: { cn: 'root' }, roles: ['all'] },
    { match: { cn: 'tenant-b' }, roles: ['all'] },
  ],
};

const stack = useGatewayStack({ gateway: false });

async function metric(gate: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), name, labels);
}

async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const range = encode('etcdserverpb.RangeRequest', { key: Buffer.from('/limits/x') });

function rangeAs(client: grpc.Client): Promise<grpc.ServiceError | undefined> {
  return rawUnary(client, '/etcdserverpb.KV/Range', range).then(
    () => undefined,
    (error: grpc.ServiceError) => error,
  );
}

describe('per-identity request rate', () => {
  it('answers RESOURCE_EXHAUSTED past the burst, audits it, spares other identities, and recovers', async () => {
    const gate = await stack.startGateway({ policy: POLICY, overrides: { limits: { requestsPerSecond: 2, burst: 3 } } });
    const root = rawClient(gate.endpoint, stack.pki, 'root');
    const other = rawClient(gate.endpoint, stack.pki, 'tenant-b');
    try {
      const results = [];
      for (let i = 0; i < 6; i += 1) results.push(await rangeAs(root));
      const refused = results.filter((r) => r !== undefined);
      expect(results.slice(0, 3)).toEqual([undefined, undefined, undefined]);
      expect(refused.length).toBeGreaterThan(0);
      for (const error of refused) {
        expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(error?.details).toBe('etcdgate: rate limit exceeded');
      }
      expect(await rangeAs(other)).toBeUndefined();
      const records = await gate.auditRecords();
      const limited = records.filter((r) => (r['etcd'] as { decision: { reason?: string } } | undefined)?.decision.reason === 'rate limited');
      expect(limited).toHaveLength(refused.length);
      expect(limited[0]).toMatchObject({ user: { name: 'root' }, event: { outcome: 'failure' }, etcd: { response: { code_name: 'RESOURCE_EXHAUSTED' } } });
      expect(await metric(gate, 'etcdgate_requests_total', { method: 'Range', code: 'RESOURCE_EXHAUSTED' })).toBe(refused.length);
      // Tokens refill at 2/s: the caller gets through again.
      expect(await eventually(() => rangeAs(root), (r) => r === undefined)).toBeUndefined();
    } finally {
      root.close();
      other.close();
      await gate.stop();
    }
  });
});

describe('watch creates and the request rate', () => {
  it('takes a token for every create, a denied one too: a flood of denied creates is rate limited', async () => {
    // root may read /limits/ only: creates elsewhere are denied by policy.
    const policy = { roles: { reader: { keys: [{ prefix: '/limits/', access: 'read' }] } }, bindings: [{ match: { cn: 'root' }, roles: ['reader'] }] };
    const gate = await stack.startGateway({ policy, overrides: { limits: { requestsPerSecond: 1, burst: 4 } } });
    const root = rawClient(gate.endpoint, stack.pki, 'root');
    const create = (key: string): Buffer => encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from(key) } });
    try {
      const stream = rawWatch(root);
      const answers = collectWatch(stream, (rs) => rs.length >= 8);
      // Opening the stream took one token; three are left for creates.
      for (let i = 0; i < 8; i += 1) stream.write(create(`/secret/${i}`));
      const reasons = (await answers).map((r) => {
        expect(r).toMatchObject({ created: true, canceled: true, watch_id: '-1' });
        return r['cancel_reason'];
      });
      expect(reasons[0]).toBe('etcdserver: permission denied');
      const limited = reasons.filter((r) => r === 'etcdgate: rate limit exceeded').length;
      // A token may refill while the creates arrive; the old code let every denied create through untaxed.
      expect(limited).toBeGreaterThanOrEqual(3);
      expect(reasons.slice(reasons.length - limited).every((r) => r === 'etcdgate: rate limit exceeded')).toBe(true);
      const records = (await gate.auditRecords()).filter((r) => (r['etcdgate'] as { event_kind?: string }).event_kind === 'watch.create');
      expect(records).toHaveLength(8);
      expect(records.filter((r) => (r['etcd'] as { decision: { reason?: string } }).decision.reason === 'rate limited')).toHaveLength(limited);
      stream.cancel();
    } finally {
      root.close();
      await gate.stop();
    }
  });
});

describe('watchers per identity', () => {
  it('refuses the create past the limit in-band, and frees the slot on cancel', async () => {
    const gate = await stack.startGateway({ policy: POLICY, overrides: { limits: { maxWatchersPerIdentity: 2 } } });
    const root = rawClient(gate.endpoint, stack.pki, 'root');
    const other = rawClient(gate.endpoint, stack.pki, 'tenant-b');
    const create = (key: string): Buffer => encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from(key) } });
    try {
      // Two watchers on two streams: the limit is per identity, not per stream.
      const first = rawWatch(root);
      const firstCreated = collectWatch(first, (rs) => rs.length >= 1);
      first.write(create('/w/1'));
      const firstId = (await firstCreated)[0]?.['watch_id'];
      const second = rawWatch(root);
      const answers = collectWatch(second, (rs) => rs.length >= 2);
      second.write(create('/w/2'));
      second.write(create('/w/3'));
      const [ok, refused] = await answers;
      expect(ok).toMatchObject({ created: true });
      expect(ok?.['canceled']).toBeUndefined();
      expect(refused).toMatchObject({ created: true, canceled: true, watch_id: '-1', cancel_reason: 'etcdgate: too many watchers' });
      // Another identity has its own allowance.
      const theirs = rawWatch(other);
      const theirsCreated = collectWatch(theirs, (rs) => rs.length >= 1);
      theirs.write(create('/w/4'));
      expect((await theirsCreated)[0]?.['canceled']).toBeUndefined();
      // Cancelling one of root's watchers makes room again.
      const cancelled = collectWatch(first, (rs) => rs.some((r) => r['canceled'] === true));
      first.write(encode('etcdserverpb.WatchRequest', { cancel_request: { watch_id: firstId } }));
      await cancelled;
      const again = collectWatch(second, (rs) => rs.length >= 1);
      second.write(create('/w/5'));
      expect((await again)[0]).toMatchObject({ created: true });
      expect((await again)[0]?.['canceled']).toBeUndefined();
      const records = await gate.auditRecords();
      expect(records.filter((r) => (r['etcd'] as { decision: { reason?: string } } | undefined)?.decision.reason === 'too many watchers')).toHaveLength(1);
      for (const stream of [first, second, theirs]) stream.cancel();
    } finally {
      root.close();
      other.close();
      await gate.stop();
    }
  });
});

describe('connection limits', () => {
  it('closes a client that never starts its TLS handshake after handshakeTimeoutMs (no_tls), and one that stalls inside it (timeout), audited and counted', async () => {
    const gate = await stack.startGateway({ overrides: { limits: { handshakeTimeoutMs: 300 } } });
    try {
      const port = Number(new URL(gate.endpoint).port);
      // Silent: never a TLS byte, so it is refused as no_tls (issue 13.6), not as a TLS timeout.
      for (const [reason, bytes] of [
        ['no_tls', Buffer.alloc(0)],
        ['timeout', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])],
      ] as const) {
        const before = await metric(gate, 'etcdgate_tls_handshake_failures_total', { reason });
        const socket = net.connect(port, '127.0.0.1');
        const localPort = await new Promise<number>((resolve) => socket.once('connect', () => resolve(socket.localPort ?? 0)));
        if (bytes.length > 0) socket.write(bytes);
        await new Promise<void>((resolve) => socket.once('close', () => resolve()));
        await vi.waitFor(async () => expect(await metric(gate, 'etcdgate_tls_handshake_failures_total', { reason })).toBe(before + 1));
        const records = await eventually(() => gate.auditRecords(), (rs) => rs.some((r) => (r['source'] as { port?: number }).port === localPort));
        expect(records.find((r) => (r['source'] as { port?: number }).port === localPort)).toMatchObject({ event: { reason } });
      }
    } finally {
      await gate.stop();
    }
  });

  it('drops connections beyond maxConnections unserved, and counts them', async () => {
    const gate = await stack.startGateway({ overrides: { limits: { maxConnections: 2 } } });
    const held: tls.TLSSocket[] = [];
    try {
      const port = Number(new URL(gate.endpoint).port);
      for (let i = 0; i < 2; i += 1) {
        const pair = stack.pki.client('root');
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(stack.pki.ca), cert: readFileSync(pair.cert), key: readFileSync(pair.key), ALPNProtocols: ['h2'] });
        socket.on('error', () => undefined);
        await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
        held.push(socket);
      }
      const refused = await probeTls(port, stack.pki, stack.pki.client('root'));
      expect(refused.served).toBe(false);
      expect(await metric(gate, 'etcdgate_tls_handshake_failures_total', { reason: 'connection_limit' })).toBe(1);
      for (const socket of held.splice(0)) socket.destroy();
      expect((await eventually(() => probeTls(port, stack.pki, stack.pki.client('root')), (r) => r.served)).served).toBe(true);
    } finally {
      for (const socket of held) socket.destroy();
      await gate.stop();
    }
  });

  it('announces maxStreamsPerConnection in its HTTP/2 SETTINGS', async () => {
    const gate = await stack.startGateway({ overrides: { limits: { maxStreamsPerConnection: 7 } } });
    const pair = stack.pki.client('root');
    const session = http2.connect(gate.endpoint, { ca: readFileSync(stack.pki.ca), cert: readFileSync(pair.cert), key: readFileSync(pair.key), servername: 'localhost' });
    try {
      session.on('error', () => undefined);
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      expect(settings.maxConcurrentStreams).toBe(7);
    } finally {
      session.destroy();
      await gate.stop();
    }
  });
});

describe('a watcher that stops reading', () => {
  it('is ended with RESOURCE_EXHAUSTED once its unread data passes the bound; memory stays bounded', async () => {
    const gate = await stack.startGateway({ policy: POLICY, overrides: { limits: { maxWatcherBufferBytes: 256 * 1024 } } });
    const reader = rawClient(gate.endpoint, stack.pki, 'root');
    const writer = rawClient(gate.endpoint, stack.pki, 'tenant-b');
    try {
      const stream = rawWatch(reader);
      const created = collectWatch(stream, (rs) => rs.length >= 1);
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/slow/key') } }));
      await created;
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.pause();

      // 120 events of 512 KiB (60 MiB) from one pre-encoded request, so the test itself allocates nothing per put.
      const put = encode('etcdserverpb.PutRequest', { key: Buffer.from('/slow/key'), value: Buffer.alloc(512 * 1024, 0x61) });
      const before = process.memoryUsage();
      for (let i = 0; i < 120; i += 1) await rawUnary(writer, '/etcdserverpb.KV/Put', put);
      const after = process.memoryUsage();
      const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
      expect(grown).toBeLessThan(40 * 1024 * 1024);

      const records = await eventually(() => gate.auditRecords(), (rs) => rs.some((r) => (r['etcdgate'] as { event_kind: string }).event_kind === 'watch.end'));
      const ended = records.find((r) => (r['etcdgate'] as { event_kind: string }).event_kind === 'watch.end');
      expect(ended).toMatchObject({ etcd: { response: { code_name: 'RESOURCE_EXHAUSTED', message: 'etcdgate: watcher too slow' } } });
      expect(await metric(gate, 'etcdgate_requests_total', { method: 'Watch', code: 'RESOURCE_EXHAUSTED' })).toBe(1);
      expect(await metric(gate, 'etcdgate_watchers')).toBe(0);
      // Once the client reads again it gets what was buffered, then the status.
      stream.resume();
      expect(await status).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'etcdgate: watcher too slow' });
      // etcdgate is fine: the writer's calls still work.
      const got = await callEtcd(writer, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/slow/key'), count_only: true }], 'RangeResponse');
      expect(got['count']).toBe('1');
    } finally {
      reader.close();
      writer.close();
      await gate.stop();
    }
  }, 60_000);
});
