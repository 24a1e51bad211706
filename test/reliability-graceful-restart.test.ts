/**
 * SIGTERM to one of two etcdgate processes in front of the same etcd, under a steady
 * write load from clients that fail over between them (as etcd clients given both
 * endpoints do): the stopped process exits 0 within its shutdown bound, no acknowledged
 * write is lost, every acknowledged call is in the audit file of the instance that
 * answered it, and the load goes on through the other instance.
 */
import type * as grpc from '@grpc/grpc-js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayProcess, ProcessExit } from './support/gateway-process.js';
import { keysUnder, startPutLoad, waitForQuiet } from './support/load.js';
import { useGatewayStack } from './support/stack.js';
import { rawClient } from './support/raw-client.js';

const stack = useGatewayStack({ gateway: false });
let auditDir: string;

beforeAll(async () => {
  auditDir = await mkdtemp(path.join(tmpdir(), 'etcdgate-restart-audit-'));
}, 120_000);

afterAll(async () => {
  if (auditDir !== undefined) await rm(auditDir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** The shutdownTimeoutMs startGatewayProcess configures. */
const SHUTDOWN_TIMEOUT_MS = 3_000;

/** Keys of the acknowledged (code 0) Put records in an audit file. */
async function auditedPuts(file: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (line === '') continue;
    const record = JSON.parse(line) as { etcd?: { request?: { method?: string; key?: string }; response?: { code?: number } } };
    const request = record.etcd?.request;
    if (request?.method === 'Put' && record.etcd?.response?.code === 0 && request.key !== undefined) keys.add(request.key);
  }
  return keys;
}

/** Waits for the process to exit, at most `limitMs`; undefined if it did not. */
function exitWithin(gate: GatewayProcess, limitMs: number): Promise<ProcessExit | undefined> {
  return Promise.race([gate.exited, sleep(limitMs).then(() => undefined)]);
}

describe('graceful restart under load', () => {
  it('SIGTERM loses no acknowledged write, audits every answered call, and clients fail over to the other instance', async () => {
    const auditFiles = [path.join(auditDir, 'first.jsonl'), path.join(auditDir, 'second.jsonl')] as const;
    const gates: GatewayProcess[] = [];
    const clients: grpc.Client[] = [];
    const survivor = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
    try {
      for (const file of auditFiles) {
        const gate = await stack.startGatewayProcess({ audit: { sink: `file:${file}` } });
        gates.push(gate);
        clients.push(rawClient(gate.endpoint, stack.pki, 'root'));
      }
      const [first, second] = gates;
      if (first === undefined || second === undefined) throw new Error('two gateways expected');

      const prefix = '/restart/';
      const load = startPutLoad(clients, { prefix, workers: 4 });
      let exit: ProcessExit | undefined;
      let stoppedAt = 0;
      try {
        await sleep(2_000);
        expect([...load.acked.values()], `errors: ${JSON.stringify(load.errorsByCode())}`).toContain(0);
        first.child.kill('SIGTERM');
        stoppedAt = Date.now();
        // Bounded by shutdownTimeoutMs, plus generous room for process exit on a busy machine.
        exit = await exitWithin(first, SHUTDOWN_TIMEOUT_MS + 10_000);
        expect(await waitForQuiet(load, 2_000, 20_000), `errors: ${JSON.stringify(load.errorsByCode())}`).toBe(true);
      } finally {
        await load.stop();
      }
      expect(exit).toEqual({ code: 0, signal: null });
      // Calls went on through the second instance after the first one left.
      expect(load.attempts.filter((a) => a.code === 0 && a.client === 1 && a.at > stoppedAt).length).toBeGreaterThan(0);

      // Every acknowledged Put is in etcd.
      const keys = await keysUnder(survivor, prefix);
      expect([...load.acked.keys()].filter((key) => !keys.has(key))).toEqual([]);

      // Every acknowledged call is in the audit file of the instance that answered it.
      second.child.kill('SIGTERM');
      expect(await exitWithin(second, SHUTDOWN_TIMEOUT_MS + 10_000)).toEqual({ code: 0, signal: null });
      const audited = [await auditedPuts(auditFiles[0]), await auditedPuts(auditFiles[1])];
      const unaudited = [...load.acked].filter(([key, instance]) => audited[instance]?.has(key) !== true);
      expect(unaudited).toEqual([]);
      expect(audited[0]?.size).toBeGreaterThan(0);
      expect(audited[1]?.size).toBeGreaterThan(0);
    } finally {
      for (const client of clients) client.close();
      survivor.close();
      for (const gate of gates) await gate.stop();
    }
  }, 120_000);
});
