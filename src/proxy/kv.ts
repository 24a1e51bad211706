/**
 * The KV service's proxy side: Range, Put, DeleteRange, Txn and Compact are plain unary
 * calls; what is particular to KV is the optional serializable-Range cache
 * (src/proxy/range-cache.ts, config cache.serializableRange). The method table says
 * which calls it may answer (`cacheable`) and which writes invalidate it
 * (`invalidates`); this file applies those columns.
 */
import type { DecodedRequest, MethodSpec } from '../etcd/types.js';
import type { RangeCache } from './range-cache.js';

/** The cache's part of the unary path (see UnaryServices). */
export interface KvCacheHooks {
  cacheLookup(spec: MethodSpec, request: Buffer): { readonly hit: Buffer | undefined; readonly store: (response: Buffer) => void } | undefined;
  invalidate(spec: MethodSpec, decoded: DecodedRequest): void;
}

/** The hooks of `cache`, or hooks that do nothing when the cache is off. */
export function kvCacheHooks(cache: RangeCache | undefined): KvCacheHooks {
  if (cache === undefined) return { cacheLookup: () => undefined, invalidate: () => undefined };
  return {
    cacheLookup(_spec, request) {
      // Only serializable reads: a linearizable one must reach etcd.
      const read = cache.cacheable(request);
      if (read === undefined) return undefined;
      return { hit: cache.get(read), store: (response) => cache.store(read, response) };
    },
    invalidate(spec, decoded) {
      if (spec.invalidates === 'all-keys') cache.clear();
      else if (spec.invalidates === 'written-keys') cache.invalidateWrites(decoded.accesses);
    },
  };
}
