/**
 * Parser for the optional `cache` section: serializable Range answers, off unless
 * enabled, since a cached answer may be up to `maxStalenessMs` older than etcd's (see
 * src/proxy/range-cache.ts for what bounds it); and values opened under encrypted
 * prefixes, on by default, since an answer from it is exactly the decipher's (see
 * src/encryption/keyring.ts).
 */
import type { CacheConfig } from './types.js';
import type { Reader } from './read.js';
import { MAX_TIMER_MS, at } from './read.js';

const CACHE_KEYS = ['serializableRange', 'decryptedValues'];
const RANGE_CACHE_KEYS = ['enabled', 'maxEntries', 'maxStalenessMs'];
const DECRYPTED_KEYS = ['maxBytes'];
/** 4 GiB: more than any etcd (its default quota is 2 GiB) could hold. */
const MAX_DECRYPTED_BYTES = 4 * 1024 ** 3;

/** The defaults, also what an absent section means. */
export const DEFAULT_CACHE: CacheConfig = {
  serializableRange: { enabled: false, maxEntries: 10_000, maxStalenessMs: 1_000 },
  decryptedValues: { maxBytes: 16 * 1024 * 1024 },
};

/** Reads the optional `cache` section. */
export function readCache(reader: Reader, value: unknown): CacheConfig {
  const raw = reader.optionalMapping(value, 'cache', CACHE_KEYS);
  const path = at('cache', 'serializableRange');
  const range = reader.optionalMapping(raw['serializableRange'], path, RANGE_CACHE_KEYS);
  const defaults = DEFAULT_CACHE.serializableRange;
  const decryptedPath = at('cache', 'decryptedValues');
  const decrypted = reader.optionalMapping(raw['decryptedValues'], decryptedPath, DECRYPTED_KEYS);
  return {
    serializableRange: {
      enabled: reader.boolean(range['enabled'], at(path, 'enabled'), defaults.enabled),
      maxEntries: reader.integer(range['maxEntries'], at(path, 'maxEntries'), { min: 1, max: 10_000_000, fallback: defaults.maxEntries }),
      // 0 would make every entry stale at once: a cache that never answers is a misconfiguration.
      maxStalenessMs: reader.integer(range['maxStalenessMs'], at(path, 'maxStalenessMs'), { min: 1, max: MAX_TIMER_MS, fallback: defaults.maxStalenessMs }),
    },
    decryptedValues: {
      maxBytes: reader.integer(decrypted['maxBytes'], at(decryptedPath, 'maxBytes'), {
        min: 0,
        max: MAX_DECRYPTED_BYTES,
        fallback: DEFAULT_CACHE.decryptedValues.maxBytes,
      }),
    },
  };
}
