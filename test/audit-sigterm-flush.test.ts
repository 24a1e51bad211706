/**
 * The audit file loses nothing when etcdgate stops or its file is rotated. etcdgate runs
 * as a real process (node dist/src/main.js) with a file sink under a steady load of
 * Puts, each on its own key. SIGTERM mid-load: the process exits 0 and every Put that
 * was answered OK has its record in the file. Rotation: the file is renamed and SIGUSR1
 * sent mid-load; calls started after the new file appeared are recorded in it, and the
 * two files together hold every answered Put exactly once.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { gatewayDir, type GatewayProcess } from './support/gateway-process.js';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const WORKERS = 16;

const stack = useGatewayStack({ gateway: false });

/** Keys of the call records in an audit file (empty when there is no file). */
function recordedKeys(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { etcd?: { request?: { key?: string } }; etcdgate: { event_kind: string } })
    .filter((record) => record.etcdgate.event_kind === 'call')
    .flatMap((record) => (record.etcd?.request?.key === undefined ? [] : [record.etcd.request.key]));
}

/** One answered Put: its key and whether it started after `phase` was set. */
interface Answered {
  readonly key: string;
  readonly phase: number;
}

/**
 * Puts on fresh keys from WORKERS concurrent loops until stop() (or until etcdgate stops
 * answering); `answered` lists those etcdgate answered OK, with the phase current when
 * each call started.
 */
function load(gate: GatewayProcess, prefix: string): { answered: Answered[]; failed: () => number; setPhase(p: number): void; stop(): Promise<void> } {
  const client: grpc.Client = rawClient(gate.endpoint, stack.pki, 'root');
  const answered: Answered[] = [];
  let failed = 0;
  let phase = 0;
  let stopping = false;
  let counter = 0;
  const worker = async (): Promise<void> => {
    while (!stopping) {
      const key = `${prefix}/${String(counter++).padStart(7, '0')}`;
      const started = phase;
      try {
        await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse', undefined);
        answered.push({ key, phase: started });
      } catch {
        failed += 1;
        // etcdgate is going away: stop once it no longer answers at all.
        if (gate.child.exitCode !== null || gate.child.signalCode !== null) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  const workers = Promise.all(Array.from({ length: WORKERS }, () => worker()));
  return {
    answered,
    failed: () => failed,
    setPhase: (p) => {
      phase = p;
    },
    stop: async () => {
      stopping = true;
      await workers;
      client.close();
    },
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it('SIGTERM mid-load: exits 0 and every Put answered OK is in the audit file', async () => {
  const dir = await gatewayDir();
  const auditFile = path.join(dir, 'audit.jsonl');
  const gate = await stack.startGatewayProcess({ dir, audit: { sink: `file:${auditFile}` } });
  try {
    const traffic = load(gate, '/sigterm');
    await until(() => traffic.answered.length >= 500, '500 answered Puts');
    gate.child.kill('SIGTERM');
    const exit = await gate.exited;
    await traffic.stop();
    expect(exit).toEqual({ code: 0, signal: null });

    const recorded = new Set(recordedKeys(auditFile));
    const missing = traffic.answered.filter((a) => !recorded.has(a.key));
    expect(traffic.answered.length).toBeGreaterThanOrEqual(500);
    expect(missing.slice(0, 5)).toEqual([]);
  } finally {
    await gate.stop();
  }
});

it('rotation (rename + SIGUSR1) mid-load: the new file gets the new records and nothing is lost or doubled', async () => {
  const dir = await gatewayDir();
  const auditFile = path.join(dir, 'audit.jsonl');
  const rotated = `${auditFile}.1`;
  const gate = await stack.startGatewayProcess({ dir, audit: { sink: `file:${auditFile}` } });
  try {
    const traffic = load(gate, '/rotate');
    await until(() => traffic.answered.length >= 300, '300 answered Puts');
    renameSync(auditFile, rotated);
    gate.child.kill('SIGUSR1');
    await until(() => existsSync(auditFile), 'the reopened audit file');
    traffic.setPhase(1);
    const beforeSecondPhase = traffic.answered.length;
    await until(() => traffic.answered.length >= beforeSecondPhase + 300, '300 more answered Puts');
    await traffic.stop();
    gate.child.kill('SIGTERM');
    expect((await gate.exited).code).toBe(0);

    const oldKeys = recordedKeys(rotated);
    const newKeys = recordedKeys(auditFile);
    expect(oldKeys.length).toBeGreaterThanOrEqual(300);
    const all = [...oldKeys, ...newKeys];
    expect(new Set(all).size).toBe(all.length);
    const everywhere = new Set(all);
    expect(traffic.answered.filter((a) => !everywhere.has(a.key)).slice(0, 5)).toEqual([]);
    const inNew = new Set(newKeys);
    const late = traffic.answered.filter((a) => a.phase === 1);
    expect(late.length).toBeGreaterThanOrEqual(300);
    expect(late.filter((a) => !inNew.has(a.key)).slice(0, 5)).toEqual([]);
    expect(traffic.failed()).toBe(0);
  } finally {
    await gate.stop();
  }
});
