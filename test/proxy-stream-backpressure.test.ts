/**
 * A stream's requests wait while etcd is slow to take them, and go on once it takes them
 * again. etcd (behind a relay that holds back everything etcd sends, its WINDOW_UPDATEs
 * included) stops opening its window, so etcdgate's queue to etcd grows past its mark and
 * etcdgate stops reading the client's stream. Before this test, nothing resumed it: the
 * stream stayed paused for good once etcd had been slow once, its later requests never
 * read. Checked on Watch: every create sent while etcd was held (4 MiB of them) is
 * answered once it is let go. And refusals waiting behind a create etcd has not answered
 * are bounded: etcdgate stops reading the stream instead of holding every one of them.
 * (LeaseKeepAlive resumes the same way; there a held etcd
 * also holds each renewal's lease lookup, so its queue to etcd never reaches the mark.)
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import type { TestGateway } from './support/gateway.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { rawClient, rawWatch } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';
import { startStallRelay, type StallRelay } from './support/stall-relay.js';

const stack = useGatewayStack({ gateway: false });
let relay: StallRelay;
let gate: TestGateway;
let client: grpc.Client;

beforeAll(async () => {
  relay = await startStallRelay(stack.etcd.endpoints[0] as string);
  // root may watch /backpressure/ and nothing else: creates elsewhere are refused in-band.
  gate = await stack.startGateway({ upstream: [relay.endpoint], policy: { roles: { bp: { keys: [{ prefix: '/backpressure/', access: 'readwrite' }] } }, bindings: [{ match: { cn: 'root' }, roles: ['bp'] }] } });
  client = rawClient(gate.endpoint, stack.pki, 'root');
});

afterAll(async () => {
  client?.close();
  await gate?.stop();
  await relay?.close();
});

/** etcdgate_denials_total over every label, from etcdgate's own /metrics. */
async function denials(): Promise<number> {
  const response = await fetch(`${gate.adminUrl}/metrics`);
  const samples = parseExposition(await response.text());
  return findSamples(samples, 'etcdgate_denials_total', {}).reduce((total, sample) => total + sample.value, 0);
}

/** Writes messages `from`..`to` to a client stream, respecting grpc-js's own backpressure. */
async function writeAll(stream: grpc.ClientDuplexStream<Buffer, Buffer>, message: (i: number) => Buffer, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) {
    if (!stream.write(message(i))) await new Promise((resolve) => stream.once('drain', resolve));
  }
}

describe('a stream whose requests etcd is slow to take', () => {
  it('Watch: 1,000 creates of 4 KiB keys sent while etcd is held are all answered once it is let go', async () => {
    const COUNT = 1000;
    const stream = rawWatch(client);
    let created = 0;
    stream.on('data', (chunk: Buffer) => {
      const response = decode('etcdserverpb.WatchResponse', chunk) as { created?: boolean };
      if (response.created === true) created += 1;
    });
    const create = (i: number): Buffer => encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from(`/backpressure/${String(i).padStart(6, '0')}/${'k'.repeat(4096)}`) } });
    try {
      // The stream is open at etcd before it is held.
      stream.write(create(0));
      await vi.waitFor(() => expect(created).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 100 });
      relay.stall();
      // 4 MiB of requests: far more than etcd's window and etcdgate's queue mark. grpc-js
      // holds what etcdgate does not read.
      const writing = writeAll(stream, create, 1, COUNT);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      relay.resume();
      // Before the fix, etcdgate never read this stream again: the count stopped short.
      await vi.waitFor(() => expect(created).toBeGreaterThanOrEqual(COUNT + 1), { timeout: 60_000, interval: 100 });
      await writing;
      expect(created).toBe(COUNT + 1);
    } finally {
      relay.resume();
      stream.cancel();
    }
  }, 120_000);

  it('refused creates queued behind a create etcd has not answered: etcdgate stops reading, then answers all of them in order', async () => {
    const COUNT = 10_000;
    const stream = rawWatch(client);
    const responses: { created?: boolean; canceled?: boolean; watch_id?: string }[] = [];
    stream.on('data', (chunk: Buffer) => responses.push(decode('etcdserverpb.WatchResponse', chunk) as { created?: boolean; canceled?: boolean; watch_id?: string }));
    const allowed = encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/backpressure/held') } });
    // 1 KiB keys: etcdgate's stream window (128 KiB) holds about 128 of them, so what it reads
    // past its bound is small next to what it would read without one.
    const refused = encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from(`/denied/${'d'.repeat(1024)}`) } });
    const deniedBefore = await denials();
    try {
      stream.write(allowed);
      await vi.waitFor(() => expect(responses.length).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 100 });
      relay.stall();
      // etcd's answer to this create is held, so every refusal after it must wait its turn.
      stream.write(allowed);
      const writing = writeAll(stream, () => refused, 1, COUNT);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // What etcdgate read while the create was unanswered (each refusal is counted as it
      // is read): bounded. Without the bound it read all 10,000 in this time.
      const takenWhileHeld = (await denials()) - deniedBefore;
      relay.resume();
      await vi.waitFor(() => expect(responses.length).toBeGreaterThanOrEqual(COUNT + 2), { timeout: 60_000, interval: 100 });
      await writing;
      expect(takenWhileHeld).toBeLessThan(COUNT / 4);
      // The held create's answer comes first (clients pair answers with their creates in order), then every refusal.
      expect(responses[1]?.created).toBe(true);
      expect(responses[1]?.canceled).not.toBe(true);
      const refusals = responses.slice(2);
      expect(refusals.length).toBe(COUNT);
      expect(refusals.every((r) => r.created === true && r.canceled === true && r.watch_id === '-1')).toBe(true);
    } finally {
      relay.resume();
      stream.cancel();
    }
  }, 120_000);
});
