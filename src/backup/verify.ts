/**
 * `etcdgate backup verify FILE`: is a stored snapshot file intact? Checks, each
 * reported as a value:
 *
 * - against the manifest beside it (FILE.json), when there is one: size and SHA-256 of
 *   the file as stored (catches any change to the file, encrypted or not);
 * - the snapshot's own checksum: etcd ends a snapshot with the SHA-256 of the database
 *   bytes before it (what `etcdctl snapshot restore` checks). For a plain file that is
 *   checked directly; for an encrypted one only with an identity (`--identity`), by
 *   decrypting on the fly, which also authenticates every age chunk.
 *
 * Files are streamed, never read whole.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { decryptChunks } from './encryption.js';
import { SNAPSHOT_DIGEST_BYTES } from './etcd-calls.js';
import { MANIFEST_SUFFIX, parseManifest, type Manifest } from './manifest.js';

/** One check and how it went; `skipped` checks could not be made (and say why). */
export interface VerifyCheck {
  readonly name: string;
  readonly result: 'ok' | 'failed' | 'skipped';
  readonly detail: string;
}

export interface VerifyReport {
  /** True when no check failed and the content was checked (the manifest's SHA-256 or the snapshot's own checksum). */
  readonly ok: boolean;
  readonly checks: readonly VerifyCheck[];
  readonly manifest?: Manifest;
}

export interface VerifyOptions {
  /** age identities (private keys) for an encrypted file. */
  readonly identities?: readonly string[];
  /** Called with the bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
}

/** Hashes a stream of snapshot bytes: the whole, and the database part against the trailing digest. */
class SnapshotHasher {
  readonly whole = createHash('sha256');
  readonly #data = createHash('sha256');
  #tail: Buffer = Buffer.alloc(0);
  size = 0;

  update(chunk: Uint8Array): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    const joined = this.#tail.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#tail, chunk]);
    const cut = Math.max(0, joined.length - SNAPSHOT_DIGEST_BYTES);
    this.#data.update(joined.subarray(0, cut));
    this.#tail = Buffer.from(joined.subarray(cut));
  }

  /** Whether the last 32 bytes are the SHA-256 of everything before them. */
  digestMatches(): boolean {
    return this.#tail.length === SNAPSHOT_DIGEST_BYTES && this.#data.digest().equals(this.#tail);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Verifies `file`; never throws for a bad file (only the report says so). */
export async function verifyBackupFile(file: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const size = (await stat(file)).size;
  let manifest: Manifest | undefined;
  const manifestFile = `${file}${MANIFEST_SUFFIX}`;
  if (existsSync(manifestFile)) {
    try {
      manifest = parseManifest(await readFile(manifestFile, 'utf8'));
      if (manifest.file !== path.basename(file)) throw new Error(`it describes ${manifest.file}`);
      checks.push({ name: 'manifest', result: 'ok', detail: path.basename(manifestFile) });
    } catch (error: unknown) {
      checks.push({ name: 'manifest', result: 'failed', detail: `${path.basename(manifestFile)}: ${messageOf(error)}` });
    }
  } else {
    checks.push({ name: 'manifest', result: 'skipped', detail: `no ${path.basename(manifestFile)} beside the file` });
  }
  const encrypted = manifest?.encryption !== undefined || file.endsWith('.age');

  const stored = new SnapshotHasher();
  let read = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    stored.update(chunk);
    read += chunk.length;
    options.onProgress?.(read);
  }
  const storedSha = stored.whole.digest('hex');
  if (manifest !== undefined) {
    const sizeOk = manifest.sizeBytes === size;
    checks.push({ name: 'size', result: sizeOk ? 'ok' : 'failed', detail: sizeOk ? `${size} bytes` : `${size} bytes, manifest says ${manifest.sizeBytes}` });
    const shaOk = manifest.sha256 === storedSha;
    checks.push({ name: 'sha256', result: shaOk ? 'ok' : 'failed', detail: shaOk ? storedSha : `${storedSha}, manifest says ${manifest.sha256}` });
  }

  if (!encrypted) {
    const ok = stored.digestMatches();
    checks.push({ name: 'snapshot checksum', result: ok ? 'ok' : 'failed', detail: ok ? 'etcd\'s SHA-256 at the end of the snapshot matches its data' : 'etcd\'s SHA-256 at the end of the snapshot does not match its data' });
  } else if (options.identities === undefined || options.identities.length === 0) {
    checks.push({ name: 'snapshot checksum', result: 'skipped', detail: 'encrypted: give --identity KEYFILE to decrypt and check it' });
  } else {
    const plain = new SnapshotHasher();
    try {
      for await (const chunk of decryptChunks(createReadStream(file) as AsyncIterable<Buffer>, options.identities)) plain.update(chunk);
      checks.push({ name: 'decryption', result: 'ok', detail: `${plain.size} bytes of snapshot` });
      const ok = plain.digestMatches();
      checks.push({ name: 'snapshot checksum', result: ok ? 'ok' : 'failed', detail: ok ? 'etcd\'s SHA-256 at the end of the snapshot matches its data' : 'etcd\'s SHA-256 at the end of the snapshot does not match its data' });
      if (manifest !== undefined && plain.size !== manifest.snapshotBytes) {
        checks.push({ name: 'snapshot size', result: 'failed', detail: `${plain.size} bytes, manifest says ${manifest.snapshotBytes}` });
      }
    } catch (error: unknown) {
      checks.push({ name: 'decryption', result: 'failed', detail: messageOf(error) });
    }
  }
  // Good when nothing failed and at least one check covered the whole file's content.
  const ok = checks.every((c) => c.result !== 'failed') && checks.some((c) => (c.name === 'snapshot checksum' || c.name === 'sha256') && c.result === 'ok');
  return { ok, checks, ...(manifest === undefined ? {} : { manifest }) };
}
