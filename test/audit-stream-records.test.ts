/**
 * Long-lived streams through a real etcdgate and etcd leave the records the schema
 * promises: Watch one `watch.create` per watcher (allowed with its watch id, refused
 * with the denial) and one `watch.end` when the client cancels the watcher or closes the
 * stream, counting the events delivered; LeaseKeepAlive `keepalive.open`, a
 * `keepalive.close` counting renewals and leases, and `keepalive.deny` for a refused
 * renewal; Snapshot `snapshot.start` and `snapshot.end` with the bytes sent. Every
 * record of a call that carried a W3C `traceparent` has its trace id.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient, rawWatch } from './support/raw-client.js';

const POLICY = {
  roles: {
    tenant: { keys: [{ prefix: '/tenants/{cn}/', access: 'readwrite' }], capabilities: ['lease'] },
    backup: { capabilities: ['snapshot'] },
    admin: { keys: [{ all: true, access: 'readwrite' }], capabilities: ['admin'] },
  },
  bindings: [
    { match: { cn: 'tenant-a' }, roles: ['tenant'] },
    { match: { o: 'backup-operators' }, roles: ['backup'] },
    { match: { cn: 'root' }, roles: ['admin'] },
  ],
};

const passThrough = (buffer: Buffer): Buffer => buffer;
const b = (text: string): Buffer => Buffer.from(text, 'utf8');

const stack = useGatewayStack({ policy: POLICY });
let tenantA: grpc.Client;
let backup: grpc.Client;
let direct: grpc.Client;

beforeAll(() => {
  tenantA = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
  backup = rawClient(stack.gate.endpoint, stack.pki, 'backup');
  direct = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
});

afterAll(() => {
  for (const client of [tenantA, backup, direct]) client?.close();
});

interface AuditRecord {
  event: { type: string[]; outcome: string; action: string };
  /** Absent on connection records. */
  etcd: {
    request: Record<string, unknown>;
    decision: { allowed: boolean };
    response: { code: number; count?: number; bytes?: number; message?: string };
  };
  trace?: { id: string };
  etcdgate: { event_kind: string };
}

/** A fresh W3C trace context; its trace id tells one scenario's records from the others'. */
function traceContext(): { traceId: string; metadata: grpc.Metadata } {
  const traceId = randomBytes(16).toString('hex');
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
  return { traceId, metadata };
}

/** Records carrying `traceId`, polled until `done` holds for them (the proxy records stream ends asynchronously). */
async function recordsOf(traceId: string, done: (records: AuditRecord[]) => boolean): Promise<AuditRecord[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const records = ((await stack.gate.auditRecords()) as unknown as AuditRecord[]).filter((r) => r.trace?.id === traceId);
    if (done(records) || Date.now() > deadline) return records;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ofKind = (records: AuditRecord[], kind: string): AuditRecord[] => records.filter((r) => r.etcdgate.event_kind === kind);

/** Waits (up to 10 s) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every WatchResponse of a raw watch stream, decoded, from the first one on. */
class WatchLog {
  readonly responses: Record<string, unknown>[] = [];
  constructor(readonly stream: grpc.ClientDuplexStream<Buffer, Buffer>) {
    stream.on('data', (chunk: Buffer) => this.responses.push(decode('etcdserverpb.WatchResponse', chunk)));
  }

  create(key: string, rangeEnd: string): void {
    this.stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: b(key), range_end: b(rangeEnd) } }));
  }

  /** Watch id of the n-th `created` response (etcd omits id 0 on the wire). */
  async created(n: number): Promise<string> {
    await until(() => this.responses.filter((r) => r['created'] === true).length > n, `created response #${String(n)}`);
    const response = this.responses.filter((r) => r['created'] === true)[n];
    return String(response?.['watch_id'] ?? '0');
  }

  events(watchId: string): number {
    return this.responses
      .filter((r) => String(r['watch_id'] ?? '0') === watchId)
      .reduce((n, r) => n + ((r['events'] as unknown[] | undefined)?.length ?? 0), 0);
  }
}

const put = (client: grpc.Client, key: string, lease?: string): Promise<Record<string, unknown>> =>
  callEtcd(client, 'KV', 'Put', ['PutRequest', { key: b(key), value: b('v'), ...(lease === undefined ? {} : { lease }) }], 'PutResponse');

describe('Watch', () => {
  it('records each watcher created or refused, and its end when cancelled or when the stream closes', async () => {
    const { traceId, metadata } = traceContext();
    const log = new WatchLog(rawWatch(tenantA, metadata));
    log.create('/tenants/tenant-a/w1/', '/tenants/tenant-a/w10');
    const first = await log.created(0);
    log.create('/tenants/tenant-b/', '/tenants/tenant-b0');
    const refused = await log.created(1);
    expect(refused).toBe('-1');

    for (const n of [1, 2, 3]) await put(tenantA, `/tenants/tenant-a/w1/${String(n)}`);
    await until(() => log.events(first) === 3, 'three events on the first watcher');
    log.stream.write(encode('etcdserverpb.WatchRequest', { cancel_request: { watch_id: first } }));
    await until(() => log.responses.some((r) => r['canceled'] === true && String(r['watch_id'] ?? '0') === first), 'cancel confirmation');

    log.create('/tenants/tenant-a/w2/', '/tenants/tenant-a/w20');
    const second = await log.created(2);
    for (const n of [1, 2]) await put(tenantA, `/tenants/tenant-a/w2/${String(n)}`);
    await until(() => log.events(second) === 2, 'two events on the second watcher');
    log.stream.cancel();

    const records = await recordsOf(traceId, (rs) => ofKind(rs, 'watch.end').length >= 2);
    const creates = ofKind(records, 'watch.create');
    expect(creates).toHaveLength(3);
    const [createdFirst, createdRefused, createdSecond] = creates;
    expect(createdFirst).toMatchObject({
      event: { action: 'etcd.watch.watch', outcome: 'success', type: ['access', 'start'] },
      etcd: { request: { key: '/tenants/tenant-a/w1/', watch_id: first }, decision: { allowed: true }, response: { code: 0 } },
    });
    expect(createdRefused).toMatchObject({
      event: { outcome: 'failure', type: ['access', 'start', 'denied'] },
      etcd: { request: { key: '/tenants/tenant-b/' }, decision: { allowed: false }, response: { code: 7 } },
    });
    expect(createdSecond?.etcd.request['watch_id']).toBe(second);

    const ends = ofKind(records, 'watch.end');
    expect(ends).toHaveLength(2);
    const endOf = (id: string): AuditRecord | undefined => ends.find((r) => r.etcd.request['watch_id'] === id);
    // Cancelled by request: a normal end. Ended by the client closing the stream: CANCELLED (see docs/audit-schema.md).
    expect(endOf(first)).toMatchObject({
      event: { type: ['access', 'end'], outcome: 'success' },
      etcd: { request: { key: '/tenants/tenant-a/w1/' }, response: { code: 0, count: 3 } },
    });
    expect(endOf(second)).toMatchObject({ etcd: { request: { key: '/tenants/tenant-a/w2/' }, response: { code: 1, message: 'stream closed', count: 2 } } });
    // No watcher ended twice, and the refused one never "ended".
    expect(records).toHaveLength(5);
  });
});

describe('LeaseKeepAlive', () => {
  const keepAlive = (metadata: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> => {
    const stream = tenantA.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, metadata);
    stream.on('error', () => undefined);
    return stream;
  };
  const grant = async (client: grpc.Client): Promise<string> =>
    String((await callEtcd(client, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 60 }], 'LeaseGrantResponse'))['ID']);
  const renewal = (id: string): Buffer => encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id });

  it('records the stream opening and closing with the renewals and leases it carried', async () => {
    const { traceId, metadata } = traceContext();
    const one = await grant(tenantA);
    const two = await grant(tenantA);
    await put(tenantA, '/tenants/tenant-a/ka', one);

    const stream = keepAlive(metadata);
    let answers = 0;
    stream.on('data', () => {
      answers += 1;
    });
    const status = new Promise<grpc.StatusObject>((resolve) => stream.once('status', resolve));
    for (const id of [one, one, two, one]) stream.write(renewal(id));
    await until(() => answers === 4, 'four keepalive answers');
    stream.end();
    expect((await status).code).toBe(grpc.status.OK);

    const records = await recordsOf(traceId, (rs) => ofKind(rs, 'keepalive.close').length >= 1);
    expect(records.map((r) => r.etcdgate.event_kind)).toEqual(['keepalive.open', 'keepalive.close']);
    expect(records[0]).toMatchObject({ event: { action: 'etcd.lease.lease_keep_alive', type: ['change', 'start'], outcome: 'success' } });
    expect(records[1]).toMatchObject({
      event: { type: ['change', 'end'], outcome: 'success' },
      etcd: { request: { leases: 2 }, response: { code: 0, count: 4 } },
    });
  });

  it('records a refused renewal as keepalive.deny and ends the stream', async () => {
    const { traceId, metadata } = traceContext();
    // A lease tenant-a may not renew: it holds a key of tenant-b (set up directly in etcd).
    const foreign = await grant(direct);
    await put(direct, '/tenants/tenant-b/held', foreign);

    const stream = keepAlive(metadata);
    const status = new Promise<grpc.StatusObject>((resolve) => stream.once('status', resolve));
    stream.write(renewal(foreign));
    expect((await status).code).toBe(grpc.status.PERMISSION_DENIED);

    const records = await recordsOf(traceId, (rs) => ofKind(rs, 'keepalive.close').length >= 1);
    expect(records.map((r) => r.etcdgate.event_kind)).toEqual(['keepalive.open', 'keepalive.deny', 'keepalive.close']);
    expect(records[1]).toMatchObject({
      event: { type: ['change', 'denied'], outcome: 'failure' },
      // The lease as etcdctl prints it (hex) and as the API carries it (decimal).
      etcd: { request: { id: BigInt(foreign).toString(16).padStart(16, '0'), id_decimal: foreign }, decision: { allowed: false }, response: { code: 7 } },
    });
    expect(records[2]).toMatchObject({ event: { outcome: 'failure' }, etcd: { response: { code: 7, count: 0 } } });
  });
});

describe('Snapshot', () => {
  const snapshot = (client: grpc.Client, metadata: grpc.Metadata): Promise<{ status: grpc.StatusObject; bytes: number }> =>
    new Promise((resolve) => {
      const stream = client.makeServerStreamRequest('/etcdserverpb.Maintenance/Snapshot', passThrough, passThrough, Buffer.alloc(0), metadata);
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      stream.on('error', () => undefined);
      stream.on('status', (status) => resolve({ status, bytes }));
    });

  it('records the start and the end of a snapshot with the bytes sent', async () => {
    const { traceId, metadata } = traceContext();
    const { status, bytes } = await snapshot(backup, metadata);
    expect(status.code).toBe(grpc.status.OK);
    expect(bytes).toBeGreaterThan(0);
    const records = await recordsOf(traceId, (rs) => ofKind(rs, 'snapshot.end').length >= 1);
    expect(records.map((r) => r.etcdgate.event_kind)).toEqual(['snapshot.start', 'snapshot.end']);
    expect(records[0]).toMatchObject({ event: { action: 'etcd.maintenance.snapshot', type: ['admin', 'start'], outcome: 'success' } });
    expect(records[1]).toMatchObject({ event: { type: ['admin', 'end'], outcome: 'success' }, etcd: { response: { code: 0, bytes } } });
  });

  it('records a refused snapshot once, as its end, and no start', async () => {
    const { traceId, metadata } = traceContext();
    const { status } = await snapshot(tenantA, metadata);
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
    const records = await recordsOf(traceId, (rs) => rs.length >= 1);
    expect(records.map((r) => r.etcdgate.event_kind)).toEqual(['snapshot.end']);
    expect(records[0]).toMatchObject({ event: { type: ['admin', 'end', 'denied'], outcome: 'failure' }, etcd: { decision: { allowed: false } } });
  });
});

describe('trace context', () => {
  it('puts the traceparent trace id on a unary call record, and none without one', async () => {
    const { traceId, metadata } = traceContext();
    await callEtcd(tenantA, 'KV', 'Put', ['PutRequest', { key: b('/tenants/tenant-a/traced'), value: b('v') }], 'PutResponse', metadata);
    await put(tenantA, '/tenants/tenant-a/untraced');
    const records = (await stack.gate.auditRecords()) as unknown as AuditRecord[];
    const traced = records.find((r) => r.etcd?.request['key'] === '/tenants/tenant-a/traced');
    const untraced = records.find((r) => r.etcd?.request['key'] === '/tenants/tenant-a/untraced');
    expect(traced?.trace?.id).toBe(traceId);
    expect(untraced).toBeDefined();
    expect(untraced?.trace).toBeUndefined();
  });
});
