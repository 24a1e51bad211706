/**
 * Proof, against a real etcd 3.4, that values under an encrypted prefix are stored in
 * etcd only as ciphertext while every client of etcdgate sees plaintext: etcdctl put /
 * get / txn / watch through etcdgate; etcdctl directly against etcd; etcd's bbolt file
 * (member/snap/db), its WAL files and a snapshot saved from etcd scanned for the marker
 * (absent for the encrypted prefix, present for the unencrypted control). Then the
 * attacks: a byte tampered directly in etcd, a ciphertext copied to another key,
 * plaintext slipped in directly, a VALUE compare; each read fails through etcdgate,
 * naming the key and never the value, and is audited and counted.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encode } from './support/etcd-messages.js';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl, readLines, spawnEtcdctl, type EtcdctlOptions } from './support/etcdctl.js';
import { makeKeyDir, type KeyDir } from './support/encryption-keys.js';
import type { TestGateway } from './support/gateway.js';
import { ROOT_AND_TENANT_B } from './support/policies.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { collectWatch, rawClient, rawUnary, rawWatch } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
let keys: KeyDir;
let gate: TestGateway;
let direct: Etcd3;

/** Markers that must never reach etcd's disk (encrypted) and one that must (the control). */
const SECRET = 'MARKER-secret-7f3a91';
const SECRET_TXN = 'MARKER-txn-b04c2e';
const SECRET_ETCD3 = 'MARKER-etcd3-55d1aa';
const PLAIN = 'MARKER-plain-c9e810';

beforeAll(async () => {
  keys = await makeKeyDir();
  gate = await stack.startGateway({
    policy: ROOT_AND_TENANT_B,
    overrides: {
      encryption: {
        resources: [
          { name: 'secrets', prefixes: ['/secret/'], providers: [{ aesgcm: { keys: [{ name: 'key1', file: keys.key('key1') }] } }] },
          { name: 'boxes', prefixes: ['/box/'], providers: [{ secretbox: { keys: [{ name: 'b1', file: keys.key('b1') }] } }] },
        ],
      },
    },
  });
  direct = etcd3Client(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
});

afterAll(async () => {
  direct?.close();
  await gate?.stop();
  await keys?.remove();
});

function through(name = 'root'): EtcdctlOptions {
  const pair = stack.pki.client(name);
  return { endpoint: gate.endpoint, cacert: stack.pki.ca, cert: pair.cert, key: pair.key };
}

function atEtcd(): EtcdctlOptions {
  const pair = stack.pki.client('root');
  return { endpoint: stack.etcd.endpoints[0] ?? '', cacert: stack.pki.ca, cert: pair.cert, key: pair.key };
}

async function ok(args: string[], opts: EtcdctlOptions): Promise<string> {
  const result = await etcdctl(args, opts);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.stdout;
}

function countIn(file: string, marker: string): number {
  const data = readFileSync(file);
  let count = 0;
  for (let at = data.indexOf(marker); at >= 0; at = data.indexOf(marker, at + 1)) count++;
  return count;
}

function memberDir(): string {
  return path.join(stack.etcd.dir, 'etcd-0.data', 'member');
}

function walFiles(): string[] {
  const dir = path.join(memberDir(), 'wal');
  return readdirSync(dir).filter((f) => f.endsWith('.wal')).map((f) => path.join(dir, f));
}

async function records(): Promise<Record<string, unknown>[]> {
  return gate.auditRecords();
}

function responseOf(record: Record<string, unknown>): Record<string, unknown> {
  // Connection records have no etcd part.
  return (record['etcd'] as Record<string, Record<string, unknown>> | undefined)?.['response'] ?? {};
}

async function metrics(): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await (await fetch(`${gate.adminUrl}/metrics`)).text());
}

describe('values under an encrypted prefix', () => {
  beforeAll(async () => {
    await ok(['put', '/secret/a', SECRET], through());
    await ok(['put', '/box/a', `${SECRET}-box`], through());
    await ok(['put', '/plain/a', PLAIN], through());
    await ok(['txn'], { ...through(), input: `mod("/secret/t") = "0"\n\nput /secret/t ${SECRET_TXN}\n\n\n` });
    const client = etcd3Client(gate.endpoint, stack.pki, 'root');
    try {
      await client.put('/secret/etcd3').value(SECRET_ETCD3);
    } finally {
      client.close();
    }
  });

  it('read back through etcdgate as plaintext: etcdctl get, get --prefix, txn, etcd3 with limit, revision and serializable', async () => {
    expect(await ok(['get', '/secret/a', '--print-value-only'], through())).toBe(`${SECRET}\n`);
    expect(await ok(['get', '/box/a', '--print-value-only'], through())).toBe(`${SECRET}-box\n`);
    expect(await ok(['get', '--prefix', '/secret/', '--print-value-only'], through())).toBe(`${SECRET}\n${SECRET_ETCD3}\n${SECRET_TXN}\n`);
    const txn = await ok(['txn'], { ...through(), input: `version("/secret/a") > "0"\n\nget /secret/a\nget /secret/t\n\n\n` });
    expect(txn).toContain(SECRET);
    expect(txn).toContain(SECRET_TXN);
    const client = etcd3Client(gate.endpoint, stack.pki, 'root');
    try {
      const first = await client.getAll().prefix('/secret/').limit(1).strings();
      expect(first).toEqual({ '/secret/a': SECRET });
      const revision = (await client.get('/secret/a').exec()).kvs[0]?.mod_revision ?? '0';
      expect(await client.get('/secret/a').revision(revision).string()).toBe(SECRET);
      const serializable = await client.get('/secret/etcd3').serializable(true).string();
      expect(serializable).toBe(SECRET_ETCD3);
      // keys_only and count_only pass through.
      expect(await client.getAll().prefix('/secret/').keys()).toEqual(['/secret/a', '/secret/etcd3', '/secret/t']);
      expect(await client.getAll().prefix('/secret/').count()).toBe(3);
    } finally {
      client.close();
    }
  });

  it('are ciphertext read directly from etcd, with the header naming provider and key', async () => {
    const stored = await ok(['get', '/secret/a', '--print-value-only'], atEtcd());
    expect(stored).not.toContain(SECRET);
    expect(stored.startsWith('etcdgate:enc:v1:aesgcm:key1:')).toBe(true);
    const boxed = await ok(['get', '/box/a', '--print-value-only'], atEtcd());
    expect(boxed.startsWith('etcdgate:enc:v1:secretbox:b1:')).toBe(true);
    expect(await ok(['get', '--prefix', '/secret/'], atEtcd())).not.toMatch(/MARKER-/u);
    // The control: outside the prefix the value is stored as sent.
    expect(await ok(['get', '/plain/a', '--print-value-only'], atEtcd())).toBe(`${PLAIN}\n`);
  });

  it('never reach etcd\'s bbolt file, WAL or a saved snapshot, while the unencrypted control does', async () => {
    const db = path.join(memberDir(), 'snap', 'db');
    // bbolt commits in batches: the control appearing proves the writes before it are on disk.
    await vi.waitFor(() => expect(countIn(db, PLAIN)).toBeGreaterThan(0), { timeout: 10_000, interval: 200 });
    const wal = walFiles();
    expect(wal.length).toBeGreaterThan(0);
    expect(wal.reduce((n, file) => n + countIn(file, PLAIN), 0)).toBeGreaterThan(0);
    const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-snap-'));
    try {
      const snapshot = path.join(dir, 'etcd.snapshot');
      const saved = await etcdctl(['snapshot', 'save', snapshot], atEtcd());
      expect(saved.code).toBe(0);
      expect(countIn(snapshot, PLAIN)).toBeGreaterThan(0);
      for (const marker of [SECRET, SECRET_TXN, SECRET_ETCD3]) {
        expect(countIn(db, marker)).toBe(0);
        expect(wal.reduce((n, file) => n + countIn(file, marker), 0)).toBe(0);
        expect(countIn(snapshot, marker)).toBe(0);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('are plaintext in etcdctl watch through etcdgate, kv and prev_kv', async () => {
    const watch = spawnEtcdctl(['watch', '--prefix', '/secret/w', '--prev-kv'], through());
    try {
      // etcdctl prints nothing when the watch is created: write until the first event shows.
      await vi.waitFor(async () => {
        await ok(['put', '/secret/w', 'first-value'], through());
        expect(watch.lines).toContain('first-value');
      }, { timeout: 10_000, interval: 300 });
      await ok(['put', '/secret/w', 'second-value'], through());
      const lines = await readLines(watch, (line) => line === 'second-value');
      // prev_kv: etcdctl prints the event type, the previous key and value, then the new ones.
      expect(lines.slice(-5)).toEqual(['PUT', '/secret/w', 'first-value', '/secret/w', 'second-value']);
      expect(watch.lines.join('\n')).not.toContain('etcdgate:enc:');
    } finally {
      await watch.stop();
    }
  });

  it('give prev_kv of Put and DeleteRange as plaintext', async () => {
    await ok(['put', '/secret/p', 'before'], through());
    expect(await ok(['put', '/secret/p', 'after', '--prev-kv'], through())).toContain('before');
    expect(await ok(['del', '/secret/p', '--prev-kv'], through())).toContain('after');
  });
});

describe('what cannot work on ciphertext', () => {
  it('a Txn comparing a VALUE under the prefix is refused with FAILED_PRECONDITION and audited; elsewhere it runs', async () => {
    const refused = await etcdctl(['txn'], { ...through(), input: `value("/secret/a") = "${SECRET}"\n\nput /secret/a x\n\n\n` });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot compare the value of "/secret/a"');
    expect(await ok(['get', '/secret/a', '--print-value-only'], through())).toBe(`${SECRET}\n`);
    const record = (await records()).reverse().find((r) => responseOf(r)['code_name'] === 'FAILED_PRECONDITION');
    expect(record?.['event']).toMatchObject({ action: 'etcd.kv.txn', outcome: 'failure' });
    expect(JSON.stringify(record)).not.toContain(SECRET);
    expect(await ok(['txn'], { ...through(), input: `value("/plain/a") = "${PLAIN}"\n\nget /plain/a\n\n\n` })).toContain('SUCCESS');
  });

  it('a caller without read on the key is denied first (PERMISSION_DENIED), whatever encryption would say', async () => {
    const denied = await etcdctl(['txn'], { ...through('tenant-b'), input: 'value("/secret/a") = "x"\n\n\n\n' });
    expect(denied.stderr).toContain('permission denied');
    expect(await ok(['put', '/t/x', 'mine'], through('tenant-b'))).toContain('OK');
  });
});

describe('the election recipes', () => {
  it('are refused over an encrypted prefix (their values would pass unsealed), and reach etcd elsewhere', async () => {
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    try {
      const leader = (name: string) => rawUnary(client, '/v3electionpb.Election/Leader', encode('v3electionpb.LeaderRequest', { name: Buffer.from(name) }));
      await expect(leader('/secret/election')).rejects.toMatchObject({ code: 9, details: expect.stringContaining('the election recipes are not supported over "/secret/election/"') });
      // Elsewhere etcd itself answers (no leader yet).
      await expect(leader('/plain/election')).rejects.toMatchObject({ details: expect.stringContaining('no leader') });
    } finally {
      client.close();
    }
  });
});

describe('the serializable-Range cache', () => {
  it('holds plaintext answers, and none survives a key reload', async () => {
    const keyFile = keys.key('cached');
    const cached = await stack.startGateway({
      overrides: {
        cache: { serializableRange: { enabled: true, maxStalenessMs: 60_000 } },
        encryption: { resources: [{ name: 'cached', prefixes: ['/cached/'], providers: [{ aesgcm: { keys: [{ name: 'c1', file: keyFile }] } }] }] },
      },
    });
    const client = etcd3Client(cached.endpoint, stack.pki, 'root');
    try {
      await client.put('/cached/a').value('cached-plaintext');
      const upstreamRanges = async (): Promise<number> => {
        const exposition = parseExposition(await (await fetch(`${cached.adminUrl}/metrics`)).text());
        return findSamples(exposition, 'etcdgate_upstream_request_duration_seconds_count', { method: 'Range' })[0]?.value ?? 0;
      };
      // The cache stores only once its own watch is up: read until a read is a hit.
      await vi.waitFor(async () => {
        expect(await client.get('/cached/a').serializable(true).string()).toBe('cached-plaintext');
        const before = await upstreamRanges();
        expect(await client.get('/cached/a').serializable(true).string()).toBe('cached-plaintext');
        // Answered from the cache: no Range went to etcd, and the answer is the plaintext.
        expect(await upstreamRanges()).toBe(before);
      }, { timeout: 10_000, interval: 200 });
      // A different key in the same file: what was sealed before can no longer be opened,
      // and a cached plaintext answer must not be served past that reload.
      writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      expect(cached.gateway.reloadEncryption()).toBe(true);
      await expect(client.get('/cached/a').serializable(true).string()).rejects.toThrow(/cannot be decrypted/u);
    } finally {
      client.close();
      await cached.stop();
    }
  });
});

describe('a stored value that cannot be decrypted', () => {
  /** The stored value of `key`, read directly from etcd, as bytes. */
  async function storedOf(key: string): Promise<Buffer> {
    const value = await direct.get(key).buffer();
    if (value === null) throw new Error(`no ${key} in etcd`);
    return value;
  }

  async function failedRead(key: string): Promise<string> {
    const result = await etcdctl(['get', key], through());
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    return result.stderr;
  }

  it('tampered in etcd: the read through etcdgate fails naming the key (DATA_LOSS), is audited and counted', async () => {
    const before = findSamples(await metrics(), 'etcdgate_encryption_decryption_failures_total', { resource: 'secrets', reason: 'authentication' })[0]?.value ?? 0;
    await ok(['put', '/secret/tamper', 'tamper-me-value'], through());
    const stored = await storedOf('/secret/tamper');
    stored[stored.length - 3] = (stored[stored.length - 3] ?? 0) ^ 0x20;
    await direct.put('/secret/tamper').value(stored);
    const stderr = await failedRead('/secret/tamper');
    expect(stderr).toContain('the value of key "/secret/tamper" cannot be decrypted');
    expect(stderr).not.toContain('tamper-me-value');
    const record = (await records()).reverse().find((r) => responseOf(r)['code_name'] === 'DATA_LOSS');
    expect(record?.['event']).toMatchObject({ action: 'etcd.kv.range', outcome: 'failure' });
    expect(String(responseOf(record ?? {})['message'])).toContain('/secret/tamper');
    const after = findSamples(await metrics(), 'etcdgate_encryption_decryption_failures_total', { resource: 'secrets', reason: 'authentication' })[0]?.value ?? 0;
    expect(after).toBe(before + 1);
  });

  it('remembered once opened (cache.decryptedValues): a re-read is a cache hit, and a tampered value is not served from it', async () => {
    const hits = async (): Promise<number> => findSamples(await metrics(), 'etcdgate_encryption_decrypt_cache_hits_total', { resource: 'secrets' })[0]?.value ?? 0;
    await ok(['put', '/secret/remembered', 'remembered-value'], through());
    expect(await ok(['get', '/secret/remembered', '--print-value-only'], through())).toBe('remembered-value\n');
    const first = await hits();
    expect(await ok(['get', '/secret/remembered', '--print-value-only'], through())).toBe('remembered-value\n');
    expect(await hits()).toBe(first + 1);
    // The same key, other bytes: opened again, and refused.
    const stored = await storedOf('/secret/remembered');
    stored[stored.length - 1] = (stored[stored.length - 1] ?? 0) ^ 0x01;
    await direct.put('/secret/remembered').value(stored);
    expect(await failedRead('/secret/remembered')).toContain('"/secret/remembered" cannot be decrypted');
    expect(await hits()).toBe(first + 1);
    // The remembered bytes copied to another key: not a hit there either.
    await ok(['put', '/secret/remembered', 'remembered-value'], through());
    expect(await ok(['get', '/secret/remembered', '--print-value-only'], through())).toBe('remembered-value\n');
    await direct.put('/secret/remembered-copy').value(await storedOf('/secret/remembered'));
    expect(await failedRead('/secret/remembered-copy')).toContain('"/secret/remembered-copy" cannot be decrypted');
    await direct.delete().key('/secret/remembered');
    await direct.delete().key('/secret/remembered-copy');
  });

  it('a Range of 300 encrypted values, read twice (opened, then remembered): every plaintext, in order, both times', async () => {
    const client = etcd3Client(gate.endpoint, stack.pki, 'root');
    try {
      const names = Array.from({ length: 300 }, (_, i) => `/secret/many/${String(i).padStart(3, '0')}`);
      for (const name of names) await client.put(name).value(`many-${name}`);
      for (let read = 0; read < 2; read++) {
        const got = await client.getAll().prefix('/secret/many/').strings();
        expect(Object.keys(got).sort()).toEqual(names);
        for (const name of names) expect(got[name]).toBe(`many-${name}`);
      }
      // Sealed in etcd, every one.
      const stored = await direct.getAll().prefix('/secret/many/').strings();
      expect(Object.values(stored).filter((v) => v.includes('many-'))).toEqual([]);
      await direct.delete().prefix('/secret/many/');
    } finally {
      client.close();
    }
  });

  it('copied in etcd from one key to another: the read of the copy fails, the original still reads', async () => {
    await direct.put('/secret/copy').value(await storedOf('/secret/a'));
    expect(await failedRead('/secret/copy')).toContain('"/secret/copy" cannot be decrypted');
    expect(await ok(['get', '/secret/a', '--print-value-only'], through())).toBe(`${SECRET}\n`);
    // A range over both fails whole: no partial answer with the good values.
    const range = await etcdctl(['get', '--prefix', '/secret/'], through());
    expect(range.code).not.toBe(0);
    expect(range.stdout).not.toContain(SECRET);
  });

  it('plaintext written directly, with identity not listed: refused, and counted as plaintext seen', async () => {
    await direct.put('/secret/raw').value('raw-plaintext');
    expect(await failedRead('/secret/raw')).toContain('stored as plaintext');
    const counted = findSamples(await metrics(), 'etcdgate_encryption_plaintext_reads_total', { resource: 'secrets' })[0]?.value ?? 0;
    expect(counted).toBeGreaterThan(0);
    await direct.delete().key('/secret/raw');
    await direct.delete().key('/secret/copy');
    await direct.delete().key('/secret/tamper');
  });

  it('in a watch event: that watcher is cancelled in-band with the reason, and the value never relayed', async () => {
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    const stream = rawWatch(client);
    try {
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/secret/watched') } }));
      await collectWatch(stream, (responses) => responses.some((r) => r['created'] === true));
      const canceled = collectWatch(stream, (responses) => responses.some((r) => r['canceled'] === true));
      await direct.put('/secret/watched').value('not-sealed-watch-value');
      const responses = await canceled;
      const cancel = responses.find((r) => r['canceled'] === true);
      expect(String(cancel?.['cancel_reason'])).toContain('"/secret/watched" cannot be decrypted');
      expect(JSON.stringify(responses)).not.toContain('not-sealed-watch-value');
      expect(responses.some((r) => Array.isArray(r['events']))).toBe(false);
    } finally {
      stream.cancel();
      client.close();
      await direct.delete().key('/secret/watched');
    }
  });

  it('the metrics count encryptions and decryptions per resource, provider and key, and name the write key', async () => {
    const exposition = await metrics();
    expect(findSamples(exposition, 'etcdgate_encryption_values_encrypted_total', { resource: 'secrets', provider: 'aesgcm', key: 'key1' })[0]?.value).toBeGreaterThan(0);
    expect(findSamples(exposition, 'etcdgate_encryption_values_decrypted_total', { resource: 'boxes', provider: 'secretbox', key: 'b1' })[0]?.value).toBeGreaterThan(0);
    expect(findSamples(exposition, 'etcdgate_encryption_write_key_info', { resource: 'secrets', provider: 'aesgcm', key: 'key1' })[0]?.value).toBe(1);
  });
});
