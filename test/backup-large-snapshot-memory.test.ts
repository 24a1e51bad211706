/**
 * A large snapshot streams through etcdgate's backup with bounded memory (issue 15,
 * items 2 and 9): etcdgate runs as operators run it (a child process), etcd holds over
 * 256 MiB, a scheduled, encrypted backup stores all of it, and the process's peak
 * resident memory (VmHWM) stays within a fixed margin of what it used before the run,
 * far below the snapshot's size.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { etcd3Client } from './support/etcd3-client.js';
import type { GatewayProcess } from './support/gateway-process.js';
import { manifestsIn } from './support/backup.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
const MiB = 1024 * 1024;
/** What the run may add to the resident set: a few chunks in flight, age's 64 KiB buffers, GC slack. */
const MARGIN_BYTES = 96 * MiB;
/** A real X25519 recipient (age-keygen); nobody needs to decrypt here. */
const RECIPIENT = 'age1j3cm98lvcqajtm2t0pywh4n6kyrp3kn3lwyld97sdjcx3ewcdfnszlkll2';

let dir: string;
let gate: GatewayProcess;

/** A field of /proc/PID/status in bytes (VmRSS, VmHWM). */
function memory(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  const kib = Number(/(\d+)\s*kB/u.exec(line ?? '')?.[1]);
  if (!Number.isFinite(kib)) throw new Error(`no ${field} for ${pid}`);
  return kib * 1024;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-large-'));
  const direct = etcd3Client(stack.etcd.endpoints[0]!, stack.pki, 'root');
  try {
    const value = Buffer.alloc(MiB, 'L');
    for (let i = 0; i < 260; i += 1) await direct.put(`/bulk/${i}`).value(value);
  } finally {
    direct.close();
  }
}, 240_000);

afterAll(async () => {
  await gate?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('stores a snapshot over 256 MiB with peak RSS within a fixed margin of the idle process', async () => {
  // Scheduled well after start, so the idle footprint can be read first.
  gate = await stack.startGatewayProcess({
    audit: { sink: 'stdout', level: 'none' },
    backup: { schedule: { intervalSeconds: 20 }, destinations: [{ directory: dir }], encryption: { recipients: [RECIPIENT] } },
  });
  const pid = gate.child.pid!;
  const idle = memory(pid, 'VmRSS');
  const manifest = await vi.waitFor(
    () => {
      const found = manifestsIn(dir)[0];
      if (found === undefined) throw new Error('no backup yet');
      return found;
    },
    { timeout: 150_000, interval: 250 },
  );
  const peak = memory(pid, 'VmHWM');
  expect(manifest.snapshotBytes).toBeGreaterThan(256 * MiB);
  expect(manifest.sizeBytes).toBeGreaterThan(manifest.snapshotBytes);
  // Reported for the record (README): idle, peak and the snapshot's size.
  console.log(`large snapshot: ${(manifest.snapshotBytes / MiB).toFixed(0)} MiB, etcdgate RSS idle ${(idle / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB`);
  expect(peak).toBeLessThan(idle + MARGIN_BYTES);
}, 240_000);
