/**
 * The audit trail never says "failure" for a write etcd may have applied (issue 13.5).
 * Once etcdgate has handed a request to etcd, a call that ends without etcd's answer (the
 * client resets the stream, the deadline passes, the connection to etcd is lost) is
 * recorded with `event.outcome: unknown` and `etcdgate.request_sent: true`; a call that
 * failed before the request was handed over is `failure` with `request_sent: false`.
 *
 * The attack: Puts reset by the client 0-3 ms after sending, then what etcd applied
 * (read straight from etcd) compared with the records. The other cases are held
 * deterministically by a relay between etcdgate and etcd that lets requests through but
 * holds back etcd's answers (test/support/stall-relay.ts).
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { b, valueInEtcd } from './support/enforcement.js';
import { encode } from './support/etcd-messages.js';
import type { TestGateway } from './support/gateway.js';
import { rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';
import { startStallRelay, type StallRelay } from './support/stall-relay.js';

const PUT = '/etcdserverpb.KV/Put';

const stack = useGatewayStack({ gateway: false });
let relay: StallRelay;
let gate: TestGateway;
let direct: grpc.Client;
let session: http2.ClientHttp2Session;

beforeAll(async () => {
  relay = await startStallRelay(stack.etcd.endpoints[0] as string);
  gate = await stack.startGateway({ upstream: [relay.endpoint] });
  direct = rawClient(stack.etcd.endpoints[0] as string, stack.pki, 'root');
  session = connect();
});

afterAll(async () => {
  session?.destroy();
  direct?.close();
  await gate?.stop();
  await relay?.close();
});

function connect(): http2.ClientHttp2Session {
  const pair = stack.pki.client('root');
  const s = http2.connect(gate.endpoint, { ca: readFileSync(stack.pki.ca), cert: readFileSync(pair.cert), key: readFileSync(pair.key), servername: 'localhost' });
  s.on('error', () => undefined);
  return s;
}

function framed(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Starts a Put of `key` on the shared session; the caller resets or awaits it. */
function startPut(key: string, headers: http2.OutgoingHttpHeaders = {}): { stream: http2.ClientHttp2Stream; closed: Promise<string | undefined> } {
  const stream = session.request({ ':method': 'POST', ':path': PUT, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  stream.on('error', () => undefined);
  stream.on('data', () => undefined);
  let status: string | undefined;
  const take = (h: http2.IncomingHttpHeaders): void => {
    const value = h['grpc-status'];
    if (typeof value === 'string') status = value;
  };
  stream.on('response', take);
  stream.on('trailers', take);
  const closed = new Promise<string | undefined>((resolve) => stream.on('close', () => resolve(status)));
  stream.end(framed(encode('etcdserverpb.PutRequest', { key: b(key), value: b('v') })));
  return { stream, closed };
}

type AuditRecord = Record<string, unknown>;
const keyOf = (r: AuditRecord): unknown => ((r['etcd'] as { request?: { key?: unknown } } | undefined)?.request?.key);
const outcomeOf = (r: AuditRecord): unknown => (r['event'] as { outcome?: unknown }).outcome;
const sentOf = (r: AuditRecord): unknown => (r['etcdgate'] as { request_sent?: unknown }).request_sent;
const codeOf = (r: AuditRecord): unknown => ((r['etcd'] as { response?: { code?: unknown } } | undefined)?.response?.code);
const isPut = (r: AuditRecord): boolean => (r['event'] as { action?: unknown }).action === 'etcd.kv.put';

/** The one record of the call that carried `key`, once written. */
async function recordOf(key: string): Promise<AuditRecord> {
  let found: AuditRecord[] = [];
  await vi.waitFor(async () => {
    found = (await gate.auditRecords()).filter((r) => keyOf(r) === key);
    expect(found.length).toBeGreaterThan(0);
  }, { timeout: 10_000, interval: 50 });
  expect(found).toHaveLength(1);
  return found[0] as AuditRecord;
}

describe('calls that end without etcd\'s answer', () => {
  it('Puts reset by the client 0-3 ms after sending: every write etcd applied has a record that is success or unknown, none failure', async () => {
    const count = 120;
    const keys = Array.from({ length: count }, (_, i) => `/attack/reset/${String(i)}`);
    // One at a time, as a client that gives up on each write would.
    for (const [i, key] of keys.entries()) {
      const put = startPut(key);
      setTimeout(() => put.stream.close(http2.constants.NGHTTP2_CANCEL), i % 4);
      await put.closed;
    }

    const applied: string[] = [];
    for (const key of keys) if ((await valueInEtcd(direct, key)) !== undefined) applied.push(key);
    // Every write etcd applied must have its record (written once the call has ended).
    await vi.waitFor(async () => {
      const written = new Set((await gate.auditRecords()).map(keyOf));
      expect(applied.filter((key) => !written.has(key))).toEqual([]);
    }, { timeout: 10_000, interval: 100 });
    const records = (await gate.auditRecords()).filter(isPut);
    const wrong: string[] = [];
    for (const key of applied) {
      const own = records.filter((r) => keyOf(r) === key);
      if (own.length !== 1 || !['success', 'unknown'].includes(String(outcomeOf(own[0] as AuditRecord)))) {
        wrong.push(`${key}: ${own.map((r) => `${String(outcomeOf(r))}/${String(codeOf(r))}`).join(',')}`);
      }
    }
    const outcomes = records.filter((r) => String(keyOf(r)).startsWith('/attack/reset/')).map((r) => String(outcomeOf(r)));
    console.log(`reset attack: ${String(applied.length)} of ${String(count)} applied; keyed records: ${JSON.stringify(Object.fromEntries(['success', 'unknown', 'failure'].map((o) => [o, outcomes.filter((x) => x === o).length])))}`);
    expect(wrong).toEqual([]);
    // A record that says unknown says the request was sent.
    for (const record of records) if (outcomeOf(record) === 'unknown') expect(sentOf(record)).toBe(true);
  });

  it('a Put etcd applied whose answer etcdgate never saw (client reset while etcd\'s answer is held back) is unknown, request_sent true', async () => {
    const key = '/attack/held/reset';
    relay.stall();
    try {
      const put = startPut(key);
      await vi.waitFor(async () => expect(await valueInEtcd(direct, key)).toBe('v'), { timeout: 10_000, interval: 20 });
      put.stream.close(http2.constants.NGHTTP2_CANCEL);
      await put.closed;
      const record = await recordOf(key);
      expect(outcomeOf(record)).toBe('unknown');
      expect(sentOf(record)).toBe(true);
      expect(codeOf(record)).toBe(1);
    } finally {
      relay.resume();
    }
  });

  it('a Put whose deadline passes after etcd applied it is unknown, request_sent true', async () => {
    const key = '/attack/held/deadline';
    relay.stall();
    try {
      const put = startPut(key, { 'grpc-timeout': '3S' });
      await vi.waitFor(async () => expect(await valueInEtcd(direct, key)).toBe('v'), { timeout: 2500, interval: 20 });
      expect(await put.closed).toBe('4');
      const record = await recordOf(key);
      expect(outcomeOf(record)).toBe('unknown');
      expect(sentOf(record)).toBe(true);
      expect(codeOf(record)).toBe(4);
    } finally {
      relay.resume();
    }
  });

  it('a Put etcd applied before the connection to etcd was lost is unknown, request_sent true', async () => {
    const key = '/attack/held/lost';
    relay.stall();
    try {
      const put = startPut(key);
      await vi.waitFor(async () => expect(await valueInEtcd(direct, key)).toBe('v'), { timeout: 10_000, interval: 20 });
      relay.dropConnections();
      expect(await put.closed).toBe('14');
      const record = await recordOf(key);
      expect(outcomeOf(record)).toBe('unknown');
      expect(sentOf(record)).toBe(true);
    } finally {
      relay.resume();
    }
  });

  it('an allowed Put answered by etcd is success; a Put never handed to etcd (etcd unreachable) is failure, request_sent false', async () => {
    const ok = startPut('/attack/plain/ok');
    expect(await ok.closed).toBe('0');
    const okRecord = await recordOf('/attack/plain/ok');
    expect(outcomeOf(okRecord)).toBe('success');
    expect(sentOf(okRecord)).toBeUndefined();

    relay.refuse();
    relay.dropConnections();
    // Once etcdgate has seen its connections to etcd go, nothing it is given can reach etcd.
    await vi.waitFor(async () => {
      const ready = (await (await fetch(`${gate.adminUrl}/readyz`)).json()) as { checks: { upstream: boolean } };
      expect(ready.checks.upstream).toBe(false);
    }, { timeout: 15_000, interval: 100 });
    const key = '/attack/plain/unreachable';
    const put = startPut(key);
    expect(await put.closed).toBe('14');
    const record = await recordOf(key);
    expect(outcomeOf(record)).toBe('failure');
    expect(sentOf(record)).toBe(false);
    expect(await valueInEtcd(direct, key)).toBeUndefined();
  });
});
