/**
 * What encryption at rest adds per call, measured on the transforms alone: sealing the
 * value of a PutRequest on its way to etcd, and opening the value of a one-key
 * RangeResponse on its way back, for each provider at 100 B, 4 KiB and 64 KiB; and the
 * same Range read again, its value remembered (cache.decryptedValues) and the answer
 * left in parts, as the proxy sends it. Also the cost on calls outside every encrypted
 * prefix (the Put is parsed, nothing else), which is what unencrypted traffic pays with
 * encryption configured.
 *
 *   node --import ./scripts/ts-loader.mjs bench/encryption.ts [iterations]
 *
 * CPU is the process's user+system time per call (the transforms are synchronous, so
 * it is also their wall time); the median of 7 rounds is printed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EncryptionProviderConfig } from '../src/config/types.js';
import { Keyring } from '../src/encryption/keyring.js';
import { decryptResponse, encryptRequest, openResponse } from '../src/encryption/transforms.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { decode, encode } from '../test/support/etcd-messages.js';

const iterations = Number(process.argv[2] ?? 20_000);
const ROUNDS = 7;
const SIZES = [100, 4096, 65536];
const dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-bench-keys-'));

/** A keyring for `provider` (nothing remembered), and one with the same key remembering what it opened. */
function keyringsFor(provider: 'aesgcm' | 'secretbox'): { fresh: Keyring; remembering: Keyring } {
  const file = path.join(dir, provider);
  writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  const providers: EncryptionProviderConfig[] = [{ kind: provider, keys: [{ name: 'k1', file }] }];
  const config = { resources: [{ name: 'bench', prefixes: ['/secret/'], ranges: [], providers }] };
  return { fresh: Keyring.load(config, NOOP_METRICS), remembering: Keyring.load(config, NOOP_METRICS, { openedCacheBytes: 16 * 1024 * 1024 }) };
}

/** The proxy's way with a Range answer: opened, then sent as parts (the length read, as the output would). */
function openAsParts(keyring: Keyring, range: Buffer): number {
  const opened = openResponse(keyring, 'range', range);
  if (!opened.ok || opened.rewritten === undefined) throw new Error('the bench Range was not opened');
  let length = 0;
  for (const part of opened.rewritten.parts()) length += part.length;
  return length;
}

/** Median CPU µs per call of `fn` over ROUNDS rounds of `n` calls. */
function measure(fn: () => unknown, n: number): number {
  for (let i = 0; i < Math.min(n, 2000); i++) fn();
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const used = process.cpuUsage(start);
    rounds.push((used.user + used.system) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(ROUNDS / 2)] ?? 0;
}

function row(label: string, us: number): void {
  process.stdout.write(`${label.padEnd(48)} ${us.toFixed(2).padStart(8)} µs\n`);
}

try {
  process.stdout.write(`node ${process.version}, ${iterations} calls per round (fewer at 64 KiB), median of ${ROUNDS} rounds\n`);
  for (const provider of ['aesgcm', 'secretbox'] as const) {
    const { fresh: keyring, remembering } = keyringsFor(provider);
    for (const size of SIZES) {
      const n = size >= 65536 ? Math.max(200, Math.floor(iterations / 20)) : iterations;
      const value = randomBytes(size);
      const put = encode('etcdserverpb.PutRequest', { key: Buffer.from('/secret/bench'), value });
      const sealed = encryptRequest(keyring, 'put', put);
      if (sealed.kind !== 'rewritten') throw new Error('the bench Put was not sealed');
      const stored = decode('etcdserverpb.PutRequest', sealed.message)['value'] as Buffer;
      const range = encode('etcdserverpb.RangeResponse', {
        header: { cluster_id: 1, member_id: 2, revision: 1000, raft_term: 3 },
        kvs: [{ key: Buffer.from('/secret/bench'), value: stored, create_revision: 10, mod_revision: 999, version: 4 }],
        count: 1,
      });
      row(`${provider} ${size} B  Put request (seal)`, measure(() => encryptRequest(keyring, 'put', put), n));
      row(`${provider} ${size} B  Range response (open)`, measure(() => decryptResponse(keyring, 'range', range), n));
      row(`${provider} ${size} B  Range re-read (remembered, parts)`, measure(() => openAsParts(remembering, range), n));
    }
  }
  const keyring = keyringsFor('aesgcm').fresh;
  const outsidePut = encode('etcdserverpb.PutRequest', { key: Buffer.from('/public/bench'), value: randomBytes(4096) });
  const outsideRange = encode('etcdserverpb.RangeResponse', { kvs: [{ key: Buffer.from('/public/bench'), value: randomBytes(4096), mod_revision: 9 }], count: 1 });
  row('outside the prefix 4096 B  Put request', measure(() => encryptRequest(keyring, 'put', outsidePut), iterations));
  row('outside the prefix 4096 B  Range response', measure(() => decryptResponse(keyring, 'range', outsideRange), iterations));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
