/**
 * Key rotation without downtime, as an operator does it, against a real etcd and a real
 * etcdgate process: add a key as decrypt-only and reload (SIGHUP), make it the primary
 * and reload (file change), then `etcdgate encryption rewrite --prefix` while clients
 * keep writing through etcdgate. Every key ends under the new key, no acknowledged write
 * is lost, `encryption status` says so, and the run is audited. A broken key set on
 * reload keeps the keys in force. The rewrite's mod_revision guard is also shown
 * deterministically: a write slipped in between its read and its Txn wins, and the key
 * is rewritten again from the new value.
 */
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { encryptionCommand } from '../src/cli/encryption.js';
import { Keyring } from '../src/encryption/keyring.js';
import { rewritePrefix } from '../src/encryption/maintenance.js';
import { loadEncryptionFile } from '../src/config/encryption-section.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { upstreamCalls, type UpstreamCalls } from '../src/upstream/calls.js';
import { UpstreamPool } from '../src/upstream/pool.js';
import { etcd3Client } from './support/etcd3-client.js';
import { makeKeyDir, type KeyDir } from './support/encryption-keys.js';
import { gatewayDir, type GatewayProcess } from './support/gateway-process.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { useGatewayStack } from './support/stack.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const KEYS = 120;
const keyName = (i: number): string => `/secret/k${String(i).padStart(4, '0')}`;

const stack = useGatewayStack({ gateway: false });
let keys: KeyDir;
let encryptionFile: string;
let gp: GatewayProcess;
let client: Etcd3;
let direct: Etcd3;
let k1: string;
let k2: string;

function writeEncryption(aesgcm: { name: string; file: string }[]): void {
  writeFileSync(encryptionFile, stringify({ resources: [{ name: 'secrets', prefixes: ['/secret/'], providers: [{ aesgcm: { keys: aesgcm } }] }] }));
}

async function reloads(result: 'success' | 'failure'): Promise<number> {
  const text = await (await fetch(`${gp.adminUrl}/metrics`)).text();
  return findSamples(parseExposition(text), 'etcdgate_encryption_reloads_total', { result })[0]?.value ?? 0;
}

async function storedHeader(key: string): Promise<string> {
  const value = await direct.get(key).buffer();
  return value === null ? '' : value.toString('latin1', 0, value.indexOf(':', 'etcdgate:enc:v1:aesgcm:'.length) + 1);
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, 'encryption', ...args, '--config', path.join(gp.dir, 'etcdgate.yaml')], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error: unknown) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  keys = await makeKeyDir();
  k1 = keys.key('k1');
  k2 = keys.key('k2');
  encryptionFile = path.join(keys.dir, 'encryption.yaml');
  writeEncryption([{ name: 'k1', file: k1 }]);
  const dir = await gatewayDir();
  gp = await stack.startGatewayProcess({ dir, audit: { sink: `file:${path.join(dir, 'audit.jsonl')}` }, encryption: encryptionFile });
  client = etcd3Client(gp.endpoint, stack.pki, 'root');
  direct = etcd3Client(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
  for (let i = 0; i < KEYS; i++) await client.put(keyName(i)).value(`initial-${i}`);
});

afterAll(async () => {
  client?.close();
  direct?.close();
  await gp?.stop();
  await keys?.remove();
});

describe('key rotation', () => {
  it('adds a decrypt-only key on SIGHUP, then makes it primary on a file change', async () => {
    expect(await storedHeader(keyName(0))).toBe('etcdgate:enc:v1:aesgcm:k1:');
    writeEncryption([{ name: 'k1', file: k1 }, { name: 'k2', file: k2 }]);
    const before = await reloads('success');
    gp.child.kill('SIGHUP');
    await vi.waitFor(async () => expect(await reloads('success')).toBeGreaterThan(before), { timeout: 10_000, interval: 100 });
    await client.put('/secret/after-add').value('x');
    expect(await storedHeader('/secret/after-add')).toBe('etcdgate:enc:v1:aesgcm:k1:');

    writeEncryption([{ name: 'k2', file: k2 }, { name: 'k1', file: k1 }]);
    await vi.waitFor(async () => {
      await client.put('/secret/after-primary').value('y');
      expect(await storedHeader('/secret/after-primary')).toBe('etcdgate:enc:v1:aesgcm:k2:');
    }, { timeout: 10_000, interval: 250 });
    // Values sealed with k1 still read.
    expect(await client.get(keyName(0)).string()).toBe('initial-0');
  });

  it('rewrites every value under the prefix to the new key while clients write, losing no acknowledged write', async () => {
    const acknowledged = new Map<string, string>();
    let stop = false;
    let errors = 0;
    const writer = async (w: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        // Each writer owns the keys i = w (mod 4): its last acknowledged value is the expected one.
        for (let i = w; i < KEYS && !stop; i += 4) {
          const value = `load-${w}-${n}-${i}`;
          try {
            await client.put(keyName(i)).value(value);
            acknowledged.set(keyName(i), value);
          } catch {
            errors += 1;
          }
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    // Let the load get going before the rewrite starts.
    await vi.waitFor(() => expect(acknowledged.size).toBeGreaterThan(20), { timeout: 10_000, interval: 50 });
    const rewrite = await cli('rewrite', '--prefix', '/secret/');
    stop = true;
    await Promise.all(writers);
    expect(rewrite.stderr).not.toContain('etcdgate:');
    expect(rewrite.code).toBe(0);
    expect(rewrite.stdout).toMatch(/^rewrite \/secret\/: scanned \d+, rewritten \d+, unchanged \d+, retried \d+, gone 0, failed 0, outside 0\n$/u);
    expect(errors).toBe(0);

    for (let i = 0; i < KEYS; i++) {
      expect(await storedHeader(keyName(i))).toBe('etcdgate:enc:v1:aesgcm:k2:');
      expect(await client.get(keyName(i)).string()).toBe(acknowledged.get(keyName(i)) ?? `initial-${i}`);
    }
    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('resource secrets (writes with aesgcm:k2)');
    expect(status.stdout).not.toContain('aesgcm:k1');
    expect(status.stdout).toMatch(new RegExp(`aesgcm:k2 +${KEYS + 2}\\n`, 'u'));

    const audit = readFileSync(path.join(gp.dir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, Record<string, unknown>>);
    const runs = audit.filter((r) => r['etcdgate']?.['event_kind'] === 'encryption.rewrite');
    expect(runs).toHaveLength(1);
    expect(runs[0]?.['event']).toMatchObject({ action: 'etcdgate.encryption.rewrite', outcome: 'success' });
    expect((runs[0]?.['etcd'] as Record<string, Record<string, unknown>>)['request']).toMatchObject({ op: 'encryption_rewrite', key: '/secret/', failed: 0 });
    expect(audit.filter((r) => r['etcdgate']?.['event_kind'] === 'encryption.status')).toHaveLength(1);
    // No value in any record.
    expect(JSON.stringify(runs)).not.toMatch(/load-|initial-/u);
  });

  it('retires the old key once nothing needs it; a broken key set on reload keeps the keys in force', async () => {
    writeEncryption([{ name: 'k2', file: k2 }]);
    const before = await reloads('success');
    gp.child.kill('SIGHUP');
    await vi.waitFor(async () => expect(await reloads('success')).toBeGreaterThan(before), { timeout: 10_000, interval: 100 });
    expect(await client.get(keyName(3)).string()).not.toBeNull();

    const open = keys.key('too-open');
    chmodSync(open, 0o644);
    writeEncryption([{ name: 'k3', file: open }, { name: 'k2', file: k2 }]);
    const failures = await reloads('failure');
    gp.child.kill('SIGHUP');
    await vi.waitFor(async () => expect(await reloads('failure')).toBeGreaterThan(failures), { timeout: 10_000, interval: 100 });
    await client.put('/secret/after-broken').value('z');
    expect(await storedHeader('/secret/after-broken')).toBe('etcdgate:enc:v1:aesgcm:k2:');
    expect(await client.get('/secret/after-broken').string()).toBe('z');
    expect(gp.stderr()).toContain('encryption reload failed');
    expect(gp.stderr()).not.toContain(readFileSync(open, 'utf8').trim());
    writeEncryption([{ name: 'k2', file: k2 }]);
  });
});

describe('the encryption commands', () => {
  it('show progress on a terminal and only the summary otherwise', async () => {
    const collect = (tty: boolean): { stream: PassThrough & { isTTY?: boolean }; text: () => string } => {
      const stream: PassThrough & { isTTY?: boolean } = new PassThrough();
      if (tty) stream.isTTY = true;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
    };
    const config = path.join(gp.dir, 'etcdgate.yaml');
    for (const tty of [true, false]) {
      const stdout = collect(false);
      const stderr = collect(tty);
      expect(await encryptionCommand(['status', '--config', config, '--prefix', '/secret/'], { stdout: stdout.stream, stderr: stderr.stream })).toBe(0);
      expect(stdout.text()).toMatch(/^resource secrets \(writes with aesgcm:k2\)\n/u);
      // Each progress line rewrites the last: carriage return, erase line (ESC [ K), text.
      if (tty) expect(stderr.text()).toContain('\r\u001b[Kscanned ');
      else expect(stderr.text()).toBe('');
    }
  });

  it('refuse bad usage: no prefix for rewrite, a prefix outside every resource', async () => {
    const io = { stdout: new PassThrough(), stderr: new PassThrough() };
    const config = path.join(gp.dir, 'etcdgate.yaml');
    await expect(encryptionCommand(['rewrite', '--config', config], io)).rejects.toThrow(/needs --prefix/u);
    await expect(encryptionCommand(['rewrite', '--config', config, '--prefix', '/public/'], io)).rejects.toThrow(/outside every encryption resource/u);
    await expect(encryptionCommand(['rotate', '--config', config], io)).rejects.toThrow(/unknown encryption command/u);
  });
});

describe('the rewrite guard', () => {
  let pool: UpstreamPool;
  beforeAll(() => {
    pool = new UpstreamPool(
      { endpoints: stack.etcd.endpoints, tls: { ca: stack.pki.ca, cert: stack.pki.upstreamClient.cert, key: stack.pki.upstreamClient.key }, keepaliveTimeMs: 30_000, keepaliveTimeoutMs: 10_000, dialTimeoutMs: 5_000, maxRecvBytes: -1 },
      NOOP_METRICS,
    );
  });
  afterAll(() => pool?.close());

  it('a write between the rewrite\'s read and its Txn is kept: the Txn fails and the key is rewritten from the new value', async () => {
    const k4 = keys.key('k4');
    writeEncryption([{ name: 'k4', file: k4 }, { name: 'k2', file: k2 }]);
    const keyring = Keyring.load(loadEncryptionFile(encryptionFile), NOOP_METRICS);
    writeEncryption([{ name: 'k2', file: k2 }]);
    await client.put('/secret/guard/a').value('old-value');
    const real = upstreamCalls(pool, 5_000);
    let interfered = false;
    const calls: UpstreamCalls = {
      ...real,
      async unary(callPath, request, options) {
        if (callPath === '/etcdserverpb.KV/Txn' && !interfered) {
          interfered = true;
          // A client's write lands after the rewrite read the key.
          await client.put('/secret/guard/a').value('concurrent-value');
        }
        return real.unary(callPath, request, options);
      },
    };
    const summary = await rewritePrefix(calls, keyring, Buffer.from('/secret/guard/'));
    expect(summary).toMatchObject({ scanned: 1, rewritten: 1, retried: 1, failed: 0 });
    const stored = await direct.get('/secret/guard/a').buffer();
    expect(stored?.toString('latin1').startsWith('etcdgate:enc:v1:aesgcm:k4:')).toBe(true);
    // The concurrent value survived (opened here with the same keyring).
    const form = keyring.resourceFor(Buffer.from('/secret/guard/a'))?.decrypt(Buffer.from('/secret/guard/a'), stored ?? Buffer.alloc(0));
    expect(form?.ok && form.value.toString()).toBe('concurrent-value');
  });

  it('keeps the lease a rewritten key is attached to', async () => {
    const k5 = keys.key('k5');
    writeEncryption([{ name: 'k5', file: k5 }, { name: 'k2', file: k2 }]);
    const keyring = Keyring.load(loadEncryptionFile(encryptionFile), NOOP_METRICS);
    writeEncryption([{ name: 'k2', file: k2 }]);
    const lease = client.lease(120, { autoKeepAlive: false });
    try {
      await lease.put('/secret/leased/a').value('leased-value');
      const id = await lease.grant();
      const summary = await rewritePrefix(upstreamCalls(pool, 5_000), keyring, Buffer.from('/secret/leased/'));
      expect(summary).toMatchObject({ scanned: 1, rewritten: 1, failed: 0 });
      const kv = (await direct.get('/secret/leased/a').exec()).kvs[0];
      expect(kv?.value.toString('latin1').startsWith('etcdgate:enc:v1:aesgcm:k5:')).toBe(true);
      expect(kv?.lease).toBe(id);
    } finally {
      await lease.revoke();
    }
  });
});
