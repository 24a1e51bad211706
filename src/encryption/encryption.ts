/**
 * src/encryption: encryption at rest of the values under chosen key ranges. etcdgate
 * sees every write and every read, so it seals values on their way to etcd and opens
 * them on their way back: clients see plaintext, etcd's data directory, WAL and
 * snapshots hold only ciphertext (keys and metadata stay visible).
 *
 * The folder: the key files (key-file.ts), the ciphers (providers.ts), the stored form
 * (stored-form.ts), the compiled keyring (keyring.ts), the wire transforms
 * (transforms.ts), the CLI's scan and rewrite (maintenance.ts), and this file, which is
 * what the proxy calls: one plan per call from the method table's `values` column, the
 * keyring in force, swapped whole on reload, and the reload itself (SIGHUP, or a change
 * of the encryption file or a key file) with "a broken new set keeps the old one".
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import type { EncryptionConfig } from '../config/types.js';
import { loadEncryptionFile } from '../config/encryption-section.js';
import type { DecodedRequest, MethodSpec } from '../etcd/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics-types.js';
import { Keyring, type KeyringOptions } from './keyring.js';
import { decryptResponse, encryptRequest, openResponse, type OpenOutcome, type ResponseKind, type ResponseOutcome, type ValueRefusal } from './transforms.js';

export type { OpenOutcome, ResponseOutcome, Undecryptable, ValueRefusal } from './transforms.js';

/** What one call needs from encryption, decided before it is forwarded. */
export type CallPlan =
  /** Nothing the call touches is encrypted: request and response pass as they are. */
  | { readonly kind: 'untouched' }
  /** The call cannot work on encrypted values: answer with the refusal, forward nothing. */
  | { readonly kind: 'refused'; readonly refusal: ValueRefusal }
  /**
   * Forward `request` (the original when undefined; `framed` is it behind its gRPC
   * prefix, ready to send) and pass etcd's answer through `response`, with the same
   * keyring the request was sealed with.
   */
  | {
      readonly kind: 'transform';
      readonly request: { readonly message: Buffer; readonly framed: Buffer } | undefined;
      readonly response: (message: Buffer) => OpenOutcome;
    };

const UNTOUCHED: CallPlan = { kind: 'untouched' };

/** The keyring in force, and the per-call plans built from it. */
export class Encryption {
  #ring: Keyring;
  readonly #listeners = new Set<() => void>();

  constructor(ring: Keyring) {
    this.#ring = ring;
  }

  get keyring(): Keyring {
    return this.#ring;
  }

  /** Puts a new keyring in force; listeners (the Range cache) hear of it. */
  replace(ring: Keyring): void {
    this.#ring = ring;
    for (const listener of this.#listeners) listener();
  }

  onReplace(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /**
   * The plan for one allowed call of `spec` whose request is `request`, decoded as
   * `decoded`. Calls that touch no encrypted range cost one interval lookup per access.
   * @throws DecodeError when the request is malformed in a way its decoder let pass.
   */
  plan(spec: MethodSpec, decoded: DecodedRequest, request: Buffer): CallPlan {
    const carrier = spec.values;
    if (carrier === 'none' || carrier === 'watch') return UNTOUCHED;
    const ring = this.#ring;
    const touched = touchedResource(ring, decoded);
    if (touched === undefined) return UNTOUCHED;
    if (carrier === 'election') {
      // The election recipes write and read values etcdgate does not transform.
      return { kind: 'refused', refusal: { kind: 'election', key: touched.key, resource: touched.resource } };
    }
    const kind: ResponseKind = carrier;
    const response = (message: Buffer): OpenOutcome => openResponse(ring, kind, message);
    if (carrier === 'delete-range') return { kind: 'transform', request: undefined, response };
    const outcome = encryptRequest(ring, carrier, request);
    if (outcome.kind === 'refused') return outcome;
    return { kind: 'transform', request: outcome.kind === 'rewritten' ? outcome : undefined, response };
  }

  /** Opens the values in one WatchResponse from etcd. */
  watchResponse(message: Buffer): ResponseOutcome {
    return decryptResponse(this.#ring, 'watch', message);
  }
}

/** The first access of the request over an encrypted range, with that range's resource. */
function touchedResource(ring: Keyring, decoded: DecodedRequest): { key: Buffer; resource: string } | undefined {
  for (const access of decoded.accesses) {
    if (access.kind !== 'read' && access.kind !== 'write') continue;
    const resource = ring.intersecting(access.key, access.rangeEnd);
    if (resource !== undefined) return { key: access.key, resource: resource.name };
  }
  return undefined;
}

/** What startEncryption needs besides the config. */
export interface EncryptionDeps {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** How each keyring is built (its decrypted-value cache), at start and on every reload. */
  readonly keyring: KeyringOptions;
}

/** Encryption at rest running in a gateway: the state the proxy uses, and its reloads. */
export interface RunningEncryption {
  readonly state: Encryption;
  /**
   * Re-reads the encryption file (when the config names one) and every key file; a set
   * that does not validate or load keeps the keys in force. Returns whether the new set
   * is in force.
   */
  reload(): boolean;
  /** Stops watching the files. */
  stop(): void;
}

/** How long after a file change the reload runs, so files written together are read together. */
const SETTLE_MS = 250;

/**
 * Loads the keyring of `config` (throws when a key file cannot be used: a start must
 * not serve with keys missing) and watches the encryption and key files for changes.
 */
export function startEncryption(config: EncryptionConfig, deps: EncryptionDeps): RunningEncryption {
  const { metrics, logger } = deps;
  let current = config;
  const state = new Encryption(Keyring.load(current, metrics, deps.keyring));
  metrics.encryptionWriteKeys(state.keyring.writers());

  let watched: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const onChange = (stats: Stats): void => {
    // A file replaced by rename is briefly absent: wait for the new one to appear.
    if (stats.nlink === 0 && stats.ino === 0) return;
    clearTimeout(timer);
    timer = setTimeout(reload, SETTLE_MS);
    timer.unref();
  };
  const watch = (): void => {
    const files = filesOf(current);
    for (const file of watched) if (!files.includes(file)) unwatchFile(file, onChange);
    for (const file of files) if (!watched.includes(file)) watchFile(file, { interval: 1000, persistent: false }, onChange);
    watched = files;
  };

  function reload(): boolean {
    try {
      // Everything is read and checked before anything is swapped: all new, or all old.
      const next = current.file === undefined ? current : loadEncryptionFile(current.file);
      const ring = Keyring.load(next, metrics, deps.keyring);
      current = next;
      state.replace(ring);
      metrics.encryptionWriteKeys(ring.writers());
      metrics.encryptionReload('success');
      logger.info({ resources: ring.writers() }, 'encryption keys reloaded');
      watch();
      return true;
    } catch (error: unknown) {
      metrics.encryptionReload('failure');
      // The messages name files and fields, never key material.
      logger.error({ err: error }, 'encryption reload failed; the keys in force stay in use');
      return false;
    }
  }

  watch();
  return {
    state,
    reload,
    stop: () => {
      clearTimeout(timer);
      for (const file of watched) unwatchFile(file, onChange);
      watched = [];
    },
  };
}

/** The files a reload reads: the encryption file, if any, and every key file. */
function filesOf(config: EncryptionConfig): string[] {
  const files = config.file === undefined ? [] : [config.file];
  for (const resource of config.resources) {
    for (const provider of resource.providers) if (provider.kind !== 'identity') for (const key of provider.keys) files.push(key.file);
  }
  return [...new Set(files)];
}
