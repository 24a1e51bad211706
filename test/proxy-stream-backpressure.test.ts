/**
 * A stream's requests wait while etcd is slow to take them, and go on once it takes them
 * again. etcd (behind a relay that holds back everything etcd sends, its WINDOW_UPDATEs
 * included) stops opening its window, so etcdgate's queue to etcd grows past its mark and
 * etcdgate stops reading the client's stream. Before this test, nothing resumed it: the
 * stream stayed paused for good once etcd had been slow once, its later requests never
 * read. Checked on Watch: every create sent while etcd was held (4 MiB of them) is
 * answered once it is let go. (LeaseKeepAlive resumes the same way; there a held etcd
 * also holds each renewal's lease lookup, so its queue to etcd never reaches the mark.)
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import type { TestGateway } from './support/gateway.js';
import { rawClient, rawWatch } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';
import { startStallRelay, type StallRelay } from './support/stall-relay.js';

const stack = useGatewayStack({ gateway: false });
let relay: StallRelay;
let gate: TestGateway;
let client: grpc.Client;

beforeAll(async () => {
  relay = await startStallRelay(stack.etcd.endpoints[0] as string);
  gate = await stack.startGateway({ upstream: [relay.endpoint] });
  client = rawClient(gate.endpoint, stack.pki, 'root');
});

afterAll(async () => {
  client?.close();
  await gate?.stop();
  await relay?.close();
});

/** Resolves once `count()` reaches `want`, rejects after `ms` with what it reached. */
async function reaches(count: () => number, want: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (count() < want) {
    if (Date.now() > until) throw new Error(`reached ${count()} of ${want} in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
      await reaches(() => created, 1, 10_000);
      relay.stall();
      // 4 MiB of requests: far more than etcd's window and etcdgate's queue mark. grpc-js
      // holds what etcdgate does not read.
      const writing = writeAll(stream, create, 1, COUNT);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      relay.resume();
      // Before the fix, etcdgate never read this stream again: the count stopped short.
      await reaches(() => created, COUNT + 1, 60_000);
      await writing;
      expect(created).toBe(COUNT + 1);
    } finally {
      relay.resume();
      stream.cancel();
    }
  }, 120_000);
});
