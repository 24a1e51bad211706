/**
 * Key files for encryption tests: 32 random bytes in base64, mode 600, in a temp dir
 * per test file, and the `encryption` config sections that name them.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A directory of key files. */
export interface KeyDir {
  readonly dir: string;
  /** Writes (or overwrites) key file `name` with fresh random bytes, mode 600; returns its path. */
  key(name: string): string;
  remove(): Promise<void>;
}

/** Makes an empty key directory. */
export async function makeKeyDir(): Promise<KeyDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-keys-'));
  return {
    dir,
    key(name) {
      const file = path.join(dir, name);
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      return file;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One provider entry of a resource as the config writes it. */
export type ProviderEntry = { aesgcm: { keys: { name: string; file: string }[] } } | { secretbox: { keys: { name: string; file: string }[] } } | { identity: Record<string, never> };

/** The `encryption` section with one resource. */
export function encryptionSection(name: string, prefixes: string[], providers: ProviderEntry[]): { resources: unknown[] } {
  return { resources: [{ name, prefixes, providers }] };
}
