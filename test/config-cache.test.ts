/**
 * Proves that the `cache` section is optional and off by default, that the
 * serializable-Range cache can be enabled and sized, and that mistyped or out-of-range
 * values and unknown keys are each reported at their path.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CACHE } from '../src/config/cache-section.js';
import { ConfigError, parseConfig } from '../src/config/load.js';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-cache-config-'));
  for (const name of ['ca.crt', 'server.crt', 'server.key']) fs.writeFileSync(path.join(dir, name), 'placeholder\n');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function doc(cache?: unknown): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:2379', advertiseClientUrls: ['https://127.0.0.1:2379'], tls: { cert: 'server.crt', key: 'server.key', clientCA: 'ca.crt' } },
    upstream: { endpoints: ['https://127.0.0.1:12379'], tls: { ca: 'ca.crt' } },
    policy: { roles: {}, bindings: [] },
    ...(cache === undefined ? {} : { cache }),
  };
}

function issuesOf(cache: unknown): string[] {
  try {
    parseConfig(doc(cache), { source: '', baseDir: dir });
  } catch (error: unknown) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

describe('cache', () => {
  it('is off by default; the decrypted-value cache is on, 16 MiB', () => {
    const config = parseConfig(doc(), { source: '', baseDir: dir });
    expect(config.cache).toEqual(DEFAULT_CACHE);
    expect(config.cache.serializableRange.enabled).toBe(false);
    expect(config.cache.decryptedValues.maxBytes).toBe(16 * 1024 * 1024);
  });

  it('takes the decrypted-value cache size as given, 0 switching it off', () => {
    expect(parseConfig(doc({ decryptedValues: { maxBytes: 0 } }), { source: '', baseDir: dir }).cache.decryptedValues).toEqual({ maxBytes: 0 });
    expect(parseConfig(doc({ decryptedValues: { maxBytes: 1024 } }), { source: '', baseDir: dir }).cache.decryptedValues).toEqual({ maxBytes: 1024 });
    expect(issuesOf({ decryptedValues: { maxBytes: -1 } })).toEqual([expect.stringMatching(/^cache\.decryptedValues\.maxBytes: must be an integer from 0/u)]);
    expect(issuesOf({ decryptedValues: { maxEntries: 5 } }).join('\n')).toMatch(/^cache\.decryptedValues/mu);
  });

  it('takes the serializable-Range cache settings as given', () => {
    const config = parseConfig(doc({ serializableRange: { enabled: true, maxEntries: 50, maxStalenessMs: 250 } }), { source: '', baseDir: dir });
    expect(config.cache.serializableRange).toEqual({ enabled: true, maxEntries: 50, maxStalenessMs: 250 });
  });

  it('fills in what an enabled cache leaves out', () => {
    const config = parseConfig(doc({ serializableRange: { enabled: true } }), { source: '', baseDir: dir });
    expect(config.cache.serializableRange).toEqual({ ...DEFAULT_CACHE.serializableRange, enabled: true });
  });

  it('reports each bad value at its path', () => {
    const issues = issuesOf({ serializableRange: { enabled: 'yes', maxEntries: 0, maxStalenessMs: 0 } });
    expect(issues).toEqual([
      expect.stringMatching(/^cache\.serializableRange\.enabled: must be true or false/u),
      expect.stringMatching(/^cache\.serializableRange\.maxEntries: must be an integer from 1/u),
      expect.stringMatching(/^cache\.serializableRange\.maxStalenessMs: must be an integer from 1/u),
    ]);
  });

  it('reports unknown keys', () => {
    expect(issuesOf({ linearizableRange: {} }).join('\n')).toMatch(/^cache/mu);
    expect(issuesOf({ serializableRange: { ttl: 5 } }).join('\n')).toMatch(/^cache\.serializableRange/mu);
  });
});
