/**
 * The keyring: the validated encryption config compiled into what the hot path needs.
 * Every key file is read and every cipher key imported once, here; resources are found
 * by key with one binary search over compiled byte intervals (the policy's IntervalSet),
 * and each resource knows the key it writes with and the keys it reads with, by
 * `provider:name`. A keyring is immutable: a reload builds a new one and swaps it in
 * whole (src/encryption/encryption.ts), so a call sees one key set from start to end.
 *
 * Reads follow Kubernetes' rules: the stored header selects the provider and key (no
 * trial decryption); a plaintext value is accepted only when `identity` is listed; a
 * header naming a key the resource does not list fails.
 *
 * Values are read far more often than they change, so a keyring remembers the values it
 * opened (OpenedValues, bounded in bytes, config cache.decryptedValues.maxBytes): read
 * again with exactly the same stored bytes at the same etcd key, a value is served without
 * a decipher. That answer is the decipher's own: an AEAD opens the same key, header,
 * nonce, ciphertext and tag to the same plaintext, and any other bytes (a tampered, copied
 * or rewritten value) miss and are opened and checked again. It holds nothing the process
 * could not read anyway: the keys that open those values are in the same memory.
 */
import { LRUCache } from 'lru-cache';
import type { EncryptionConfig, EncryptionResourceConfig } from '../config/types.js';
import { intervalsOf } from '../config/encryption-section.js';
import type { DecryptionFailure, Metrics } from '../observability/metrics-types.js';
import { IntervalSet } from '../policy/interval-set.js';
import { requestInterval } from '../policy/key-range.js';
import { readKeyFile } from './key-file.js';
import { sealingKey, type SealingKey, type SealingProviderKind } from './providers.js';
import { parseStoredForm, storedHeader } from './stored-form.js';

/** The outcome of reading one stored value: the value, or why it cannot be had. */
export type DecryptOutcome =
  | { readonly ok: true; readonly value: Buffer }
  | { readonly ok: false; readonly reason: DecryptionFailure; readonly detail: string };

/** How a stored value is held, for `encryption status` and `rewrite`. */
export type Holder =
  | { readonly kind: 'plaintext' }
  | { readonly kind: 'sealed'; readonly provider: string; readonly keyName: string; readonly known: boolean }
  | { readonly kind: 'malformed' };

/** The key a resource writes with; identity (plaintext) when undefined. */
interface Writer {
  readonly provider: SealingProviderKind;
  readonly keyName: string;
  readonly header: Buffer;
  readonly key: SealingKey;
}

/** Thrown by Keyring.load when key files cannot be used; lists every problem, never key material. */
export class KeyringError extends Error {
  override readonly name = 'KeyringError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/** The metrics a keyring reports to (a subset of Metrics). */
export type KeyringMetrics = Pick<Metrics, 'valueEncrypted' | 'valueDecrypted' | 'decryptCacheHit' | 'decryptionFailed' | 'plaintextRead'>;

/** How a keyring is built besides its config. */
export interface KeyringOptions {
  /** Bytes of opened values remembered (stored form, plaintext and key); 0 remembers none. */
  readonly openedCacheBytes: number;
}

/** A value opened before: the stored bytes it was opened from, its plaintext, and the key that opened it. */
interface Opened {
  readonly stored: Buffer;
  readonly value: Buffer;
  readonly provider: SealingProviderKind;
  readonly keyName: string;
}

/** What an entry costs besides its bytes (the entry, its strings and the LRU's slot), roughly. */
const OPENED_ENTRY_OVERHEAD = 160;

/** The values a keyring opened recently, by etcd key (see the top of this file). */
class OpenedValues {
  readonly #entries: LRUCache<string, Opened>;

  constructor(maxBytes: number) {
    this.#entries = new LRUCache<string, Opened>({
      maxSize: maxBytes,
      // One large value may not push out everything else.
      maxEntrySize: Math.max(1, Math.floor(maxBytes / 8)),
      sizeCalculation: (entry, id) => entry.stored.length + entry.value.length + id.length + OPENED_ENTRY_OVERHEAD,
    });
  }

  /** The value opened from exactly `stored` at the etcd key `id`, if remembered. */
  get(id: string, stored: Buffer): Opened | undefined {
    const entry = this.#entries.get(id);
    return entry !== undefined && entry.stored.equals(stored) ? entry : undefined;
  }

  set(id: string, stored: Buffer, value: Buffer, provider: SealingProviderKind, keyName: string): void {
    // `stored` is a view into etcd's response: copied into a buffer of its own (Buffer.from
    // would take a slice of Node's shared 8 KiB pool and keep all of it alive), so an entry
    // holds what its size counts.
    const copy = Buffer.allocUnsafeSlow(stored.length);
    stored.copy(copy);
    this.#entries.set(id, { stored: copy, value, provider, keyName });
  }
}

/** One encryption resource, ready to seal and open its values. */
export class EncryptedResource {
  readonly name: string;
  /** Whether plaintext values are accepted on read (`identity` is listed). */
  readonly acceptsPlaintext: boolean;
  readonly #writer: Writer | undefined;
  /** Reading keys by `provider:name`. */
  readonly #keys: ReadonlyMap<string, SealingKey>;
  readonly #metrics: KeyringMetrics;
  readonly #opened: OpenedValues | undefined;

  constructor(
    name: string,
    writer: Writer | undefined,
    keys: ReadonlyMap<string, SealingKey>,
    acceptsPlaintext: boolean,
    metrics: KeyringMetrics,
    opened: OpenedValues | undefined,
  ) {
    this.name = name;
    this.#writer = writer;
    this.#keys = keys;
    this.acceptsPlaintext = acceptsPlaintext;
    this.#metrics = metrics;
    this.#opened = opened;
  }

  /** Provider and key name new values are written with; `identity` writes plaintext. */
  get writesWith(): { readonly provider: string; readonly keyName: string } {
    return this.#writer === undefined ? { provider: 'identity', keyName: '' } : { provider: this.#writer.provider, keyName: this.#writer.keyName };
  }

  /** Whether new values are encrypted (the first provider is not identity). */
  get encrypts(): boolean {
    return this.#writer !== undefined;
  }

  /** The stored form of `value` for `etcdKey`: sealed with the write key, or the value itself under identity. */
  encrypt(etcdKey: Buffer, value: Buffer): Buffer {
    const parts = this.encryptParts(etcdKey, value);
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** The stored form of `value` as parts to be written one after another (see SealingKey.seal). */
  encryptParts(etcdKey: Buffer, value: Buffer): readonly Buffer[] {
    const writer = this.#writer;
    if (writer === undefined) return [value];
    this.#metrics.valueEncrypted(this.name, writer.provider, writer.keyName);
    return writer.key.seal(writer.header, etcdKey, value);
  }

  /**
   * The value held in `stored` at `etcdKey`, or why it cannot be had (also counted). The
   * value may be one remembered from an earlier read: callers copy it, never change it.
   */
  decrypt(etcdKey: Buffer, stored: Buffer): DecryptOutcome {
    const opened = this.#opened;
    const id = opened === undefined ? '' : etcdKey.toString('latin1');
    const known = opened?.get(id, stored);
    if (known !== undefined) {
      this.#metrics.decryptCacheHit(this.name);
      this.#metrics.valueDecrypted(this.name, known.provider, known.keyName);
      return { ok: true, value: known.value };
    }
    const form = parseStoredForm(stored);
    if (form.kind === 'plaintext') {
      this.#metrics.plaintextRead(this.name);
      if (this.acceptsPlaintext) return { ok: true, value: stored };
      return this.#failed('plaintext', 'it is stored as plaintext and the identity provider is not listed');
    }
    if (form.kind === 'malformed') return this.#failed('malformed', form.why);
    const key = this.#keys.get(`${form.provider}:${form.keyName}`);
    if (key === undefined) return this.#failed('unknown_key', `it is sealed with key "${printable(form.keyName)}" of provider "${printable(form.provider)}", which resource ${this.name} does not list`);
    const value = key.open(form.header, etcdKey, form.payload);
    if (value === undefined) return this.#failed('authentication', 'it does not authenticate (tampered, or sealed for another key)');
    this.#metrics.valueDecrypted(this.name, key.provider, form.keyName);
    opened?.set(id, stored, value, key.provider, form.keyName);
    return { ok: true, value };
  }

  /** How `stored` is held (no decryption). */
  holder(stored: Buffer): Holder {
    const form = parseStoredForm(stored);
    if (form.kind !== 'sealed') return { kind: form.kind };
    return { kind: 'sealed', provider: form.provider, keyName: form.keyName, known: this.#keys.has(`${form.provider}:${form.keyName}`) };
  }

  /** Whether `stored` is already in the form this resource writes (nothing to rewrite). */
  isCurrent(stored: Buffer): boolean {
    const form = parseStoredForm(stored);
    const writer = this.#writer;
    if (writer === undefined) return form.kind === 'plaintext';
    return form.kind === 'sealed' && form.provider === writer.provider && form.keyName === writer.keyName;
  }

  #failed(reason: DecryptionFailure, detail: string): DecryptOutcome {
    this.#metrics.decryptionFailed(this.name, reason);
    return { ok: false, reason, detail };
  }
}

/** Names read from a stored value may be anything: shown only as printable ASCII. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, '?');
}

/** The compiled, immutable set of resources and keys. */
export class Keyring {
  readonly resources: readonly EncryptedResource[];
  readonly #intervals: IntervalSet<EncryptedResource>;

  private constructor(resources: readonly EncryptedResource[], intervals: IntervalSet<EncryptedResource>) {
    this.resources = resources;
    this.#intervals = intervals;
  }

  /**
   * Reads every key file named by `config` and builds the keyring.
   * @throws KeyringError listing every key file that cannot be used.
   */
  static load(config: EncryptionConfig, metrics: KeyringMetrics, options: KeyringOptions = { openedCacheBytes: 0 }): Keyring {
    const problems: string[] = [];
    const resources: EncryptedResource[] = [];
    // One cache for the keyring: a reload starts empty, so nothing opened is served past a change of keys.
    const opened = options.openedCacheBytes > 0 ? new OpenedValues(options.openedCacheBytes) : undefined;
    const entries: { interval: ReturnType<typeof intervalsOf>[number]; source: EncryptedResource }[] = [];
    for (const resourceConfig of config.resources) {
      const resource = buildResource(resourceConfig, problems, metrics, opened);
      resources.push(resource);
      for (const interval of intervalsOf(resourceConfig)) entries.push({ interval, source: resource });
    }
    if (problems.length > 0) throw new KeyringError(problems);
    return new Keyring(Object.freeze(resources), new IntervalSet(entries));
  }

  /** The resource whose ranges hold `key`, if any. */
  resourceFor(key: Buffer): EncryptedResource | undefined {
    return this.#intervals.lookup(key);
  }

  /** Some resource sharing a key with the request range `[key, rangeEnd)` (etcd's conventions), if any. */
  intersecting(key: Buffer, rangeEnd: Buffer): EncryptedResource | undefined {
    return this.#intervals.intersecting(requestInterval(key, rangeEnd));
  }

  /** The provider and key each resource writes with (for the write-key metric and status). */
  writers(): { resource: string; provider: string; key: string }[] {
    return this.resources.map((r) => ({ resource: r.name, provider: r.writesWith.provider, key: r.writesWith.keyName }));
  }
}

function buildResource(config: EncryptionResourceConfig, problems: string[], metrics: KeyringMetrics, opened: OpenedValues | undefined): EncryptedResource {
  const keys = new Map<string, SealingKey>();
  let writer: Writer | undefined;
  let acceptsPlaintext = false;
  config.providers.forEach((provider, i) => {
    if (provider.kind === 'identity') {
      acceptsPlaintext = true;
      return;
    }
    provider.keys.forEach((keyConfig, k) => {
      const read = readKeyFile(keyConfig.file);
      if ('problem' in read) {
        problems.push(`resource ${config.name}, ${provider.kind} key ${keyConfig.name}: ${read.problem}`);
        return;
      }
      const key = sealingKey(provider.kind, read.key);
      read.key.fill(0);
      keys.set(`${provider.kind}:${keyConfig.name}`, key);
      // The first key of the first provider writes, as in Kubernetes.
      if (i === 0 && k === 0) writer = { provider: provider.kind, keyName: keyConfig.name, header: storedHeader(provider.kind, keyConfig.name), key };
    });
  });
  return new EncryptedResource(config.name, writer, keys, acceptsPlaintext, metrics, opened);
}
