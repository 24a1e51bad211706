/**
 * Encrypted backups (issue 15, items 4 and 9): a backup encrypted to an age recipient
 * holds none of the values written in the clear (a marker found in a plain backup of
 * the same data is absent from the encrypted one), decrypts with Debian's `age` CLI
 * and restores with `etcdctl snapshot restore`. `etcdgate backup verify` passes on an
 * intact file (with and without the identity) and catches a tampered one.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Manifest } from '../src/backup/manifest.js';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl } from './support/etcdctl.js';
import { startRestoredEtcd } from './support/etcd.js';
import type { TestGateway } from './support/gateway.js';
import { useGatewayStack } from './support/stack.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const stack = useGatewayStack({ gateway: false });
const MARKER = `MARKER-${randomBytes(8).toString('hex')}`;

let dir: string;
let identityFile: string;
let encryptedGate: TestGateway;
let plainGate: TestGateway;
let encrypted: Manifest;
let plain: Manifest;

/** `etcdgate backup verify ...`: exit code and stdout. */
async function verify(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [cli, 'backup', 'verify', ...args]);
    return { code: 0, stdout };
  } catch (error: unknown) {
    const failed = error as { code?: number; stdout?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '' };
  }
}

/** A copy of `file` (and its manifest) with one byte in the middle flipped. */
function tamperedCopy(file: string, name: string): string {
  const copy = path.join(dir, 'tampered', name);
  const bytes = readFileSync(file);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  writeFileSync(copy, bytes);
  copyFileSync(`${file}.json`, `${copy}.json`);
  return copy;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-encrypted-'));
  for (const sub of ['enc', 'plain', 'tampered']) await run('mkdir', ['-p', path.join(dir, sub)]);
  identityFile = path.join(dir, 'identity.txt');
  await run('age-keygen', ['-o', identityFile]);
  const recipient = /age1[0-9a-z]+/u.exec(readFileSync(identityFile, 'utf8'))?.[0];
  if (recipient === undefined) throw new Error('age-keygen wrote no public key');

  const direct = etcd3Client(stack.etcd.endpoints[0]!, stack.pki, 'root');
  try {
    for (let i = 0; i < 20; i += 1) await direct.put(`/secret/${i}`).value(`${MARKER}-${i}`);
  } finally {
    direct.close();
  }
  const backup = (sub: string, extra: Record<string, unknown>) => ({ enabled: false, destinations: [{ directory: path.join(dir, sub) }], ...extra });
  encryptedGate = await stack.startGateway({ overrides: { backup: backup('enc', { encryption: { recipients: [recipient] } }) } });
  plainGate = await stack.startGateway({ overrides: { backup: backup('plain', {}) } });
  const [a, b] = await Promise.all([encryptedGate.gateway.backup!.runNow(), plainGate.gateway.backup!.runNow()]);
  if (a.outcome !== 'success' || b.outcome !== 'success') throw new Error(`backups failed: ${JSON.stringify([a, b])}`);
  encrypted = a.manifest;
  plain = b.manifest;
}, 60_000);

afterAll(async () => {
  await encryptedGate?.stop();
  await plainGate?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('encrypted backups', () => {
  it('hold none of the written values in the clear (which the plain backup does)', () => {
    expect(readFileSync(path.join(dir, 'plain', plain.file)).includes(MARKER)).toBe(true);
    expect(encrypted.file).toMatch(/\.db\.age$/u);
    expect(encrypted.encryption).toEqual({ format: 'age', recipients: [expect.stringMatching(/^age1/u)] });
    const stored = readFileSync(path.join(dir, 'enc', encrypted.file));
    expect(stored.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    expect(stored.includes(MARKER)).toBe(false);
    expect(stored.includes(Buffer.from(MARKER).toString('base64').slice(0, 16))).toBe(false);
  });

  it('decrypt with the age CLI and restore with etcdctl snapshot restore', async () => {
    const decrypted = path.join(dir, 'decrypted.db');
    await run('age', ['-d', '-i', identityFile, '-o', decrypted, path.join(dir, 'enc', encrypted.file)]);
    expect(readFileSync(decrypted).length).toBe(encrypted.snapshotBytes);
    const restored = await startRestoredEtcd(stack.pki, decrypted);
    try {
      const got = await etcdctl(['get', '/secret/', '--prefix', '--print-value-only'], { endpoint: restored.endpoints[0]!, cacert: stack.pki.ca, ...stack.pki.client('root') });
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout.trim().split('\n').sort()).toEqual(Array.from({ length: 20 }, (_, i) => `${MARKER}-${i}`).sort());
    } finally {
      await restored.stop();
    }
  }, 60_000);

  it('an identity that is not a recipient cannot decrypt them', async () => {
    const other = path.join(dir, 'other.txt');
    await run('age-keygen', ['-o', other]);
    await expect(run('age', ['-d', '-i', other, '-o', path.join(dir, 'nope.db'), path.join(dir, 'enc', encrypted.file)])).rejects.toThrow();
  });
});

describe('etcdgate backup verify', () => {
  it('passes intact files: plain, encrypted without the key (manifest hash), encrypted with it (decrypted, etcd checksum)', async () => {
    const plainResult = await verify([path.join(dir, 'plain', plain.file)]);
    expect(plainResult.code, plainResult.stdout).toBe(0);
    expect(plainResult.stdout).toMatch(/^ok\s+sha256: /mu);
    expect(plainResult.stdout).toMatch(/^ok\s+snapshot checksum: /mu);

    const withoutKey = await verify([path.join(dir, 'enc', encrypted.file)]);
    expect(withoutKey.code, withoutKey.stdout).toBe(0);
    expect(withoutKey.stdout).toMatch(/^skipped snapshot checksum: encrypted/mu);

    const withKey = await verify([path.join(dir, 'enc', encrypted.file), '--identity', identityFile]);
    expect(withKey.code, withKey.stdout).toBe(0);
    expect(withKey.stdout).toMatch(/^ok\s+decryption: /mu);
    expect(withKey.stdout).toMatch(/^ok\s+snapshot checksum: /mu);
  });

  it('catches a tampered plain file: hash against the manifest and etcd\'s own checksum', async () => {
    const copy = tamperedCopy(path.join(dir, 'plain', plain.file), plain.file);
    const result = await verify([copy]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^failed\s+sha256: /mu);
    expect(result.stdout).toMatch(/^failed\s+snapshot checksum: /mu);
    expect(result.stdout).toContain(': FAILED');
  });

  it('catches a tampered encrypted file, with the key (age authenticates each chunk) and without (manifest hash)', async () => {
    const copy = tamperedCopy(path.join(dir, 'enc', encrypted.file), encrypted.file);
    const withKey = await verify([copy, '--identity', identityFile]);
    expect(withKey.code).toBe(1);
    expect(withKey.stdout).toMatch(/^failed\s+decryption: /mu);
    const withoutKey = await verify([copy]);
    expect(withoutKey.code).toBe(1);
    expect(withoutKey.stdout).toMatch(/^failed\s+sha256: /mu);
  });
});
