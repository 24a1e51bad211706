/**
 * With every etcd member down, etcdgate fails calls fast with UNAVAILABLE (clients then
 * retry or fail over, instead of hanging to their deadline), reports itself not ready
 * and its upstream down; when etcd comes back it recovers by itself, no restart needed.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CallError, unary } from './support/load.js';
import type { TestGateway } from './support/gateway.js';
import { useGatewayStack } from './support/stack.js';
import { parseExposition } from './support/prometheus-text.js';
import { rawClient } from './support/raw-client.js';

const stack = useGatewayStack({ gateway: false });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const DEADLINE_MS = 10_000;

async function readyStatus(gate: TestGateway): Promise<number> {
  return (await fetch(`${gate.adminUrl}/readyz`)).status;
}

async function upstreamUp(gate: TestGateway): Promise<number[]> {
  const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
  return parseExposition(text).samples.filter((s) => s.name === 'etcdgate_upstream_up').map((s) => s.value);
}

/** Polls `check` until it holds (false after `limitMs`). */
async function eventually(check: () => Promise<boolean>, limitMs: number): Promise<boolean> {
  const limit = Date.now() + limitMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > limit) return false;
    await sleep(200);
  }
}

/** A Put through etcdgate; resolves with the gRPC code and how long it took. */
async function put(client: grpc.Client, key: string): Promise<{ code: number; ms: number }> {
  const started = Date.now();
  try {
    await unary(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse', { deadlineMs: DEADLINE_MS });
    return { code: grpc.status.OK, ms: Date.now() - started };
  } catch (error: unknown) {
    return { code: error instanceof CallError ? error.code : grpc.status.UNKNOWN, ms: Date.now() - started };
  }
}

describe('every etcd member down', () => {
  it('fails calls fast with UNAVAILABLE, turns /readyz 503, and recovers by itself when etcd returns', async () => {
    const gate = await stack.startGateway();
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    try {
      expect(await eventually(async () => (await readyStatus(gate)) === 200, 30_000)).toBe(true);
      expect((await put(client, '/down/before')).code).toBe(grpc.status.OK);

      await Promise.all(stack.etcd.members.map((m) => m.stop()));

      // Right after the stop (the channel may still be reconnecting) and again once etcdgate knows.
      for (const key of ['/down/at-once', '/down/later']) {
        const result = await put(client, key);
        expect(result.code).toBe(grpc.status.UNAVAILABLE);
        // Failed on its own, well before the client's deadline (a loose bound, not a timing goal).
        expect(result.ms).toBeLessThan(DEADLINE_MS - 4_000);
      }
      const range = await unary(client, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/down/') }], 'RangeResponse', { deadlineMs: DEADLINE_MS }).then(
        () => grpc.status.OK,
        (error: unknown) => (error instanceof CallError ? error.code : grpc.status.UNKNOWN),
      );
      expect(range).toBe(grpc.status.UNAVAILABLE);
      expect(await eventually(async () => (await readyStatus(gate)) === 503, 15_000)).toBe(true);
      expect(await upstreamUp(gate)).toEqual(stack.etcd.members.map(() => 0));

      for (const member of stack.etcd.members) await member.start();

      expect(await eventually(async () => (await readyStatus(gate)) === 200, 30_000)).toBe(true);
      expect(await upstreamUp(gate)).toEqual(stack.etcd.members.map(() => 1));
      // Clients retry UNAVAILABLE; once etcd is back their calls succeed through the same etcdgate.
      expect(await eventually(async () => (await put(client, '/down/after')).code === grpc.status.OK, 15_000)).toBe(true);
      const after = await unary(client, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/down/after') }], 'RangeResponse');
      expect((after['kvs'] as { value: Buffer }[] | undefined)?.[0]?.value.toString()).toBe('v');
    } finally {
      client.close();
      await gate.stop();
    }
  }, 120_000);
});
